package stream

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/event"
)

// fill sets every field reachable from v (structs, pointers, slices) to a
// value drawn from r: strings of each packed kind (UUIDs, hex, other text),
// nil and empty slices, nil pointers, negative numbers.
func fill(r *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		switch r.IntN(5) {
		case 0:
			v.SetString("")
		case 1:
			v.SetString(fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Int64N(1<<48)))
		case 2:
			v.SetString(fmt.Sprintf("%032x", r.Uint64()))
		case 3:
			v.SetString(fmt.Sprintf("%07x", r.Uint32())) // odd-length hex: kept as text
		default:
			v.SetString(fmt.Sprintf("Text-%d é", r.IntN(1000)))
		}
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(r.Int64() >> r.IntN(64) * int64(1-2*r.IntN(2)))
	case reflect.Uint64:
		v.SetUint(r.Uint64() >> r.IntN(64))
	case reflect.Pointer:
		if r.IntN(4) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(r, v.Elem())
	case reflect.Slice:
		switch n := r.IntN(5); n {
		case 0:
			v.SetZero()
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				fill(r, v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i))
		}
	default:
		panic("fill: " + v.Kind().String())
	}
}

// Unpacking gives back every field of the record packed, whatever its
// values (a field added to control.Record and not packed fails here).
func TestPackRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var n names
	for i := range 2000 {
		var rec control.Record
		fill(r, reflect.ValueOf(&rec).Elem())
		s := pack(&rec, &n)
		require.Equal(t, rec.CredentialID, packedID(s), "record %d", i)
		require.Equal(t, &rec, unpack(s, &n), "record %d", i)
	}
	require.Equal(t, &control.Record{}, unpack(pack(&control.Record{}, &n), &n))
}

// A packed record is a fraction of the record's size in memory.
func TestPackSize(t *testing.T) {
	rec := viewRecord("cred-000123", "subj-000061", event.StateActive, 7, "l1", "l2", "l3")
	rec.DeviceID, rec.CommandID = "dev-0a1b2c3d4e5f", "7d444840-9dc0-41d4-8c6f-1f3a5c7d9e0b"
	rec.Recent = []string{rec.CommandID, "0e9a1b5c-2d3e-4f50-8a6b-7c8d9e0f1a2b"}
	rec.Refs = []event.CredentialRef{{Vendor: "nuki", UserRefHash: "00112233445566778899aabbccddeeff"}}
	var n names
	s := pack(rec, &n)
	require.Less(t, len(s), 200, "got %d bytes", len(s))
	require.Equal(t, rec, unpack(s, &n))
}
