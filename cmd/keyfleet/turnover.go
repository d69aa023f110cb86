package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/sim/turnover"
)

// runSimulateTurnover implements `keyfleet simulate turnover`: staff
// turnover pushed to keyfleet's SCIM service provider (sim/turnover).
func runSimulateTurnover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		ff              fleetFlags
		scimURL, token  string
		every, duration time.Duration
		maxPeople       int
	)
	fs := flagenv.New("simulate turnover", "Staff turnover for identity sync: people join (created over SCIM, then added to a\n"+
		"group named like a role template), move (to another role's group) and leave (deactivated,\n"+
		"deleted, or an end date that passes a little later) at the fleet's sites, one change every\n"+
		"--every on average, pushed to keyfleet's SCIM service provider as an identity provider would.\n"+
		"keyfleet turns them into credential requests and revocations (leaver latency: GET /v1/kpis).")
	fs.FlagSet().SetOutput(stderr)
	ff.register(fs)
	fs.String(&scimURL, "scim-url", "KEYFLEET_SCIM_URL", "http://127.0.0.1:8080/scim/v2", "keyfleet's SCIM base URL")
	fs.Secret(&token, "scim-token", "KEYFLEET_SCIM_TOKEN", "API token of role scim")
	fs.Duration(&every, "every", "KEYFLEET_SIM_TURNOVER_EVERY", 30*time.Second, "mean time between changes")
	fs.Int(&maxPeople, "max-people", "KEYFLEET_SIM_TURNOVER_MAX_PEOPLE", 40, "most people the simulation keeps on staff")
	fs.Duration(&duration, "duration", "KEYFLEET_SIM_DURATION", 0, "stop after this long (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if token == "" {
		return usageError{errors.New("--scim-token (KEYFLEET_SCIM_TOKEN) is required")}
	}
	logger := newLogger(stderr, ff.logLevel, "text")
	fl, err := ff.fleet()
	if err != nil {
		return err
	}
	sites := make([]string, len(fl.Sites))
	for i, s := range fl.Sites {
		sites[i] = s.ID
	}
	d, err := turnover.NewDriver(turnover.Options{Client: &turnover.Client{Base: scimURL, Token: token}, Sites: sites,
		Seed: uint64(ff.seed), Every: every, MaxPeople: maxPeople, Logger: logger})
	if err != nil {
		return usageError{err}
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	counts := map[string]int{}
	err = d.Run(ctx, func(c turnover.Change) {
		counts[c.Kind]++
		logger.Info("turnover", "change", c.Kind, "how", c.How, "person", c.ExternalID, "group", c.Group)
	})
	fmt.Fprintf(stdout, "turnover: %d joined, %d moved, %d left\n", counts["joined"], counts["moved"], counts["left"])
	return err
}
