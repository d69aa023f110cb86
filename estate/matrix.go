package estate

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyfleet/keyfleet/internal/event"
)

// DefaultModel is the model of a vendor's conservative default row: the row
// a lock of an unknown model (or firmware no rule covers) is judged by.
const DefaultModel = "*"

// ErrUnknownVendor is returned for a vendor the matrix has no rows for.
var ErrUnknownVendor = errors.New("unknown vendor")

// Profile is one row of the capability matrix: what a vendor's model can do
// from a firmware version on. Firmware is a rule: "" (any) or ">= 4.0".
// Cost is the relative cost of fitting this model to a door (0 on default
// rows, which cannot be bought); Source names the public document the values
// come from, or says "assumed".
type Profile struct {
	Vendor   string `json:"vendor"`
	Model    string `json:"model"`
	Firmware string `json:"firmware,omitempty"`
	Capabilities
	Cost   int    `json:"cost"`
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// Name is "vendor/model" plus the firmware rule when there is one.
func (p Profile) Name() string {
	if p.Firmware == "" {
		return p.Vendor + "/" + p.Model
	}
	return p.Vendor + "/" + p.Model + " " + p.Firmware
}

func (p Profile) key() string {
	min, err := parseRule(p.Firmware)
	if err != nil {
		return p.Vendor + "\x00" + p.Model + "\x00!" + p.Firmware
	}
	for len(min) > 0 && min[len(min)-1] == 0 {
		min = min[:len(min)-1] // ">= 2" and ">= 2.0" are one rule
	}
	return p.Vendor + "\x00" + p.Model + "\x00" + min.String()
}

func (p Profile) min() version {
	v, _ := parseRule(p.Firmware)
	return v
}

// Validate checks one row on its own.
func (p Profile) Validate() error {
	var errs []error
	if !slices.Contains(event.Vendors, p.Vendor) {
		errs = append(errs, fmt.Errorf("vendor %q is not one of %v", p.Vendor, event.Vendors))
	}
	if strings.TrimSpace(p.Model) == "" {
		errs = append(errs, errors.New("model is empty"))
	}
	if _, err := parseRule(p.Firmware); err != nil {
		errs = append(errs, err)
	}
	if p.Model == DefaultModel && p.Firmware != "" {
		errs = append(errs, errors.New("a default row covers every firmware: firmware must be empty"))
	}
	if p.Windows < 0 {
		errs = append(errs, errors.New("windows is negative"))
	}
	if p.RevocationTypical <= 0 || p.RevocationWorst < p.RevocationTypical {
		errs = append(errs, errors.New("want 0 < revocation_typical <= revocation_worst"))
	}
	if _, ok := attestRank[p.Attestation]; !ok {
		errs = append(errs, fmt.Errorf("attestation %q: want none, app_token or device_key", p.Attestation))
	}
	if _, ok := auditRank[p.Audit]; !ok {
		errs = append(errs, fmt.Errorf("audit %q: want none, credential or who", p.Audit))
	}
	if p.Model == DefaultModel && p.Cost != 0 {
		errs = append(errs, errors.New("a default row cannot be bought: cost must be 0"))
	}
	if p.Model != DefaultModel && p.Cost <= 0 {
		errs = append(errs, errors.New("cost must be positive"))
	}
	if strings.TrimSpace(p.Source) == "" {
		errs = append(errs, errors.New(`source is empty: name the public document or say "assumed"`))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("profile %s: %w", p.Name(), err)
	}
	return nil
}

// Matrix is the capability matrix: rows sorted by vendor, model (default row
// first) and firmware rule.
type Matrix []Profile

// Merge returns m with rows added: a row with the same vendor, model and
// firmware minimum as an existing one replaces it whole; others are added.
func (m Matrix) Merge(rows ...Profile) Matrix {
	out := slices.Clone(m)
	for _, r := range rows {
		k := r.key()
		if i := slices.IndexFunc(out, func(p Profile) bool { return p.key() == k }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Profile) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor),
			cmp.Compare(modelOrder(a.Model), modelOrder(b.Model)),
			compare(a.min(), b.min()), cmp.Compare(a.Firmware, b.Firmware))
	})
	return out
}

// modelOrder sorts the default row before the models.
func modelOrder(m string) string {
	if m == DefaultModel {
		return ""
	}
	return "\x01" + m
}

// Validate checks every row, that no row is given twice, that every vendor
// keyfleet normalizes has a default row, and that each default row claims
// nothing a model of its vendor lacks (a fallback never overstates a lock).
func (m Matrix) Validate() error {
	var errs []error
	seen := map[string]bool{}
	defaults := map[string]Profile{}
	for _, p := range m {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[p.key()] {
			errs = append(errs, fmt.Errorf("profile %s: given twice", p.Name()))
		}
		seen[p.key()] = true
		if p.Model == DefaultModel {
			defaults[p.Vendor] = p
		}
	}
	for _, v := range event.Vendors {
		if _, ok := defaults[v]; !ok {
			errs = append(errs, fmt.Errorf("vendor %s: no default row (model %q)", v, DefaultModel))
		}
	}
	for _, p := range m {
		d, ok := defaults[p.Vendor]
		if ok && p.Model != DefaultModel && !d.AtMost(p.Capabilities) {
			errs = append(errs, fmt.Errorf("profile %s: the vendor's default row claims more than this model: make the default weaker", p.Name()))
		}
	}
	return errors.Join(errs...)
}

// Match is the row a lock is judged by. Fallback is empty when a row of the
// lock's model matched, and otherwise says why the vendor's default row was
// used.
type Match struct {
	Profile
	Fallback string `json:"fallback,omitempty"`
}

// Lookup finds a lock's capabilities: among the rows of its vendor and model
// whose firmware rule the firmware meets, the one with the highest minimum.
// An unknown model, or a firmware no rule covers (older than every rule, or
// not a version), falls back to the vendor's default row and says so; a
// vendor with no rows is ErrUnknownVendor.
func (m Matrix) Lookup(vendor, model, firmware string) (Match, error) {
	fw, fwOK := parseVersion(firmware)
	var def, best *Profile
	known := false
	for i := range m {
		p := &m[i]
		if p.Vendor != vendor {
			continue
		}
		if p.Model == DefaultModel {
			def = p
			continue
		}
		if p.Model != model {
			continue
		}
		known = true
		min := p.min()
		if min != nil && (!fwOK || compare(fw, min) < 0) {
			continue
		}
		if best == nil || compare(min, best.min()) > 0 {
			best = p
		}
	}
	if best != nil {
		return Match{Profile: *best}, nil
	}
	if def == nil {
		return Match{}, fmt.Errorf("%w %q", ErrUnknownVendor, vendor)
	}
	var why string
	switch {
	case model == "" || model == DefaultModel:
		why = "no model recorded: judged by the vendor's conservative default"
	case !known:
		why = fmt.Sprintf("model %q is not in the matrix: judged by the vendor's conservative default", model)
	case firmware == "":
		why = fmt.Sprintf("no firmware recorded and every %s row needs a minimum: judged by the vendor's conservative default", model)
	default:
		why = fmt.Sprintf("firmware %q meets no %s row: judged by the vendor's conservative default", firmware, model)
	}
	return Match{Profile: *def, Fallback: why}, nil
}
