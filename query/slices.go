package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Slice dimensions of GET /v1/kpis (issue 19): slice=<dim> cuts every KPI
// by one dimension; the filter parameters restrict the events and
// credentials counted.
const (
	DimSite         = "site"
	DimVendor       = "vendor"
	DimLockModel    = "lock_model"
	DimLockFirmware = "lock_firmware"
	DimPhoneModel   = "phone_model"
	DimOSVersion    = "os_version" // key "<os_name> <os_version>"
	DimAppVersion   = "app_version"
)

// SliceDims are the dimensions GET /v1/kpis can slice by.
var SliceDims = []string{DimSite, DimVendor, DimLockModel, DimLockFirmware, DimPhoneModel, DimOSVersion, DimAppVersion}

// sliceFilters are GET /v1/kpis' filter parameters (comma-separated lists).
var sliceFilters = []string{"site", "vendor", "lock_model", "lock_firmware", "phone_model", "os_name", "os_version", "app_version"}

// A KPI family: which dimensions and filters its source can be cut by.
type sliceFamily struct {
	name    string
	dims    []string
	filters []string
	why     string // why other dimensions and filters do not apply
}

var (
	familyAccess = sliceFamily{name: "access", dims: SliceDims, filters: sliceFilters}
	// Credentials are issued for a site and activated on one phone; they
	// span many locks and vendors.
	familyCredentials = sliceFamily{name: "activation, time_to_issue",
		dims:    []string{DimSite, DimPhoneModel, DimOSVersion, DimAppVersion},
		filters: []string{"site", "phone_model", "os_name", "os_version", "app_version"},
		why:     "a credential belongs to a site and is activated on one phone, but spans many locks and vendors"}
	// Revocation latency is measured per lock (its applied ack).
	familyRevocation = sliceFamily{name: "revocation_latency",
		dims: []string{DimSite, DimVendor, DimLockModel, DimLockFirmware}, filters: []string{"site", "vendor", "lock_model", "lock_firmware"},
		why: "revocation latency is measured per lock; a revocation does not involve the phone"}
	familyExceptions = sliceFamily{name: "exceptions", dims: []string{DimSite}, filters: []string{"site"},
		why: "exceptions are recorded per credential and site"}
)

// fits reports whether the family can be cut by dim ("" for none) under
// the filters given.
func (f sliceFamily) fits(dim string, filters map[string][]string) bool {
	if dim != "" && !slices.Contains(f.dims, dim) {
		return false
	}
	for k := range filters {
		if !slices.Contains(f.filters, k) {
			return false
		}
	}
	return true
}

// SliceKPIs are the KPIs of one slice (or of the whole filtered set). A
// KPI family the slice's dimension or the filters cannot cut is null.
type SliceKPIs struct {
	Key string `json:"key"`
	// Access, from access_events.
	Events  uint64 `json:"events"`
	Granted uint64 `json:"granted"`
	Denied  uint64 `json:"denied"`
	// DeniedShare is denied / (granted + denied); null without attempts.
	DeniedShare *float64 `json:"denied_share"`
	// SupportFailures are denials and errors of keys that should have
	// worked (reason invalid_credential, unknown, insufficient_battery,
	// jammed or none; not policy denials).
	SupportFailures uint64 `json:"support_failures"`
	// SupportFailuresPer1000 is support failures per 1,000 events.
	SupportFailuresPer1000 float64 `json:"support_failures_per_1000"`

	Activation        *SliceActivation `json:"activation"`
	TimeToIssue       *SliceQuantiles  `json:"time_to_issue"`
	RevocationLatency *SliceQuantiles  `json:"revocation_latency"`
	Exceptions        *SliceExceptions `json:"exceptions"`
}

// SliceActivation: credentials issued in the range and how many were
// activated with verified attestation.
type SliceActivation struct {
	Issued    uint64   `json:"issued"`
	Activated uint64   `json:"activated"`
	Rate      *float64 `json:"rate"`
}

// SliceQuantiles is a latency distribution in seconds.
type SliceQuantiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_s"`
	P95   float64 `json:"p95_s"`
}

