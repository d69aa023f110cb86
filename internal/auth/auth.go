// Package auth holds API tokens: created with a role and an optional expiry,
// stored only as SHA-256 hashes in ClickHouse (api_tokens_v2), cached in
// memory for the request path, rotatable and revocable. Revocations persist
// (the bootstrap token's included), and every change is audited with the
// token id.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// Token is a stored token (never its secret).
type Token struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Role      httpapi.Role `json:"role"`
	CreatedMs int64        `json:"created_ms"`
	RevokedMs int64        `json:"revoked_ms,omitempty"`
	// ExpiresMs is when the token stops authenticating (0: never).
	ExpiresMs int64 `json:"expires_ms,omitempty"`
	// Sites limits the token to these sites (property-scoped; empty: every
	// site). Fixed at creation; rotation keeps it.
	Sites []string `json:"sites,omitempty"`
	// LastUsedMs is when the token last authenticated a request (noted in
	// memory on the request path, flushed to api_token_usage by Run).
	LastUsedMs int64 `json:"last_used_ms,omitempty"`
	hash       string
	version    uint64
}

// Store is the token store.
type Store struct {
	conn    driver.Conn
	logger  *slog.Logger
	refresh time.Duration

	mu       sync.RWMutex
	byHash   map[string]Token
	byID     map[string]Token
	loadedAt time.Time

	usedMu   sync.Mutex
	used     map[string]int64 // token id → last use (ms), not yet flushed
	lastUsed map[string]int64 // token id → last use (ms), as far as known
	now      func() time.Time
	audit    audit.Appender
}

// MinSecretLen is the shortest secret accepted for the bootstrap token
// (generated secrets are 46 characters).
const MinSecretLen = 32

// Expired reports whether the token has expired at nowMs.
func (t Token) Expired(nowMs int64) bool { return t.ExpiresMs > 0 && nowMs >= t.ExpiresMs }

// Active reports whether the token authenticates at nowMs.
func (t Token) Active(nowMs int64) bool { return t.RevokedMs == 0 && !t.Expired(nowMs) }

var _ httpapi.Authenticator = (*Store)(nil)

// ErrNotFound is returned for an unknown token id.
var ErrNotFound = errors.New("token not found")

// NewStore returns a store; call Load before serving.
func NewStore(conn driver.Conn, logger *slog.Logger) *Store {
	return &Store{conn: conn, logger: logger, refresh: 5 * time.Second,
		byHash: map[string]Token{}, byID: map[string]Token{},
		used: map[string]int64{}, lastUsed: map[string]int64{}, now: time.Now}
}

// WithAudit makes Bootstrap audit the tokens it creates.
func (s *Store) WithAudit(a audit.Appender) *Store {
	s.audit = a
	return s
}

// WithClock sets the store's clock (tests).
func (s *Store) WithClock(now func() time.Time) *Store {
	s.now = now
	return s
}

// Name returns a token's name (for audit entries that name actors by id).
func (s *Store) Name(id string) (string, bool) {
	t, ok := s.Get(id)
	return t.Name, ok
}

// Hash returns the stored form of a token secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

var (
	tokensSQL        = chstorage.Query("auth/tokens")
	tokenUsageSQL    = chstorage.Query("auth/token_usage")
	insertTokenUsage = chstorage.Query("auth/insert_token_usage")
	insertToken      = chstorage.Query("auth/insert_token")
	tokenScopesSQL   = chstorage.Query("auth/token_scopes")
	insertTokenScope = chstorage.Query("auth/insert_token_scope")
)

