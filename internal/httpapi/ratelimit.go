package httpapi

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Rate is a limit of N events per Per for one key, with bursts of up to N
// (a token bucket of N tokens refilled evenly over Per). The zero Rate is
// no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// Off reports whether the rate imposes no limit.
func (r Rate) Off() bool { return r.N <= 0 || r.Per <= 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

// ParseRate reads "N/DURATION" (20/1m, 5/10s) or "off"/"0" (no limit).
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" || s == "" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q: want N/DURATION (e.g. 20/1m) or off", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || count > 1_000_000 {
		return Rate{}, fmt.Errorf("%q: N must be a whole number in 1..1000000", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d < time.Second || d > 24*time.Hour {
		return Rate{}, fmt.Errorf("%q: DURATION must be in 1s..24h", s)
	}
	return Rate{N: count, Per: d}, nil
}

// limiter keeps one token bucket per key (a client address, a token id).
// Buckets that are full again are forgotten, so memory follows the keys that
// are being limited, bounded by maxKeys.
type limiter struct {
	rate    Rate
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate Rate, now func() time.Time) *limiter {
	if rate.Off() {
		return nil
	}
	return &limiter{rate: rate, now: now, maxKeys: 1 << 16, buckets: map[string]*bucket{}}
}

// refill brings b up to now; the caller holds l.mu.
func (l *limiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = math.Min(float64(l.rate.N), b.tokens+el.Seconds()*float64(l.rate.N)/l.rate.Per.Seconds())
		b.at = now
	}
}

// wait returns how long key must wait before it has a token again (0: it
// has one now). It consumes nothing.
func (l *limiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return 0
	}
	l.refill(b, l.now())
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.rate.Per) / float64(l.rate.N))
}

// take consumes one token of key, if it has one, and reports whether it did
// and otherwise how long until it would.
func (l *limiter) take(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.sweep(now)
		}
		b = &bucket{tokens: float64(l.rate.N), at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.rate.Per) / float64(l.rate.N))
	}
	b.tokens--
	return true, 0
}

// sweep forgets full buckets; if that frees nothing, it forgets all (a
// flood of distinct keys must not grow memory without bound).
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= float64(l.rate.N) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.maxKeys {
		clear(l.buckets)
	}
}

// tooManyRequests is a 429 problem with Retry-After (whole seconds, at least 1).
func tooManyRequests(c *fiber.Ctx, retry time.Duration, code, detail string) error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	p := NewProblem(fiber.StatusTooManyRequests, code, detail)
	p.Extra = map[string]any{"retry_after_seconds": secs}
	return p
}
