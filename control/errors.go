package control

import "errors"

// Rejections the owner makes besides illegal transitions
// (*lifecycle.TransitionError).
var (
	ErrSelfApproval      = errors.New("the requester may not approve their own request")
	ErrDuplicateApproval = errors.New("this approver has already approved")
	ErrExists            = errors.New("credential already exists")
	ErrNotFound          = errors.New("credential not found")
	ErrDeviceMismatch    = errors.New("the attestation is for another device; change the device first")
)

// DuplicateError refuses a credential request when the subject already has
// a live credential of the role on the device (and the request did not
// allow an additional one).
type DuplicateError struct{ Existing string }

// DuplicatePrefix starts every DuplicateError's text (the request item's
// error), followed by the existing credential's id.
const DuplicatePrefix = "a live credential exists for this subject, role and device: "

func (e *DuplicateError) Error() string { return DuplicatePrefix + e.Existing }

// ErrAudit wraps an audit append failure: the action was not carried out.
var ErrAudit = errors.New("audit log unavailable, action not carried out")
