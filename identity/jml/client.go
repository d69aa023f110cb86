package jml

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/control"
)

// Control is the control plane as identity sync uses it: through its
// normal request path (validation, the verified-identity check,
// idempotency, back-pressure, the audit log), as an API client.
type Control interface {
	// Credentials returns a subject's credentials (every state).
	Credentials(ctx context.Context, subject string) ([]*control.Record, error)
	// Request asks for one credential; the same idempotency key always
	// answers the same request.
	Request(ctx context.Context, idempotencyKey string, req control.CredentialRequest) (*control.ProvisionResponse, error)
	// Revoke revokes one credential (every lock holding it is told).
	Revoke(ctx context.Context, credentialID, reason string) (*control.OpResponse, error)
	// RevokeSubject revokes every live credential of a subject; nil when it
	// holds none.
	RevokeSubject(ctx context.Context, subject, reason string) (*control.SubjectRevokeResponse, error)
	// Revocation reads a revocation's progress.
	Revocation(ctx context.Context, id string) (*control.Revocation, error)
}

// APIError is a refusal of the control plane's API: its status and the
// problem document's stable code.
type APIError struct {
	Status     int
	Code       string
	Detail     string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	return fmt.Sprintf("control api %d %s: %s", e.Status, e.Code, e.Detail)
}

// Transient reports whether retrying later can help (throttling, the
// control plane starting or a dependency down).
func (e *APIError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// HTTPControl is Control over keyfleet's HTTP API: Base is the service's
// URL, Token a manager's (or, in serve, identity sync's own) bearer token.
type HTTPControl struct {
	Base   string
	Token  string
	Client *http.Client
}

var _ Control = (*HTTPControl)(nil)

func (h *HTTPControl) do(ctx context.Context, method, path string, body any, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.Base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+h.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("control api %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control api %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var pr struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(data, &pr)
		e := &APIError{Status: resp.StatusCode, Code: pr.Code, Detail: pr.Detail}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control api %s %s: decode: %w", method, path, err)
	}
	return nil
}

// Credentials implements Control.
func (h *HTTPControl) Credentials(ctx context.Context, subject string) ([]*control.Record, error) {
	var out struct {
		Credentials []*control.Record `json:"credentials"`
	}
	err := h.do(ctx, http.MethodGet, "/v1/credentials?limit=10000&subject_id="+url.QueryEscape(subject), nil, &out)
	return out.Credentials, err
}

// Request implements Control.
func (h *HTTPControl) Request(ctx context.Context, key string, req control.CredentialRequest) (*control.ProvisionResponse, error) {
	var out control.ProvisionResponse
	if err := h.do(ctx, http.MethodPost, "/v1/credentials", req, &out, "Idempotency-Key", key); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke implements Control.
func (h *HTTPControl) Revoke(ctx context.Context, credentialID, reason string) (*control.OpResponse, error) {
	var out control.OpResponse
	if err := h.do(ctx, http.MethodPost, "/v1/credentials/"+url.PathEscape(credentialID)+":revoke",
		map[string]string{"reason": reason}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeSubject implements Control.
func (h *HTTPControl) RevokeSubject(ctx context.Context, subject, reason string) (*control.SubjectRevokeResponse, error) {
	var out control.SubjectRevokeResponse
	err := h.do(ctx, http.MethodPost, "/v1/subjects/"+url.PathEscape(subject)+":revoke", map[string]string{"reason": reason}, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == "no_live_credentials" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Revocation implements Control.
func (h *HTTPControl) Revocation(ctx context.Context, id string) (*control.Revocation, error) {
	var out control.Revocation
	if err := h.do(ctx, http.MethodGet, "/v1/revocations/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
