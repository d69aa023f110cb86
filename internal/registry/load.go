package registry

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// Loading a registry file: at a million people the file lists tens of
// millions of credential references (gigabytes of JSON), so it is read as
// a stream, never whole: the credentials array is cut into chunks of
// elements that workers decode and hash in parallel (a flat object of
// strings is decoded directly, anything else by encoding/json), and the
// references are sorted into the registry once at the end.

// chunkBytes is about how much of the credentials array one chunk holds.
const chunkBytes = 1 << 20

// Load reads a registry file (JSON, see File); raw user references in it are
// hashed with key.
func Load(path string, key []byte) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	defer f.Close()
	r := New()
	if err := r.load(bufio.NewReaderSize(f, 1<<20), key, path); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads a registry file from br into the empty registry r.
func (r *Registry) load(br *bufio.Reader, key []byte, path string) error {
	bad := func(err error) error { return fmt.Errorf("parse registry %s: %w", path, err) }
	c, err := skipSpace(br)
	if err != nil {
		return bad(err)
	}
	if c != '{' { // not an object: encoding/json says what it is (or accepts null)
		_ = br.UnreadByte()
		data, err := io.ReadAll(br)
		if err != nil {
			return fmt.Errorf("read registry: %w", err)
		}
		var f File
		if err := json.Unmarshal(data, &f); err != nil {
			return bad(err)
		}
		r.Apply(f)
		return nil
	}
	var locks []Lock
	var creds *credLoad
	for first := true; ; first = false {
		c, err := skipSpace(br)
		if err != nil {
			return bad(err)
		}
		if c == '}' && first {
			break
		}
		if !first {
			if c == '}' {
				break
			}
			if c != ',' {
				return bad(fmt.Errorf("invalid character %q after object key:value pair", c))
			}
			if c, err = skipSpace(br); err != nil {
				return bad(err)
			}
		}
		if c != '"' {
			return bad(fmt.Errorf("invalid character %q looking for beginning of object key string", c))
		}
		raw, err := scanValue(br, c)
		if err != nil {
			return bad(err)
		}
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return bad(err)
		}
		if c, err = skipSpace(br); err != nil {
			return bad(err)
		} else if c != ':' {
			return bad(fmt.Errorf("invalid character %q after object key", c))
		}
		if c, err = skipSpace(br); err != nil {
			return bad(err)
		}
		switch {
		case strings.EqualFold(name, "credentials") && c == '[':
			creds = newCredLoad(r, key, path) // a repeated key replaces, as encoding/json does
			if err := creds.read(br); err != nil {
				return err
			}
		case strings.EqualFold(name, "locks"):
			raw, err := scanValue(br, c)
			if err != nil {
				return bad(err)
			}
			locks = nil
			if err := json.Unmarshal(raw, &locks); err != nil {
				return bad(err)
			}
		default:
			raw, err := scanValue(br, c)
			if err != nil {
				return bad(err)
			}
			// Other keys (or a credentials value that is not an array):
			// checked as encoding/json would.
			obj, err := json.Marshal(map[string]json.RawMessage{strings.ToLower(name): raw})
			if err != nil {
				return bad(err)
			}
			var f File
			if err := json.Unmarshal(obj, &f); err != nil {
				return bad(err)
			}
			if strings.EqualFold(name, "credentials") {
				creds = nil
			}
		}
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read registry: %w", err)
		}
		if !isSpace(c) {
			return bad(fmt.Errorf("invalid character %q after top-level value", c))
		}
	}
	r.Apply(File{Locks: locks})
	if creds != nil {
		r.mu.Lock()
		r.creds.setMany(creds.entries)
		r.mu.Unlock()
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if !isSpace(c) {
			return c, nil
		}
	}
}

// scanValue returns the bytes of one JSON value that starts with first (read
// already): an object or array up to its closing bracket, a string up to its
// closing quote, a literal up to the next delimiter. It checks only the
// nesting; encoding/json checks the rest.
func scanValue(br *bufio.Reader, first byte) ([]byte, error) {
	out := []byte{first}
	return appendValue(br, first, out)
}

func appendValue(br *bufio.Reader, first byte, out []byte) ([]byte, error) {
	depth := 0
	inString := first == '"'
	switch first {
	case '{', '[':
		depth = 1
	case '"':
	default: // a literal: up to a delimiter
		for {
			c, err := br.ReadByte()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				_ = br.UnreadByte()
				return out, nil
			}
			out = append(out, c)
		}
	}
	escaped := false
	for {
		c, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		out = append(out, c)
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if depth == 0 {
					return out, nil
				}
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			if depth--; depth == 0 {
				return out, nil
			}
		}
	}
}

// credLoad decodes a credentials array in parallel, keeping its order.
type credLoad struct {
	r       *Registry
	key     []byte
	path    string
	entries []loadEntry
	n       int // credentials seen
	last    CredentialInfo
	lastH   uint32
	hasLast bool
}

func newCredLoad(r *Registry, key []byte, path string) *credLoad {
	return &credLoad{r: r, key: key, path: path}
}

type chunk struct {
	elems [][]byte
	creds []Credential
	err   error
	done  chan struct{}
}

