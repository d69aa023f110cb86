package feed

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// PathImport is the import route.
const PathImport = "/v1/identity/import"

// API serves POST /v1/identity/import.
type API struct {
	Target Target
	// Audit records every applied import (not dry runs): who, which feed,
	// how many of each change. Required.
	Audit  audit.Appender
	Logger *slog.Logger
	// Timeout bounds one import (default 10 min).
	Timeout time.Duration
}

// Routes returns the import route, for the scim role (an HR system's
// token) and admins.
func (a *API) Routes() []httpapi.Route {
	return []httpapi.Route{{Method: fiber.MethodPost, Path: PathImport,
		Summary: "Import an HR/tenant feed (CSV or JSON people; query: dry_run, mode=full|delta, source): the difference " +
			"with the identity store, written as SCIM writes (joiners, movers, leavers); dry_run=true only plans.",
		Roles: []httpapi.Role{httpapi.RoleSCIM}, Handler: a.handleImport}}
}

func (a *API) handleImport(c *fiber.Ctx) error {
	data := bytes.Clone(c.Body())
	format := strings.ToLower(strings.Clone(c.Query("format")))
	ctype, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if ctype == "multipart/form-data" {
		fh, err := c.FormFile("file")
		if err != nil {
			return httpapi.BadRequest("file", "a multipart upload needs a file field named file")
		}
		f, err := fh.Open()
		if err != nil {
			return httpapi.BadRequest("file", err.Error())
		}
		data, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return httpapi.BadRequest("file", err.Error())
		}
		ctype = fh.Header.Get(fiber.HeaderContentType)
		if strings.HasSuffix(strings.ToLower(fh.Filename), ".csv") {
			ctype = "text/csv"
		}
	}
	if format == "" {
		switch {
		case strings.Contains(ctype, "csv"):
			format = FormatCSV
		case strings.Contains(ctype, "json"):
			format = FormatJSON
		}
	}
	dry, err := strconv.ParseBool(cmp.Or(c.Query("dry_run"), "false"))
	if err != nil {
		return httpapi.BadRequest("dry_run", "want true or false")
	}
	o := Options{Source: strings.Clone(c.Query("source")), Mode: strings.Clone(c.Query("mode")), DryRun: dry}
	if o.Mode != "" && o.Mode != ModeFull && o.Mode != ModeDelta {
		return httpapi.BadRequest("mode", "want full or delta")
	}
	if o.Source != "" && (len(o.Source) > 64 || strings.ContainsFunc(o.Source, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) })) {
		return httpapi.BadRequest("source", "want a short name without whitespace")
	}
	people, err := Parse(data, format)
	if err != nil {
		var re *RowError
		if errors.As(err, &re) {
			pr := httpapi.BadRequest("body", err.Error())
			pr.Errors = []httpapi.FieldError{{Field: re.Field, Index: &re.Row, Reason: re.Reason}}
			return pr
		}
		return httpapi.BadRequest("body", err.Error())
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), timeout)
	defer cancel()
	caller := httpapi.Caller(c)
	actor := cmp.Or(caller.Name, caller.TokenID)
	if !dry {
		// Audited before it is done (no audit, no action); the outcome is
		// in the response and in the identity changes it causes.
		if err := a.Audit.Append(ctx, audit.Entry{Actor: actor, Action: "identity.import", Target: cmp.Or(o.Source, "hr"),
			Details: map[string]string{"mode": cmp.Or(o.Mode, ModeFull), "people": strconv.Itoa(len(people))},
			TsMs:    time.Now().UnixMilli()}); err != nil {
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable", err.Error())
		}
	}
	plan, err := Import(ctx, a.Target, people, o)
	if err != nil {
		if plan == nil {
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", fmt.Sprintf("import: %v", err))
		}
		if a.Logger != nil {
			a.Logger.Warn("identity import interrupted", "err", err)
		}
	}
	return c.JSON(plan)
}
