package normalize

import "github.com/keyfleet/keyfleet/internal/event"

// RefHash is event.RefHash (kept while callers move to it).
func RefHash(key []byte, vendor, ref string) string { return event.RefHash(key, vendor, ref) }
