// Package vendors assembles the vendor adapters keyfleet ships and renders
// their mapping tables as docs/vendors.md.
package vendors

import (
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/legacy"
	"github.com/keyfleet/keyfleet/normalize/matter"
	"github.com/keyfleet/keyfleet/normalize/nuki"
	"github.com/keyfleet/keyfleet/normalize/schlage"
	"github.com/keyfleet/keyfleet/normalize/seam"
)

// Adapters returns every adapter by vendor name.
func Adapters() map[string]normalize.Adapter {
	return map[string]normalize.Adapter{
		matter.Vendor:  matter.Adapter{},
		nuki.Vendor:    nuki.Adapter{},
		schlage.Vendor: schlage.Adapter{},
		seam.Vendor:    seam.Adapter{},
		legacy.Vendor:  legacy.Adapter{},
	}
}

// Names returns the vendor names in documentation order (event.Vendors).
func Names() []string { return event.Vendors }
