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

// ErrAudit wraps an audit append failure: the action was not carried out.
var ErrAudit = errors.New("audit log unavailable, action not carried out")
