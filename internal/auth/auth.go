// Package auth holds API tokens: created with a role, stored only as SHA-256
// hashes in ClickHouse (api_tokens), cached in memory for the request path,
// and revocable.
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
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
}

var _ httpapi.Authenticator = (*Store)(nil)

// ErrNotFound is returned for an unknown token id.
var ErrNotFound = errors.New("token not found")

// NewStore returns a store; call Load before serving.
func NewStore(conn driver.Conn, logger *slog.Logger) *Store {
	return &Store{conn: conn, logger: logger, refresh: 5 * time.Second,
		byHash: map[string]Token{}, byID: map[string]Token{},
		used: map[string]int64{}, lastUsed: map[string]int64{}, now: time.Now}
}

// Hash returns the stored form of a token secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Load reads every token from ClickHouse into the cache.
func (s *Store) Load(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, `SELECT id, name, role, hash, created_ms, revoked_ms, version FROM api_tokens FINAL`)
	if err != nil {
		return fmt.Errorf("load tokens: %w", err)
	}
	defer rows.Close()
	byHash, byID := map[string]Token{}, map[string]Token{}
	for rows.Next() {
		var t Token
		var role string
		if err := rows.Scan(&t.ID, &t.Name, &role, &t.hash, &t.CreatedMs, &t.RevokedMs, &t.version); err != nil {
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
	if err := s.loadUsage(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.byHash, s.byID, s.loadedAt = byHash, byID, time.Now()
	s.mu.Unlock()
	return nil
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
	rows, err := s.conn.Query(ctx, `SELECT token_id, max(last_used_ms) FROM api_token_usage GROUP BY token_id`)
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
	if err := chstorage.InsertRows(ctx, s.conn, "api_token_usage", []string{"token_id", "last_used_ms"}, rows...); err != nil {
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
	if !ok {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	s.noteUse(t.ID)
	return httpapi.Principal{TokenID: t.ID, Name: t.Name, Role: t.Role}, nil
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

func (s *Store) put(ctx context.Context, name string, role httpapi.Role, secret string) (Token, error) {
	if !httpapi.ValidRole(role) {
		return Token{}, fmt.Errorf("unknown role %q", role)
	}
	if name == "" {
		return Token{}, errors.New("a token needs a name")
	}
	h := Hash(secret)
	t := Token{ID: IDOf(secret), Name: name, Role: role, CreatedMs: time.Now().UnixMilli(), hash: h, version: uint64(time.Now().UnixNano())}
	if err := s.write(ctx, t); err != nil {
		return Token{}, err
	}
	s.mu.Lock()
	s.byHash[h], s.byID[t.ID] = t, t
	s.mu.Unlock()
	return t, nil
}

func (s *Store) write(ctx context.Context, t Token) error {
	err := chstorage.InsertRows(ctx, s.conn, "api_tokens",
		[]string{"id", "name", "role", "hash", "created_ms", "revoked_ms", "version"},
		[]any{t.ID, t.Name, string(t.Role), t.hash, t.CreatedMs, t.RevokedMs, t.version})
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
	t.RevokedMs = time.Now().UnixMilli()
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

// Bootstrap makes sure an admin token exists. With a bootstrap secret (from
// KEYFLEET_BOOTSTRAP_TOKEN) that secret becomes an admin token. Without one,
// and with no active admin token, it creates one and returns its secret so
// the caller can print it once; otherwise it returns "".
func (s *Store) Bootstrap(ctx context.Context, secret string) (string, error) {
	if secret != "" {
		if _, err := s.Authenticate(ctx, secret); err == nil {
			return "", nil
		}
		_, err := s.put(ctx, "bootstrap", httpapi.RoleAdmin, secret)
		return "", err
	}
	s.mu.RLock()
	for _, t := range s.byHash {
		if t.Role == httpapi.RoleAdmin {
			s.mu.RUnlock()
			return "", nil
		}
	}
	s.mu.RUnlock()
	secret, _, err := s.Create(ctx, "initial-admin", httpapi.RoleAdmin)
	return secret, err
}