// SliceExceptions: live credentials at the end of the range and how many
// are exceptions, per 1,000.
type SliceExceptions struct {
	Live        uint64  `json:"live"`
	Exceptions  uint64  `json:"exceptions"`
	PerThousand float64 `json:"per_1000"`
}

// Slicing is the sliced part of GET /v1/kpis: the KPIs of the filtered
// set (Total) and of each value of the slice dimension.
type Slicing struct {
	Slice   string              `json:"slice,omitempty"`
	Filters map[string][]string `json:"filters"`
	Total   SliceKPIs           `json:"total"`
	Slices  []SliceKPIs         `json:"slices"`
	// NotSliced says, per null KPI family, why the slice or the filters do
	// not apply to it.
	NotSliced map[string]string `json:"not_sliced,omitempty"`
}

var (
	kpiSlicesAccessSQL      = chstorage.Query("query/kpi_slices_access")
	kpiSlicesCredentialsSQL = chstorage.Query("query/kpi_slices_credentials")
	kpiSlicesRevocationSQL  = chstorage.Query("query/kpi_slices_revocation")
	kpiSlicesExceptionsSQL  = chstorage.Query("query/kpi_slices_exceptions")
)

// liveStates are the credential states that count as live.
var liveStates = func() []string {
	var out []string
	for _, s := range event.States {
		if s != event.StateRevoked && s != event.StateArchived {
			out = append(out, s)
		}
	}
	return out
}()

// sliceParams are GET /v1/kpis' slice and filter parameters.
func sliceParams() []openapi.Param {
	out := []openapi.Param{{Name: "slice", Enum: SliceDims, Description: "cut every KPI by this dimension (slices); " +
		"os_version keys are \"<os_name> <os_version>\". A KPI whose source cannot be cut by it is null (not_sliced says why)"}}
	for _, f := range sliceFilters {
		p := openapi.Param{Name: f, List: true, MaxLen: 128,
			Description: fmt.Sprintf("only events and credentials whose %s is one of these (comma-separated); filtered KPIs are in total and slices", f)}
		if f == "vendor" {
			p.Enum = event.Vendors
		}
		out = append(out, p)
	}
	return out
}

// famRows are one family's rows by key ("" with dimension "all" is the total).
type famRows map[string]func(*SliceKPIs)

