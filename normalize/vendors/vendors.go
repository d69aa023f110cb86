// Package vendors assembles the vendor adapters keyfleet ships.
package vendors

import (
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/matter"
)

// Adapters returns every adapter by vendor name.
func Adapters() map[string]normalize.Adapter {
	return map[string]normalize.Adapter{
		matter.Vendor: matter.Adapter{},
	}
}
