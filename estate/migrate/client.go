package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client drives keyfleet's estate API (keyfleet estate migrate, import,
// export): an HTTP client with a token.
type Client struct {
	URL   string // base URL, e.g. http://127.0.0.1:8080
	Token string
	HTTP  *http.Client // default: 60 s timeout
}

// APIError is a problem document the API answered with.
type APIError struct {
	Status int
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Index  *int   `json:"index"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Detail)
	for i, fe := range e.Errors {
		if i == 20 {
			s += fmt.Sprintf("\n  ... %d more", len(e.Errors)-20)
			break
		}
		where := fe.Field
		if fe.Index != nil {
			where += fmt.Sprintf(" %d", *fe.Index)
		}
		s += "\n  " + where + ": " + fe.Reason
	}
	return s
}

// Do sends a request and decodes a JSON answer into out (a []byte pointer
// receives the raw body).
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Detail = strings.TrimSpace(string(data))
		}
		return e
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

// Start asks for a migration (a dry run only plans it).
func (c *Client) Start(ctx context.Context, r Request, dryRun bool) (*Started, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	path := "/v1/estate/migrations"
	if dryRun {
		path += "?dry_run=true"
	}
	var out Started
	if err := c.Do(ctx, http.MethodPost, path, "application/json", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Status reads a migration's progress.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	var out Status
	if err := c.Do(ctx, http.MethodGet, "/v1/estate/migrations/"+url.PathEscape(id), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Wait polls a migration until every lock confirmed it or ctx ends; it
// returns the last status read (with the stragglers when ctx ended first)
// and calls progress on every poll that changed the counts.
func (c *Client) Wait(ctx context.Context, id string, every time.Duration, progress func(*Status)) (*Status, error) {
	var last *Status
	seen := ""
	for {
		st, err := c.Status(ctx, id)
		if err != nil {
			if last != nil && errors.Is(err, ctx.Err()) {
				return last, nil
			}
			return last, err
		}
		last = st
		if key := fmt.Sprintf("%d/%d/%d", st.Moved, st.Total, len(st.Stragglers)); key != seen && progress != nil {
			seen = key
			progress(st)
		}
		if st.Status == StatusConfirmed {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return last, nil
		case <-time.After(every):
		}
	}
}
