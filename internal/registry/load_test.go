package registry_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// loadWhole is what Load did before it streamed: the whole file decoded by
// encoding/json, raw references hashed, applied.
func loadWhole(path string, key []byte) (*registry.Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f registry.File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse registry %s: %w", path, err)
	}
	for i, c := range f.Credentials {
		if c.UserRefHash == "" {
			if c.UserRef == "" {
				return nil, fmt.Errorf("registry %s: credential %d has neither user_ref nor user_ref_hash", path, i)
			}
			f.Credentials[i].UserRefHash = event.RefHash(key, c.Vendor, c.UserRef)
		}
	}
	r := registry.New()
	r.Apply(f)
	return r, nil
}

// Load resolves every reference of a file as the whole file decoded by
// encoding/json does, whatever the file's form (escapes, unknown keys, keys
// in other cases, nulls, repeated references, chunks of the stream), and
// fails where it fails.
func TestLoadMatchesWholeDecode(t *testing.T) {
	key := []byte("k")
	dir := t.TempDir()
	big, _ := fleetFile(300) // several chunks
	for i := range big.Credentials {
		c := &big.Credentials[i]
		if i%3 == 0 {
			c.UserRef, c.UserRefHash = fmt.Sprint("raw-", i), ""
		}
		c.PhoneModel, c.BreakGlass = "Pixel 8", i%7 == 0
	}
	// Later mappings of a reference win, across chunks too.
	for i := 0; i < len(big.Credentials); i += 97 {
		c := big.Credentials[i]
		c.DeviceID = "moved-" + c.DeviceID
		big.Credentials = append(big.Credentials, c)
	}
	bigJSON, err := json.Marshal(big)
	require.NoError(t, err)

	f := func(name, content string, refs [][3]string) {
		t.Helper()
		path := filepath.Join(dir, name+".json")
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		want, wantErr := loadWhole(path, key)
		got, gotErr := registry.Load(path, key)
		if wantErr != nil {
			require.Error(t, gotErr, name)
			if want, got := wantErr.Error(), gotErr.Error(); len(want) > 0 && want[:9] == "registry " {
				require.Equal(t, want, got, name)
			}
			return
		}
		require.NoError(t, gotErr, name)
		require.Equal(t, want.Records(), got.Records(), name)
		wl, wc := want.Len()
		gl, gc := got.Len()
		require.Equal(t, [2]int{wl, wc}, [2]int{gl, gc}, name)
		for _, ref := range refs {
			h := ref[2]
			if len(h) != 32 {
				h = event.RefHash(key, ref[0], ref[2])
			}
			w, wok := want.Credential(ref[0], ref[1], h)
			g, gok := got.Credential(ref[0], ref[1], h)
			require.Equal(t, wok, gok, "%s: %v", name, ref)
			require.Equal(t, w, g, "%s: %v", name, ref)
		}
	}
	var bigRefs [][3]string
	for _, c := range big.Credentials {
		ref := c.UserRefHash
		if ref == "" {
			ref = c.UserRef
		}
		bigRefs = append(bigRefs, [3]string{c.Vendor, c.LockID, ref})
	}
	f("big", string(bigJSON), bigRefs)

	refs := [][3]string{{"nuki", "", "a"}, {"nuki", "", "b"}, {"seam", "", "c"}, {"matter", "0x1/1", "7"}, {"nuki", "", "d\"é"}}
	f("forms", ` {"credentials": [
		{"vendor":"nuki","user_ref":"a","subject_id":"s\u00e9","credential_id":"c1","device_id":"d1","break_glass":true},
		{ "Vendor" : "nuki" , "user_ref" : "b", "credential_id": "c2", "extra": {"x": [1, "]"]}},
		{"vendor":"seam","user_ref":"c","credential_id":null,"phone_model":"P"},
		{"vendor":"matter","lock_id":"0x1/1","user_ref":"7","credential_id":"c3","break_glass":false},
		{"vendor":"nuki","user_ref":"d\"é","credential_id":"c4"},
		{"vendor":"nuki","user_ref":"a","credential_id":"c5"}
	], "Locks": [{"vendor":"nuki","lock_id":"n1","site_id":"s1","groups":["entrance"]}], "other": {"a": [1,2]}}
	`, refs)
	f("empty", `{}`, nil)
	f("empty arrays", `{"locks":[],"credentials":[]}`, nil)
	f("null", `null`, nil)
	f("null credentials", `{"credentials":null}`, nil)
	f("repeated key", `{"credentials":[{"vendor":"nuki","user_ref":"a","credential_id":"c1"}],"credentials":[{"vendor":"nuki","user_ref":"b","credential_id":"c2"}]}`, refs)
	f("no ref", `{"credentials":[{"vendor":"nuki","user_ref":"a"},{"vendor":"nuki"}]}`, nil)
	f("bad element", `{"credentials":[{"vendor":"nuki","user_ref":"a"},{"vendor":1}]}`, nil)
	f("bad syntax", `{"credentials":[{"vendor":"nuki","user_ref":"a"} {"vendor":"nuki"}]}`, nil)
	f("truncated", `{"credentials":[{"vendor":"nuki","user_ref":"a"}`, nil)
	f("trailing", `{"credentials":[]} x`, nil)
	f("wrong type", `{"credentials":{}}`, nil)
}
