package turnover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// DefaultRoles are the groups people join (named like the role templates
// they map to by default).
var DefaultRoles = []string{"resident", "staff", "maintenance", "concierge", "cleaning", "contractor"}

// Options configure a Driver.
type Options struct {
	Client *Client
	// Sites people are placed at (the access extension's site). Required.
	Sites []string
	// Roles are the group names people join (default DefaultRoles).
	Roles []string
	Seed  uint64
	// Every is the mean time between changes (exponentially distributed;
	// default 30 s).
	Every time.Duration
	// MaxPeople caps the driver's own population (default 40).
	MaxPeople int
	// Prefix starts the externalId of every person the driver creates, so
	// it finds them again after a restart (default "turnover-<seed>-").
	Prefix string
	// EndDateIn is how far ahead an end-date leaver's end date is set: it
	// becomes a leaver when keyfleet's sweep finds the date passed
	// (default 20 s).
	EndDateIn time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Change is one change the driver made.
type Change struct {
	Kind       string // joined, moved, left
	How        string // created, group, deactivated, deleted, end_date
	ExternalID string
	Group      string
}

// Driver pushes joiners, movers and leavers to a SCIM service provider.
type Driver struct {
	o      Options
	r      *rand.Rand
	groups map[string]string // role → group id
	people []person          // active people the driver created
	next   int
}

type person struct {
	id, ext, group string
}

// NewDriver returns a driver.
func NewDriver(o Options) (*Driver, error) {
	if o.Client == nil {
		return nil, errors.New("turnover: Client is required")
	}
	if len(o.Sites) == 0 {
		return nil, errors.New("turnover: at least one site is required")
	}
	if len(o.Roles) == 0 {
		o.Roles = DefaultRoles
	}
	if o.Every <= 0 {
		o.Every = 30 * time.Second
	}
	if o.MaxPeople <= 0 {
		o.MaxPeople = 40
	}
	if o.Prefix == "" {
		o.Prefix = fmt.Sprintf("turnover-%d-", o.Seed)
	}
	if o.EndDateIn <= 0 {
		o.EndDateIn = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Driver{o: o, r: rand.New(rand.NewPCG(o.Seed, 0x7475726e6f766572))}, nil
}

// Start finds or creates the role groups and the people the driver made
// before (a restart continues with them).
func (d *Driver) Start(ctx context.Context) error {
	groups, err := d.o.Client.List(ctx, "Groups", "")
	if err != nil {
		return err
	}
	d.groups = map[string]string{}
	memberOf := map[string]string{}
	for _, g := range groups {
		for _, role := range d.o.Roles {
			if strings.EqualFold(g.DisplayName, role) && d.groups[role] == "" {
				d.groups[role] = g.ID
				for _, m := range g.Members {
					memberOf[m.Value] = role
				}
			}
		}
	}
	for _, role := range d.o.Roles {
		if d.groups[role] != "" {
			continue
		}
		g, err := d.o.Client.Create(ctx, "Groups", map[string]any{"schemas": []string{schemaGroup}, "displayName": role})
		if err != nil {
			return fmt.Errorf("create group %s: %w", role, err)
		}
		d.groups[role] = g.ID
	}
	users, err := d.o.Client.List(ctx, "Users", fmt.Sprintf(`externalId sw "%s"`, d.o.Prefix))
	if err != nil {
		return err
	}
	d.people = nil
	for _, u := range users {
		var k int
		if _, err := fmt.Sscanf(strings.TrimPrefix(u.ExternalID, d.o.Prefix), "%d", &k); err == nil {
			d.next = max(d.next, k)
		}
		if u.Active != nil && !*u.Active {
			continue
		}
		if end, _ := u.Access["end_date"].(string); end != "" {
			continue
		}
		d.people = append(d.people, person{id: u.ID, ext: u.ExternalID, group: memberOf[u.ID]})
	}
	return nil
}

// Run makes a change every Every on average until ctx ends. Errors (the
// service starting, a conflict) are logged; the run goes on.
func (d *Driver) Run(ctx context.Context, changed func(Change)) error {
	for {
		if err := d.Start(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			return nil
		} else {
			d.o.Logger.Warn("turnover: cannot reach the SCIM service provider yet", "err", err)
		}
		if !sleep(ctx, 5*time.Second) {
			return nil
		}
	}
	for {
		wait := time.Duration(-math.Log(1-d.r.Float64()) * float64(d.o.Every))
		if !sleep(ctx, min(wait, 10*d.o.Every)) {
			return nil
		}
		c, err := d.Step(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			d.o.Logger.Warn("turnover: change failed", "kind", c.Kind, "err", err)
		case changed != nil:
			changed(c)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var firstNames = []string{"Amira", "Bastian", "Carla", "Dmitri", "Esra", "Finn", "Gwen", "Hassan", "Ilse", "Jun",
	"Kofi", "Lena", "Milo", "Nadia", "Oskar", "Priya", "Quentin", "Rania", "Stefan", "Tuula"}
var lastNames = []string{"Aalto", "Bauer", "Castillo", "Dubois", "Eriksen", "Fontaine", "Grasso", "Horvat", "Ibrahim",
	"Jansen", "Kowalski", "Laurent", "Mensah", "Nieminen", "Ortega", "Petrov"}

// Step makes one change: a joiner while the population is small, else a
// joiner, a mover or a leaver (deactivated, deleted, or an end date that
// passes shortly).
func (d *Driver) Step(ctx context.Context) (Change, error) {
	if d.groups == nil {
		if err := d.Start(ctx); err != nil {
			return Change{}, err
		}
	}
	x := d.r.Float64()
	switch {
	case len(d.people) == 0, len(d.people) < d.o.MaxPeople/3 && x < 0.7, len(d.people) < d.o.MaxPeople && x < 0.4:
		return d.join(ctx)
	case x < 0.7:
		return d.move(ctx)
	}
	return d.leave(ctx)
}

func (d *Driver) join(ctx context.Context) (Change, error) {
	d.next++
	ext := fmt.Sprintf("%s%05d", d.o.Prefix, d.next)
	first, last := firstNames[d.r.IntN(len(firstNames))], lastNames[d.r.IntN(len(lastNames))]
	email := strings.ToLower(first+"."+last) + fmt.Sprintf(".%d@turnover.example", d.next)
	role := d.o.Roles[d.r.IntN(len(d.o.Roles))]
	c := Change{Kind: "joined", How: "created", ExternalID: ext, Group: role}
	u, err := d.o.Client.Create(ctx, "Users", map[string]any{
		"schemas":  []string{schemaUser, schemaAccess},
		"userName": email, "externalId": ext, "displayName": first + " " + last,
		"name":       map[string]any{"givenName": first, "familyName": last},
		"emails":     []any{map[string]any{"value": email, "type": "work", "primary": true}},
		"active":     true,
		schemaAccess: map[string]any{"site": d.o.Sites[d.r.IntN(len(d.o.Sites))]},
	})
	if err != nil {
		return c, err
	}
	if err := d.addMember(ctx, role, u.ID); err != nil {
		return c, err
	}
	d.people = append(d.people, person{id: u.ID, ext: ext, group: role})
	return c, nil
}

func (d *Driver) addMember(ctx context.Context, role, id string) error {
	return d.o.Client.Patch(ctx, "Groups", d.groups[role], map[string]any{"op": "add", "path": "members",
		"value": []any{map[string]any{"value": id}}})
}

func (d *Driver) removeMember(ctx context.Context, role, id string) error {
	return d.o.Client.Patch(ctx, "Groups", d.groups[role], map[string]any{"op": "remove",
		"path": fmt.Sprintf(`members[value eq "%s"]`, id)})
}

// move puts someone in another role's group (the new group first, as an
// identity provider applying a department change does), then takes them
// out of the old one.
func (d *Driver) move(ctx context.Context) (Change, error) {
	i := d.r.IntN(len(d.people))
	p := &d.people[i]
	others := slices.DeleteFunc(slices.Clone(d.o.Roles), func(r string) bool { return r == p.group })
	role := others[d.r.IntN(len(others))]
	c := Change{Kind: "moved", How: "group", ExternalID: p.ext, Group: role}
	if err := d.addMember(ctx, role, p.id); err != nil {
		return c, err
	}
	if p.group != "" {
		if err := d.removeMember(ctx, p.group, p.id); err != nil {
			return c, err
		}
	}
	p.group = role
	return c, nil
}

func (d *Driver) leave(ctx context.Context) (Change, error) {
	i := d.r.IntN(len(d.people))
	p := d.people[i]
	c := Change{Kind: "left", ExternalID: p.ext, Group: p.group}
	var err error
	switch d.r.IntN(3) {
	case 0:
		c.How = "deactivated"
		err = d.o.Client.Patch(ctx, "Users", p.id, map[string]any{"op": "replace", "path": "active", "value": false})
	case 1:
		c.How = "deleted"
		err = d.o.Client.Delete(ctx, "Users", p.id)
	default:
		c.How = "end_date"
		end := d.o.Now().Add(d.o.EndDateIn).UTC().Format(time.RFC3339)
		err = d.o.Client.Patch(ctx, "Users", p.id, map[string]any{"op": "replace", "path": schemaAccess + ":end_date", "value": end})
	}
	if err != nil {
		return c, err
	}
	d.people = slices.Delete(d.people, i, i+1)
	return c, nil
}