// slicing computes the sliced KPIs over r for dim ("" for the total only)
// and filters (parameter → values; a site-scoped caller's site filter is
// already narrowed to its sites).
func (s *Service) slicing(ctx context.Context, r timeRange, dim string, filters map[string][]string) (*Slicing, error) {
	out := &Slicing{Slice: dim, Filters: filters, Slices: []SliceKPIs{}, NotSliced: map[string]string{}}
	from := timeMs(r.from).Truncate(time.Second)
	type job struct {
		f    sliceFamily
		stmt *chstorage.Statement
		args chstorage.Args
		scan func(sc func(...any) error) (func(*SliceKPIs), error)
	}
	jobs := []job{
		{familyAccess, kpiSlicesAccessSQL, r.args(chstorage.Args{}), func(sc func(...any) error) (func(*SliceKPIs), error) {
			var events, granted, denied, support uint64
			if err := sc(&events, &granted, &denied, &support); err != nil {
				return nil, err
			}
			return func(k *SliceKPIs) {
				k.Events, k.Granted, k.Denied, k.SupportFailures = events, granted, denied, support
				k.DeniedShare = ratio(denied, granted+denied)
				if events > 0 {
					k.SupportFailuresPer1000 = 1000 * float64(support) / float64(events)
				}
			}, nil
		}},
		{familyCredentials, kpiSlicesCredentialsSQL, chstorage.Args{"from": from, "from_ms": r.from, "to_ms": r.to},
			func(sc func(...any) error) (func(*SliceKPIs), error) {
				var issued, activated, timed uint64
				var qs []float64
				if err := sc(&issued, &activated, &timed, &qs); err != nil {
					return nil, err
				}
				return func(k *SliceKPIs) {
					k.Activation = &SliceActivation{Issued: issued, Activated: activated, Rate: ratio(activated, issued)}
					k.TimeToIssue = quantiles2(timed, qs)
				}, nil
			}},
		{familyRevocation, kpiSlicesRevocationSQL, chstorage.Args{"from": from, "from_ms": r.from, "to_ms": r.to},
			func(sc func(...any) error) (func(*SliceKPIs), error) {
				var n uint64
				var qs []float64
				if err := sc(&n, &qs); err != nil {
					return nil, err
				}
				return func(k *SliceKPIs) { k.RevocationLatency = quantiles2(n, qs) }, nil
			}},
		{familyExceptions, kpiSlicesExceptionsSQL, chstorage.Args{"live": liveStates, "to_ms": r.to},
			func(sc func(...any) error) (func(*SliceKPIs), error) {
				var live, exc uint64
				if err := sc(&live, &exc); err != nil {
					return nil, err
				}
				return func(k *SliceKPIs) {
					k.Exceptions = &SliceExceptions{Live: live, Exceptions: exc}
					if live > 0 {
						k.Exceptions.PerThousand = 1000 * float64(exc) / float64(live)
					}
				}, nil
			}},
	}
	// results[i][0] is job i's total, results[i][1] its slices.
	results := make([][2]famRows, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for i, j := range jobs {
		if !j.f.fits("", filters) {
			out.NotSliced[j.f.name] = j.f.why
			continue
		}
		dims := []string{"all"}
		if dim != "" {
			if j.f.fits(dim, filters) {
				dims = append(dims, dim)
			} else {
				out.NotSliced[j.f.name] = j.f.why
			}
		}
		for di, d := range dims {
			a := chstorage.Args{"dim": d}
			for k, v := range j.args {
				a[k] = v
			}
			for _, k := range j.f.filters {
				if v := filters[k]; len(v) > 0 {
					a[k] = v
				}
			}
			g.Go(func() error {
				rows, err := j.stmt.Query(gctx, s.opts.Conn, a)
				if err != nil {
					return fmt.Errorf("kpi slices %s: %w", j.f.name, err)
				}
				defer rows.Close()
				got := famRows{}
				for rows.Next() {
					var key string
					set, err := j.scan(func(dst ...any) error { return rows.Scan(append([]any{&key}, dst...)...) })
					if err != nil {
						return fmt.Errorf("kpi slices %s: %w", j.f.name, err)
					}
					got[key] = set
				}
				if err := rows.Err(); err != nil {
					return fmt.Errorf("kpi slices %s: %w", j.f.name, err)
				}
				results[i][di] = got
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	byKey := map[string]*SliceKPIs{}
	for i, j := range jobs {
		if results[i][0] == nil {
			continue // not computed: the filters do not apply
		}
		set, ok := results[i][0][""]
		if !ok { // nothing counted: zeros
			set, _ = j.scan(func(...any) error { return nil })
		}
		set(&out.Total)
		for key, set := range results[i][1] {
			k, ok := byKey[key]
			if !ok {
				k = &SliceKPIs{Key: key}
				byKey[key] = k
			}
			set(k)
		}
	}
	for _, k := range byKey {
		out.Slices = append(out.Slices, *k)
	}
	sort.Slice(out.Slices, func(a, b int) bool {
		x, y := out.Slices[a], out.Slices[b]
		if x.Events != y.Events {
			return x.Events > y.Events
		}
		return x.Key < y.Key
	})
	if len(out.NotSliced) == 0 {
		out.NotSliced = nil
	}
	return out, nil
}

// quantiles2 is a p50/p95 distribution from ClickHouse quantiles in ms.
func quantiles2(n uint64, qs []float64) *SliceQuantiles {
	q := &SliceQuantiles{Count: n}
	if n > 0 && len(qs) == 2 {
		q.P50, q.P95 = seconds(qs[0]), seconds(qs[1])
	}
	return q
}

// ratio is a/b, nil when b is 0.
func ratio(a, b uint64) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(a) / float64(b)
	return &v
}

// seconds turns a ClickHouse quantile in ms (NaN for none) into seconds.
func seconds(ms float64) float64 {
	if math.IsNaN(ms) || math.IsInf(ms, 0) {
		return 0
	}
	return ms / 1000
}
