package scim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/identity"
)

// Joiner/mover/leaver detection. A user is entitled while active (an
// absent active counts as true) and its end_date, if any, is in the
// future. Changes follow the entitlement:
//   - not entitled → entitled: joined (created, activated, end_date moved on);
//   - entitled → not entitled: left (deactivated, end_date passed); DELETE
//     is always left;
//   - entitled, direct group memberships changed (or a group renamed): moved;
//   - entitled, site or end_date changed: updated.
// Users that are not entitled produce nothing until they join.

type userState struct {
	subject  string
	entitled bool
	active   bool
	site     string
	end      time.Time
}

func (s *Service) state(r *Record, now time.Time) userState {
	if r == nil {
		return userState{}
	}
	st := userState{subject: SubjectOf(*r, s.opts.Subject, s.opts.SubjectFromExternalID), active: true}
	if a, ok := r.Doc["active"].(bool); ok {
		st.active = a
	}
	if acc, ok := r.Doc[SchemaAccess].(map[string]any); ok {
		st.site, _ = acc["site"].(string)
		if e, ok := acc["end_date"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, e); err == nil {
				st.end = t.UTC()
			}
		}
	}
	st.entitled = st.active && (st.end.IsZero() || st.end.After(now))
	return st
}

// changed emits the changes a stored write implies (before nil: created;
// after nil: deleted).
func (s *Service) changed(ctx context.Context, rt *ResourceType, before, after *Record) {
	var err error
	if rt == userType {
		err = s.userChanged(ctx, before, after)
	} else {
		err = s.groupChanged(ctx, before, after)
	}
	if err != nil {
		s.failed.Inc()
		s.log.Error("scim change notification failed", "type", rt.Name, "err", err)
	}
}

func (s *Service) emit(ctx context.Context, c identity.Change) error {
	if c.Groups == nil {
		c.Groups = []identity.Group{}
	}
	s.changes.WithLabelValues(string(c.Kind)).Inc()
	if s.opts.Notify == nil {
		return nil
	}
	if err := s.opts.Notify(ctx, c); err != nil {
		return fmt.Errorf("notify %s: %w", c.Kind, err)
	}
	return nil
}

func (s *Service) change(kind identity.ChangeKind, st userState, reason string, now time.Time) identity.Change {
	return identity.Change{Kind: kind, SubjectID: st.subject, Site: st.site, EndDate: st.end,
		Active: st.active, Reason: reason, At: now}
}

func (s *Service) userChanged(ctx context.Context, before, after *Record) error {
	now := s.now()
	b, a := s.state(before, now), s.state(after, now)
	var groups []identity.Group
	if after != nil {
		var err error
		if groups, err = s.groupsOf(ctx, after.ID); err != nil {
			return err
		}
	}
	joined := func(reason string) error {
		c := s.change(identity.Joined, a, reason, now)
		c.Groups = groups
		return s.emit(ctx, c)
	}
	switch {
	case after == nil:
		return s.emit(ctx, s.change(identity.Left, b, "deleted", now))
	case before == nil:
		if a.entitled {
			return joined("created")
		}
		return nil
	case b.subject != a.subject:
		var errs []error
		if b.entitled {
			errs = append(errs, s.emit(ctx, s.change(identity.Left, b, "subject_changed", now)))
		}
		if a.entitled {
			errs = append(errs, joined("subject_changed"))
		}
		return errors.Join(errs...)
	case !b.entitled && a.entitled:
		if !b.active {
			return joined("activated")
		}
		return joined("end_date")
	case b.entitled && !a.entitled:
		reason := "deactivated"
		if a.active {
			reason = "end_date"
		}
		return s.emit(ctx, s.change(identity.Left, a, reason, now))
	case a.entitled && (a.site != b.site || !a.end.Equal(b.end)):
		c := s.change(identity.Updated, a, "attributes", now)
		c.Groups = groups
		return s.emit(ctx, c)
	}
	return nil
}

func (s *Service) groupChanged(ctx context.Context, before, after *Record) error {
	var bm, am []string
	var bg, ag identity.Group
	if before != nil {
		bm, bg = memberIDs(before.Doc), groupRef(*before)
	}
	if after != nil {
		am, ag = memberIDs(after.Doc), groupRef(*after)
	}
	renamed := before != nil && after != nil && bg != ag
	var affected []string
	for _, id := range am {
		if renamed || !slices.Contains(bm, id) {
			affected = append(affected, id)
		}
	}
	for _, id := range bm {
		if !slices.Contains(am, id) && !slices.Contains(affected, id) {
			affected = append(affected, id)
		}
	}
	now := s.now()
	var errs []error
	for _, id := range affected {
		u, err := s.opts.Store.Get(ctx, userType.Name, id)
		if errors.Is(err, ErrNotFound) {
			continue // a nested group, or a user deleted meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("scim store: %w", err))
			continue
		}
		st := s.state(&u, now)
		if !st.entitled {
			continue
		}
		groups, err := s.groupsOf(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c := s.change(identity.Moved, st, "membership", now)
		if renamed && slices.Contains(bm, id) && slices.Contains(am, id) {
			c.Reason = "renamed"
		}
		c.Groups = groups
		switch {
		case !slices.Contains(bm, id):
			c.Added = []identity.Group{ag}
		case !slices.Contains(am, id):
			c.Removed = []identity.Group{bg}
		}
		errs = append(errs, s.emit(ctx, c))
	}
	return errors.Join(errs...)
}

// Expire reports, as left, the active users whose end_date lies in
// (since, until]. Run calls it; it is exported for a scheduler of the
// caller's own.
func (s *Service) Expire(ctx context.Context, since, until time.Time) (int, error) {
	users, err := s.opts.Store.List(ctx, Query{Type: userType.Name})
	if err != nil {
		return 0, fmt.Errorf("scim store: %w", err)
	}
	n := 0
	var errs []error
	for i := range users {
		st := s.state(&users[i], until)
		if !st.active || st.end.IsZero() || !st.end.After(since) || st.end.After(until) {
			continue
		}
		n++
		if err := s.emit(ctx, s.change(identity.Left, st, "end_date", until)); err != nil {
			s.failed.Inc()
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// Resync emits every user's current state: joined (with its groups) for
// the entitled, left for the others. The automation must treat changes as
// idempotent; this is how it recovers from a Notify that failed.
func (s *Service) Resync(ctx context.Context) error {
	users, err := s.opts.Store.List(ctx, Query{Type: userType.Name})
	if err != nil {
		return fmt.Errorf("scim store: %w", err)
	}
	now := s.now()
	var errs []error
	for i := range users {
		st := s.state(&users[i], now)
		c := s.change(identity.Left, st, "resync", now)
		if st.entitled {
			c.Kind = identity.Joined
			if c.Groups, err = s.groupsOf(ctx, users[i].ID); err != nil {
				return err
			}
		}
		if err := s.emit(ctx, c); err != nil {
			s.failed.Inc()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run reports users whose end_date passes, every SweepInterval, until ctx
// ends. The first sweep covers every end date up to now, so after a
// restart leavers are reported again rather than missed (at least once).
func (s *Service) Run(ctx context.Context) error {
	var since time.Time
	tick := time.NewTicker(s.opts.SweepInterval)
	defer tick.Stop()
	for {
		until := s.now()
		if _, err := s.Expire(ctx, since, until); err != nil {
			s.log.Warn("scim end_date sweep incomplete", "err", err)
		} else {
			since = until
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
