package audit

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"strconv"
)

// Checkpoint is a signed statement of a chain's head: "chain C had reached
// seq S, whose hash is H, at time T". Checkpoints are kept where ClickHouse
// writers cannot rewrite them (an Anchor: a Kafka topic, an append-only
// file, an operator's copy from `keyfleet audit checkpoint`), so deleting
// entries at the tail of a chain, or changing one and re-hashing the chain,
// no longer matches a checkpoint.
type Checkpoint struct {
	Chain string `json:"chain"`
	Seq   uint64 `json:"seq"`
	Hash  string `json:"hash"`
	TsMs  int64  `json:"ts_ms"`
	KeyID string `json:"key_id"`
	MAC   string `json:"mac"`
}

func (c Checkpoint) fields() []string {
	return []string{"keyfleet-audit-checkpoint-v1", c.KeyID, c.Chain, strconv.FormatUint(c.Seq, 10), c.Hash,
		strconv.FormatInt(c.TsMs, 10)}
}

// Sign returns c signed with the current key.
func (k *Keyring) Sign(c Checkpoint) Checkpoint {
	c.KeyID = k.current
	c.MAC, _ = k.mac(c.KeyID, c.fields()...)
	return c
}

// ErrUnknownKey is returned for a signature under a key the keyring lacks.
var ErrUnknownKey = errors.New("signed with a key this keyring does not hold")

// VerifyCheckpoint checks a checkpoint's signature.
func (k *Keyring) VerifyCheckpoint(c Checkpoint) error {
	want, ok := k.mac(c.KeyID, c.fields()...)
	if !ok {
		return fmt.Errorf("checkpoint of %s@%d: key %q: %w", c.Chain, c.Seq, c.KeyID, ErrUnknownKey)
	}
	if !hmac.Equal([]byte(want), []byte(c.MAC)) {
		return fmt.Errorf("checkpoint of %s@%d: the signature does not match", c.Chain, c.Seq)
	}
	return nil
}

// Anchor keeps checkpoints outside ClickHouse.
type Anchor interface {
	// Put stores checkpoints durably (returns once they are kept).
	Put(ctx context.Context, cps ...Checkpoint) error
	// Checkpoints returns every checkpoint kept (any order).
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
}

// latest returns, per chain, the checkpoint with the highest seq.
func latest(cps []Checkpoint) map[string]Checkpoint {
	out := map[string]Checkpoint{}
	for _, c := range cps {
		if cur, ok := out[c.Chain]; !ok || c.Seq > cur.Seq {
			out[c.Chain] = c
		}
	}
	return out
}