// read reads the array's elements (its '[' read already) up to its ']'.
func (l *credLoad) read(br *bufio.Reader) error {
	work := make(chan *chunk, 4)
	order := make(chan *chunk, 16)
	var wg sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newRefHasher(l.key)
			for c := range work {
				c.creds = make([]Credential, len(c.elems))
				for i, e := range c.elems {
					if !decodeCredential(e, &c.creds[i]) {
						c.creds[i] = Credential{}
						if err := json.Unmarshal(e, &c.creds[i]); err != nil {
							c.err = err
							break
						}
					}
					if cr := &c.creds[i]; cr.UserRefHash == "" && cr.UserRef != "" {
						cr.UserRefHash = h.sum(cr.Vendor, cr.UserRef)
					}
				}
				c.elems = nil
				close(c.done)
			}
		}()
	}
	var readErr error
	go func() {
		defer close(order)
		defer close(work)
		readErr = splitArray(br, func(c *chunk) bool {
			order <- c
			work <- c
			return true
		})
	}()
	var err error
	for c := range order {
		<-c.done
		if err == nil {
			err = l.add(c)
		}
	}
	wg.Wait()
	if readErr != nil {
		return fmt.Errorf("parse registry %s: %w", l.path, readErr)
	}
	return err
}

// add applies a decoded chunk in order (the last mapping of a reference wins).
func (l *credLoad) add(c *chunk) error {
	if c.err != nil {
		return fmt.Errorf("parse registry %s: %w", l.path, c.err)
	}
	r := l.r
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range c.creds {
		cr := &c.creds[i]
		if cr.UserRefHash == "" {
			return fmt.Errorf("registry %s: credential %d has neither user_ref nor user_ref_hash", l.path, l.n)
		}
		l.n++
		if !l.hasLast || cr.CredentialInfo != l.last {
			l.last, l.lastH, l.hasLast = cr.CredentialInfo, r.holderOf(cr.CredentialInfo), true
		}
		l.entries = append(l.entries, loadEntry{credEntry{key: r.ids.key(cr.Vendor, cr.LockID, cr.UserRefHash), holder: l.lastH}, uint32(l.n)})
	}
	return nil
}

// splitArray cuts an array's elements (its '[' read already) into chunks.
func splitArray(br *bufio.Reader, emit func(*chunk) bool) error {
	buf := make([]byte, 0, chunkBytes+4096)
	var elems [][]byte
	flush := func() {
		if len(elems) > 0 {
			emit(&chunk{elems: elems, done: make(chan struct{})})
		}
		buf, elems = make([]byte, 0, chunkBytes+4096), nil
	}
	for first := true; ; first = false {
		c, err := skipSpace(br)
		if err != nil {
			return err
		}
		if c == ']' && first {
			break
		}
		if !first {
			if c == ']' {
				break
			}
			if c != ',' {
				return fmt.Errorf("invalid character %q after array element", c)
			}
			if c, err = skipSpace(br); err != nil {
				return err
			}
		}
		start := len(buf)
		buf = append(buf, c)
		if buf, err = appendValue(br, c, buf); err != nil {
			return err
		}
		elems = append(elems, buf[start:len(buf):len(buf)])
		if len(buf) >= chunkBytes {
			flush()
		}
	}
	flush()
	return nil
}

// refHasher computes event.RefHash with one HMAC state.
type refHasher struct {
	m   hash.Hash
	out [sha256.Size]byte
	in  []byte
}

func newRefHasher(key []byte) *refHasher { return &refHasher{m: hmac.New(sha256.New, key)} }

func (h *refHasher) sum(vendor, ref string) string {
	h.m.Reset()
	h.in = append(append(append(h.in[:0], vendor...), 0), ref...)
	h.m.Write(h.in)
	return hex.EncodeToString(h.m.Sum(h.out[:0])[:16])
}

// decodeCredential decodes a flat object of the Credential fields (string
// values, break_glass a boolean, keys exactly as written by File) and
// reports whether it could: anything else (other keys, escapes, null, other
// types) is left to encoding/json.
func decodeCredential(data []byte, c *Credential) bool {
	i := 0
	next := func() byte {
		for i < len(data) && isSpace(data[i]) {
			i++
		}
		if i == len(data) {
			return 0
		}
		i++
		return data[i-1]
	}
	str := func() (string, bool) { // after the opening quote
		start := i
		for i < len(data) {
			switch c := data[i]; {
			case c == '"':
				s := data[start:i]
				i++
				if !utf8.Valid(s) {
					return "", false
				}
				if len(s) == 0 {
					return "", true
				}
				// The chunk's bytes are not changed once cut, and what the
				// registry keeps it copies (interner).
				return unsafe.String(&s[0], len(s)), true
			case c == '\\' || c < 0x20:
				return "", false
			}
			i++
		}
		return "", false
	}
	if next() != '{' {
		return false
	}
	*c = Credential{}
	for first := true; ; first = false {
		b := next()
		if b == '}' && first {
			break
		}
		if !first {
			if b == '}' {
				break
			}
			if b != ',' {
				return false
			}
			b = next()
		}
		if b != '"' {
			return false
		}
		name, ok := str()
		if !ok || next() != ':' {
			return false
		}
		for i < len(data) && isSpace(data[i]) {
			i++
		}
		if name == "break_glass" {
			switch {
			case bytes.HasPrefix(data[i:], []byte("true")):
				c.BreakGlass, i = true, i+4
			case bytes.HasPrefix(data[i:], []byte("false")):
				c.BreakGlass, i = false, i+5
			default:
				return false
			}
			continue
		}
		var field *string
		switch name {
		case "vendor":
			field = &c.Vendor
		case "lock_id":
			field = &c.LockID
		case "user_ref":
			field = &c.UserRef
		case "user_ref_hash":
			field = &c.UserRefHash
		case "subject_id":
			field = &c.SubjectID
		case "credential_id":
			field = &c.CredentialID
		case "device_id":
			field = &c.DeviceID
		case "phone_model":
			field = &c.PhoneModel
		case "os_name":
			field = &c.OSName
		case "os_version":
			field = &c.OSVersion
		case "app_version":
			field = &c.AppVersion
		default:
			return false
		}
		if i == len(data) || data[i] != '"' {
			return false
		}
		i++
		if *field, ok = str(); !ok {
			return false
		}
	}
	return next() == 0
}
