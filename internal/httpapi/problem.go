package httpapi

import (
	"errors"

	"github.com/gofiber/fiber/v2"
)

// Problem is an RFC 9457 problem document. Code is keyfleet's stable,
// machine-readable error code; clients branch on it, not on Title or Detail.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Code     string       `json:"code"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Field    string       `json:"field,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// Extra carries problem-specific members (for example current_state on a 409).
	Extra map[string]any `json:"extra,omitempty"`
}

// FieldError points at one invalid input.
type FieldError struct {
	Field  string `json:"field,omitempty"`
	Index  *int   `json:"index,omitempty"`
	Reason string `json:"reason"`
}

// Error makes a *Problem usable as a handler error: return it and the server
// writes it as application/problem+json.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// NewProblem returns a problem with the given status, stable code and detail.
func NewProblem(status int, code, detail string) *Problem {
	return &Problem{
		Type:   "https://keyfleet.dev/problems/" + code,
		Title:  titleFor(status),
		Status: status,
		Code:   code,
		Detail: detail,
	}
}

// BadRequest is a 400 problem naming the invalid field.
func BadRequest(field, detail string) *Problem {
	p := NewProblem(fiber.StatusBadRequest, "invalid_"+field, detail)
	p.Field = field
	return p
}

func titleFor(status int) string {
	if t := fiberStatusMessage(status); t != "" {
		return t
	}
	return "Error"
}

func fiberStatusMessage(status int) string { return fiber.NewError(status).Message }

// WriteProblem writes p as the response.
func WriteProblem(c *fiber.Ctx, p *Problem) error {
	if p.Instance == "" {
		p.Instance = c.Path()
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.JSON(p, "application/problem+json")
}

// errorHandler turns any handler error into a problem document.
func errorHandler(c *fiber.Ctx, err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return WriteProblem(c, p)
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := map[int]string{
			fiber.StatusNotFound:              "not_found",
			fiber.StatusMethodNotAllowed:      "method_not_allowed",
			fiber.StatusRequestEntityTooLarge: "body_too_large",
			fiber.StatusRequestTimeout:        "timeout",
		}[fe.Code]
		if code == "" {
			code = "http_error"
		}
		return WriteProblem(c, NewProblem(fe.Code, code, fe.Message))
	}
	return WriteProblem(c, NewProblem(fiber.StatusInternalServerError, "internal", "internal error"))
}
