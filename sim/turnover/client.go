// Package turnover simulates the people side of an estate for identity
// sync: the fleet's people as an HR feed (People, for `keyfleet identity
// import`), and staff turnover over time — joiners, movers and leavers
// pushed to keyfleet's SCIM service provider the way an identity provider
// (Entra ID, Okta, a tenant system) pushes them (Driver, over Client).
package turnover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// SCIM schema URNs the client writes.
const (
	schemaUser   = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaAccess = "urn:keyfleet:params:scim:schemas:extension:access:2.0:User"
	msgPatchOp   = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	contentType  = "application/scim+json"
)

// Client is a small SCIM 2.0 client: Base is the service provider's
// /scim/v2 URL, Token a bearer token of role scim.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// Resource is the part of a SCIM resource the driver reads.
type Resource struct {
	ID          string         `json:"id"`
	UserName    string         `json:"userName,omitempty"`
	ExternalID  string         `json:"externalId,omitempty"`
	DisplayName string         `json:"displayName,omitempty"`
	Active      *bool          `json:"active,omitempty"`
	Groups      []Ref          `json:"groups,omitempty"`
	Members     []Ref          `json:"members,omitempty"`
	Access      map[string]any `json:"urn:keyfleet:params:scim:schemas:extension:access:2.0:User,omitempty"`
}

// Ref is a group's member or a user's group.
type Ref struct {
	Value   string `json:"value"`
	Display string `json:"display,omitempty"`
}

// StatusError is a SCIM error answer.
type StatusError struct {
	Status int
	Detail string
}

func (e *StatusError) Error() string { return fmt.Sprintf("scim %d: %s", e.Status, e.Detail) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", contentType)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("scim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("scim %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(data, &e)
		return &StatusError{Status: resp.StatusCode, Detail: e.Detail}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// List returns every resource of a type ("Users", "Groups") matching a
// SCIM filter ("" for all), page by page.
func (c *Client) List(ctx context.Context, typ, filter string) ([]Resource, error) {
	var out []Resource
	for start := 1; ; {
		q := url.Values{"startIndex": {fmt.Sprint(start)}, "count": {"200"}}
		if filter != "" {
			q.Set("filter", filter)
		}
		var page struct {
			TotalResults int        `json:"totalResults"`
			Resources    []Resource `json:"Resources"`
		}
		if err := c.do(ctx, http.MethodGet, "/"+typ+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Resources...)
		start += len(page.Resources)
		if len(page.Resources) == 0 || start > page.TotalResults {
			return out, nil
		}
	}
}

// Create creates a resource and returns it.
func (c *Client) Create(ctx context.Context, typ string, doc map[string]any) (Resource, error) {
	var r Resource
	err := c.do(ctx, http.MethodPost, "/"+typ, doc, &r)
	return r, err
}

// Patch applies PatchOp operations.
func (c *Client) Patch(ctx context.Context, typ, id string, ops ...map[string]any) error {
	return c.do(ctx, http.MethodPatch, "/"+typ+"/"+url.PathEscape(id),
		map[string]any{"schemas": []string{msgPatchOp}, "Operations": ops}, nil)
}

// Delete deletes a resource.
func (c *Client) Delete(ctx context.Context, typ, id string) error {
	return c.do(ctx, http.MethodDelete, "/"+typ+"/"+url.PathEscape(id), nil, nil)
}
