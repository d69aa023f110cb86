package grant

import "github.com/keyfleet/keyfleet/internal/registry"

// MatchingForTest exposes the checker's index.
func MatchingForTest(c *Checker, site string, groups []string) []registry.Lock {
	return c.locks().matching(site, groups)
}
