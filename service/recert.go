package service

import (
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/recert"
)

// RecertConfig configures access recertification.
type RecertConfig struct {
	// OnDeadline is what a new campaign does by default with the access
	// nobody confirmed by its deadline: suspend or none.
	OnDeadline string
}

func (c *RecertConfig) registerFlags(s *flagenv.Set) {
	s.String(&c.OnDeadline, "recert-on-deadline", "KEYFLEET_RECERT_ON_DEADLINE", recert.OnDeadlineSuspend,
		"what an access recertification does by default with credentials nobody confirmed by its deadline: suspend or none (a campaign may say otherwise)")
}

func (c *RecertConfig) validate() error {
	if !slices.Contains(recert.OnDeadlines, c.OnDeadline) {
		return fmt.Errorf("--recert-on-deadline %q: want suspend or none", c.OnDeadline)
	}
	return nil
}
