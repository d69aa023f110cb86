package httpapi

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/gofiber/fiber/v2"
)

// QueryParams validates a request's query parameters against the allowed
// names: unknown, repeated, empty, over-long (128) or non-printable values
// are 400 problem documents naming the parameter.
func QueryParams(c *fiber.Ctx, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	var perr error
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
		if perr != nil {
			return
		}
		key, val := string(k), string(v)
		switch {
		case !slices.Contains(allowed, key):
			p := NewProblem(fiber.StatusBadRequest, "unknown_parameter",
				fmt.Sprintf("unknown parameter %q (known: %s)", key, strings.Join(allowed, ", ")))
			p.Field = key
			perr = p
		case out[key] != "":
			perr = BadRequest(key, key+" is repeated")
		case val == "":
			perr = BadRequest(key, key+" must not be empty")
		case len(val) > 128 || strings.IndexFunc(val, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			perr = BadRequest(key, key+" must be at most 128 printable characters")
		default:
			out[key] = val
		}
	})
	return out, perr
}