// Load reads every token from ClickHouse into the cache.
func (s *Store) Load(ctx context.Context) error {
	rows, err := tokensSQL.Query(ctx, s.conn, nil)
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	defer rows.Close()
	byHash, byID := map[string]Token{}, map[string]Token{}
	for rows.Next() {
		var t Token
		var role string
		if err := rows.Scan(&t.ID, &t.Name, &role, &t.hash, &t.CreatedMs, &t.RevokedMs, &t.ExpiresMs, &t.version); err != nil {
			return fmt.Errorf("scan token: %w", err)
		}
		t.Role = httpapi.Role(role)
		byID[t.ID] = t
		if t.RevokedMs == 0 {
			byHash[t.hash] = t
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	if err := loadScopes(ctx, s.conn, byID, byHash); err != nil {
		return err
	}
	if err := s.loadUsage(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.byHash, s.byID, s.loadedAt = byHash, byID, time.Now()
	s.mu.Unlock()
	return nil
}

// loadScopes adds the sites of scoped tokens.
func loadScopes(ctx context.Context, conn driver.Conn, byID, byHash map[string]Token) error {
	rows, err := tokenScopesSQL.Query(ctx, conn, nil)
	if err != nil {
		return fmt.Errorf("load token scopes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var sites []string
		if err := rows.Scan(&id, &sites); err != nil {
			return fmt.Errorf("scan token scope: %w", err)
		}
		t, ok := byID[id]
		if !ok || len(sites) == 0 {
			continue
		}
		t.Sites = sites
		byID[id] = t
		if _, live := byHash[t.hash]; live {
			byHash[t.hash] = t
		}
	}
	return rows.Err()
}

// Run reloads the cache periodically so tokens created or revoked by other
// instances take effect within seconds. While ClickHouse is away the cache
// in hand keeps authenticating; refreshes are retried after a backoff.
func (s *Store) Run(ctx context.Context) error {
	if !bus.Wait(ctx, s.refresh) { // Load ran at start-up
		return nil
	}
	return bus.Every(ctx, s.logger, "token refresh", s.refresh, func(ctx context.Context) error {
		return errors.Join(s.FlushUsage(ctx), s.Load(ctx))
	})
}

// loadUsage reads the last-use times of every token.
func (s *Store) loadUsage(ctx context.Context) error {
	rows, err := tokenUsageSQL.Query(ctx, s.conn, nil)
	if err != nil {
		return fmt.Errorf("load token usage: %w", err)
	}
	defer rows.Close()
	s.usedMu.Lock()
	defer s.usedMu.Unlock()
	for rows.Next() {
		var id string
		var ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return fmt.Errorf("load token usage: %w", err)
		}
		if ms > s.lastUsed[id] {
			s.lastUsed[id] = ms
		}
	}
	return rows.Err()
}

// FlushUsage writes the last-use times noted since the previous flush.
func (s *Store) FlushUsage(ctx context.Context) error {
	s.usedMu.Lock()
	pending := s.used
	s.used = map[string]int64{}
	s.usedMu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(pending))
	for id, ms := range pending {
		rows = append(rows, []any{id, ms})
	}
	if err := insertTokenUsage.Insert(ctx, s.conn, rows...); err != nil {
		s.usedMu.Lock()
		for id, ms := range pending { // keep them for the next flush
			if ms > s.used[id] {
				s.used[id] = ms
			}
		}
		s.usedMu.Unlock()
		return fmt.Errorf("flush token usage: %w", err)
	}
	return nil
}

func (s *Store) noteUse(id string) {
	ms := s.now().UnixMilli()
	s.usedMu.Lock()
	s.used[id] = ms
	s.lastUsed[id] = ms
	s.usedMu.Unlock()
}

// Authenticate implements httpapi.Authenticator.
func (s *Store) Authenticate(ctx context.Context, secret string) (httpapi.Principal, error) {
	h := Hash(secret)
	s.mu.RLock()
	t, ok := s.byHash[h]
	s.mu.RUnlock()
	if !ok || t.Expired(s.now().UnixMilli()) {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	s.noteUse(t.ID)
	return httpapi.Principal{TokenID: t.ID, Name: t.Name, Role: t.Role, Sites: t.Sites}, nil
}

// Create makes a new token and returns its secret (shown once, never stored).
func (s *Store) Create(ctx context.Context, name string, role httpapi.Role) (string, Token, error) {
	secret, err := NewSecret()
	if err != nil {
		return "", Token{}, err
	}
	t, err := s.put(ctx, name, role, secret)
	return secret, t, err
}

// NewSecret returns a random token secret.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return "kf_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// Spec describes a token to create.
type Spec struct {
	Name      string
	Role      httpapi.Role
	ExpiresMs int64 // 0: never
	// Sites limits the token to sites (empty: every site); only the
	// reading roles (ScopableRoles) can be limited.
	Sites []string
}

// ScopableRoles are the roles a token can be limited to sites with: admin,
// ingest and scim tokens act fleet-wide by nature.
var ScopableRoles = []httpapi.Role{httpapi.RoleAnalyst, httpapi.RoleResponder, httpapi.RoleManager}

// MaxSites bounds a scoped token's sites.
const MaxSites = 100

// CheckSites validates the sites of a token of a role.
func CheckSites(role httpapi.Role, sites []string) error {
	if len(sites) == 0 {
		return nil
	}
	if !slices.Contains(ScopableRoles, role) {
		return fmt.Errorf("a %s token cannot be limited to sites (only analyst, responder and manager tokens can)", role)
	}
	if len(sites) > MaxSites {
		return fmt.Errorf("at most %d sites", MaxSites)
	}
	seen := map[string]bool{}
	for _, site := range sites {
		if site == "" || len(site) > 128 || strings.TrimSpace(site) != site || strings.ContainsAny(site, ",\n") {
			return fmt.Errorf("site %q: 1..128 characters, no commas, no surrounding spaces", site)
		}
		if seen[site] {
			return fmt.Errorf("site %q twice", site)
		}
		seen[site] = true
	}
	return nil
}

// Put stores a token with a secret from NewSecret.
func (s *Store) Put(ctx context.Context, spec Spec, secret string) (Token, error) {
	if !httpapi.ValidRole(spec.Role) {
		return Token{}, fmt.Errorf("unknown role %q", spec.Role)
	}
	if spec.Name == "" {
		return Token{}, errors.New("a token needs a name")
	}
	now := s.now()
	if spec.ExpiresMs != 0 && spec.ExpiresMs <= now.UnixMilli() {
		return Token{}, errors.New("a token's expiry must be in the future")
	}
	if err := CheckSites(spec.Role, spec.Sites); err != nil {
		return Token{}, err
	}
	h := Hash(secret)
	t := Token{ID: IDOf(secret), Name: spec.Name, Role: spec.Role, CreatedMs: now.UnixMilli(), ExpiresMs: spec.ExpiresMs,
		Sites: slices.Clone(spec.Sites), hash: h, version: uint64(time.Now().UnixNano())}
	if len(t.Sites) > 0 {
		// The scope first: a token stored without its scope would see every site.
		if err := insertTokenScope.Insert(ctx, s.conn, []any{t.ID, t.Sites, t.CreatedMs}); err != nil {
			return Token{}, fmt.Errorf("store token scope: %w", err)
		}
	}
	if err := s.write(ctx, t); err != nil {
		return Token{}, err
	}
	s.mu.Lock()
	s.byHash[h], s.byID[t.ID] = t, t
	s.mu.Unlock()
	return t, nil
}

func (s *Store) put(ctx context.Context, name string, role httpapi.Role, secret string) (Token, error) {
	return s.Put(ctx, Spec{Name: name, Role: role}, secret)
}

func (s *Store) write(ctx context.Context, t Token) error {
	err := insertToken.Insert(ctx, s.conn, []any{t.ID, t.Name, string(t.Role), t.hash, t.CreatedMs, t.RevokedMs, t.ExpiresMs, t.version})
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

// Get returns a token by id.
func (s *Store) Get(id string) (Token, bool) {
	s.mu.RLock()
	t, ok := s.byID[id]
	s.mu.RUnlock()
	return t, ok
}

// IDOf returns the id a token with this secret gets (ids derive from the
// secret's hash, so an action can be audited before the token is stored).
func IDOf(secret string) string { return "tok_" + Hash(secret)[:16] }

// CreateWithSecret stores a token with a secret from NewSecret.
func (s *Store) CreateWithSecret(ctx context.Context, name string, role httpapi.Role, secret string) (Token, error) {
	return s.put(ctx, name, role, secret)
}

// Revoke revokes a token by id.
func (s *Store) Revoke(ctx context.Context, id string) (Token, error) {
	s.mu.RLock()
	t, ok := s.byID[id]
	s.mu.RUnlock()
	if !ok {
		return Token{}, ErrNotFound
	}
	if t.RevokedMs != 0 {
		return t, nil
	}
	t.RevokedMs = s.now().UnixMilli()
	t.version = uint64(time.Now().UnixNano())
	if err := s.write(ctx, t); err != nil {
		return Token{}, err
	}
	s.mu.Lock()
	delete(s.byHash, t.hash)
	s.byID[t.ID] = t
	s.mu.Unlock()
	return t, nil
}

// List returns every token, newest first.
func (s *Store) List() []Token {
	s.mu.RLock()
	out := make([]Token, 0, len(s.byID))
	for _, t := range s.byID {
		out = append(out, t)
	}
	s.mu.RUnlock()
	s.usedMu.Lock()
	for i := range out {
		out[i].LastUsedMs = s.lastUsed[out[i].ID]
	}
	s.usedMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedMs > out[j].CreatedMs })
	return out
}

// Rotate replaces a token: a new secret for a token of the same name, role
// and expiry, and the old one revoked. The caller audits it first (the new
// id is IDOf(secret)).
func (s *Store) Rotate(ctx context.Context, id, secret string) (Token, error) {
	old, ok := s.Get(id)
	if !ok {
		return Token{}, ErrNotFound
	}
	if !old.Active(s.now().UnixMilli()) {
		return Token{}, ErrInactive
	}
	t, err := s.Put(ctx, Spec{Name: old.Name, Role: old.Role, ExpiresMs: old.ExpiresMs, Sites: old.Sites}, secret)
	if err != nil {
		return Token{}, err
	}
	if _, err := s.Revoke(ctx, id); err != nil {
		return Token{}, fmt.Errorf("revoke the rotated token %s (its successor %s exists): %w", id, t.ID, err)
	}
	return t, nil
}

// ErrInactive is returned when rotating a revoked or expired token.
var ErrInactive = errors.New("token is revoked or expired")

// ErrShortSecret is returned for a bootstrap secret under MinSecretLen.
var ErrShortSecret = fmt.Errorf("the bootstrap token must be at least %d characters", MinSecretLen)

// Bootstrap makes sure an admin token exists. With a bootstrap secret (from
// KEYFLEET_BOOTSTRAP_TOKEN, at least MinSecretLen characters) that secret
// becomes an admin token, unless a token with that secret was revoked: a
// revocation is final, restarts included. Without a usable bootstrap secret,
// and with no active admin token, it creates one and returns its secret so
// the caller can print it once; otherwise it returns "". Tokens it creates
// are audited (WithAudit) before they are stored.
func (s *Store) Bootstrap(ctx context.Context, secret string) (string, error) {
	now := s.now().UnixMilli()
	if secret != "" {
		if len(secret) < MinSecretLen {
			return "", ErrShortSecret
		}
		t, known := s.Get(IDOf(secret))
		switch {
		case known && t.Active(now):
			return "", nil
		case known:
			s.logger.Warn("the bootstrap token was revoked or has expired and stays so; set a new KEYFLEET_BOOTSTRAP_TOKEN to bootstrap again",
				"token_id", t.ID)
		default:
			if err := s.record(ctx, "token.create", IDOf(secret), httpapi.RoleAdmin, "bootstrap"); err != nil {
				return "", err
			}
			_, err := s.put(ctx, "bootstrap", httpapi.RoleAdmin, secret)
			return "", err
		}
	}
	s.mu.RLock()
	for _, t := range s.byHash {
		if t.Role == httpapi.RoleAdmin && t.Active(now) {
			s.mu.RUnlock()
			return "", nil
		}
	}
	s.mu.RUnlock()
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := s.record(ctx, "token.create", IDOf(secret), httpapi.RoleAdmin, "initial-admin"); err != nil {
		return "", err
	}
	if _, err := s.put(ctx, "initial-admin", httpapi.RoleAdmin, secret); err != nil {
		return "", err
	}
	return secret, nil
}

// record audits a token change made at start-up.
func (s *Store) record(ctx context.Context, action, id string, role httpapi.Role, name string) error {
	if s.audit == nil {
		return nil
	}
	err := s.audit.Append(ctx, audit.Entry{Actor: "system:bootstrap", Action: action, Target: id,
		Details: map[string]string{"role": string(role), "name": name}})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}
