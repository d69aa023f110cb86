package scim

import (
	"fmt"
	"net/http"
)

// scimType values (RFC 7644 §3.12).
const (
	errInvalidFilter = "invalidFilter"
	errTooMany       = "tooMany"
	errUniqueness    = "uniqueness"
	errMutability    = "mutability"
	errInvalidSyntax = "invalidSyntax"
	errInvalidPath   = "invalidPath"
	errNoTarget      = "noTarget"
	errInvalidValue  = "invalidValue"
	errInvalidVers   = "invalidVers"
)

// Error is a SCIM error response (urn:ietf:params:scim:api:messages:2.0:Error).
// Its Detail goes to the client; it never carries attribute values.
type Error struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("scim %d: %s", e.Status, e.Detail)
}

// body is the JSON error document; status is a string, as in RFC 7644's examples.
func (e *Error) body() map[string]any {
	m := map[string]any{"schemas": []string{msgError}, "status": fmt.Sprint(e.Status)}
	if e.ScimType != "" {
		m["scimType"] = e.ScimType
	}
	if e.Detail != "" {
		m["detail"] = e.Detail
	}
	return m
}

func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf(format, args...)}
}
