package httpapi

import (
	"net/url"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// PathParam returns a path parameter percent-decoded (/v1/tokens/tok%5F1 →
// tok_1). A malformed escape or a value that is not UTF-8 is a 400 problem
// naming the parameter. The value is a copy, safe to keep.
func PathParam(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil {
		return "", BadRequest(name, "the path parameter "+name+" has a malformed percent-escape")
	}
	if !utf8.ValidString(v) {
		return "", invalidUTF8(name, "the path parameter "+name+" is not valid UTF-8")
	}
	return string([]byte(v)), nil
}

func invalidUTF8(field, detail string) *Problem {
	p := NewProblem(fiber.StatusBadRequest, "invalid_utf8", detail)
	p.Field = field
	return p
}

// checkInput refuses, with 400, a request whose path parameters, query
// parameters or body are not valid UTF-8 (after percent-decoding), instead
// of letting a decoder replace the bad bytes silently. Routes that take
// binary bodies set Route.BinaryBody.
func checkInput(c *fiber.Ctx, r Route) error {
	for _, name := range c.Route().Params {
		if _, err := PathParam(c, name); err != nil {
			return err
		}
	}
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if bad != "" {
			return
		}
		if !utf8.Valid(k) {
			bad = "?"
		} else if !utf8.Valid(v) {
			bad = string(k)
		}
	})
	if bad != "" {
		return invalidUTF8(bad, "a query parameter is not valid UTF-8")
	}
	if !r.BinaryBody && !utf8.Valid(c.Body()) {
		return invalidUTF8("body", "the request body is not valid UTF-8")
	}
	return nil
}
