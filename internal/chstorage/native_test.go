package chstorage_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go"
	"github.com/ClickHouse/ch-go/proto"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestRenderedStatementsReadBackTheirArguments: DialNative's connection
// (ch-go, with the client info 18.16 needs) runs a statement Render wrote
// the arguments into, and ClickHouse reads back every value as given:
// quotes, backslashes, question marks and comment markers inside strings,
// control bytes, sets and arrays, a fragment with its own arguments.
func TestRenderedStatementsReadBackTheirArguments(t *testing.T) {
	_, cfg := testenv.ClickHouse(t)
	s, err := chstorage.ParseStatement("test/render", `-- param: s String = 'x'
-- param: n Int64 = 1
-- param: u UInt32 = 1
-- param: set Set(String) = ['a']
-- param: arr Array(String) = ['a']
-- param: f Fragment = 1 = 1
-- param: on Bool = 1
SELECT {s:String} AS s, toInt64({n:Int64}) AS n, toUInt32({u:UInt32}) AS u, 'b' IN {set:Set(String)} AS in_set,
    arrayStringConcat({arr:Array(String)}, '|') AS arr, /*if on*/ {f:Fragment} /*else*/ 0 /*end*/ AS frag`)
	require.NoError(t, err)
	tricky := "it's a \\ back'slash\\' ? /* -- \x00\x01\n\ttab ünï"
	sql, err := s.Render(chstorage.Args{"s": tricky, "n": int64(-42), "u": uint32(7), "set": []string{"a", "b'"},
		"arr": []string{"x'y", `z\`, ""}, "f": chstorage.Fragment{SQL: "length(?) = ?", Args: []any{"?'", 2}}, "on": true})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := chstorage.DialNative(ctx, cfg)
	require.NoError(t, err)
	defer client.Close()
	var (
		str         proto.ColStr
		n           proto.ColInt64
		u           proto.ColUInt32
		inSet, frag proto.ColUInt8
		arr         proto.ColStr
	)
	// Two queries on one connection: the client info goes into each.
	for i := 0; i < 2; i++ {
		require.NoError(t, client.Do(ctx, ch.Query{Body: sql, Result: proto.Results{
			{Name: "s", Data: &str}, {Name: "n", Data: &n}, {Name: "u", Data: &u}, {Name: "in_set", Data: &inSet},
			{Name: "arr", Data: &arr}, {Name: "frag", Data: &frag},
		}}))
		require.Equal(t, tricky, str.Row(0))
		require.Equal(t, int64(-42), n.Row(0))
		require.Equal(t, uint32(7), u.Row(0))
		require.Equal(t, uint8(0), inSet.Row(0), "'b' is not in ('a', 'b''')")
		require.Equal(t, `x'y|z\|`, arr.Row(0))
		require.Equal(t, uint8(1), frag.Row(0))
	}
	_, err = s.Render(chstorage.Args{"s": 1.5})
	require.Error(t, err)
}

func TestDialNative(t *testing.T) {
	_, cfg := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := func(change func(c *chstorage.Config), ok bool) {
		t.Helper()
		c := cfg
		change(&c)
		client, err := chstorage.DialNative(ctx, c)
		if !ok {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		defer client.Close()
		var n proto.ColUInt64
		require.NoError(t, client.Do(ctx, ch.Query{Body: "SELECT count() AS n FROM access_events",
			Result: proto.Results{{Name: "n", Data: &n}}}))
		require.Equal(t, 1, n.Rows())
	}
	f(func(*chstorage.Config) {}, true)
	f(func(c *chstorage.Config) { c.Addr = testenv.FreeAddr(t) + "," + c.Addr }, true) // the first that answers
	f(func(c *chstorage.Config) { c.Password = "wrong" }, false)
	f(func(c *chstorage.Config) { c.Addr = testenv.FreeAddr(t) }, false)
	c := cfg
	c.Protocol = chstorage.ProtocolHTTP
	_, err := chstorage.DialNative(ctx, c)
	require.ErrorIs(t, err, chstorage.ErrNotNative)
}
