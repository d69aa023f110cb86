package flagenv

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlagBeatsEnvBeatsDefault(t *testing.T) {
	env := map[string]string{"X_A": "from-env", "X_B": "from-env", "X_D": "5s", "X_L": "a, b,,c"}
	s := New("t", "test")
	s.SetLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var a, b, c string
	var d time.Duration
	var l []string
	s.String(&a, "a", "X_A", "default", "")
	s.String(&b, "b", "X_B", "default", "")
	s.String(&c, "c", "X_C", "default", "")
	s.Duration(&d, "d", "X_D", time.Second, "")
	s.List(&l, "l", "X_L", nil, "")
	require.NoError(t, s.Parse([]string{"--a", "from-flag"}))
	assert.Equal(t, "from-flag", a)
	assert.Equal(t, "from-env", b)
	assert.Equal(t, "default", c)
	assert.Equal(t, 5*time.Second, d)
	assert.Equal(t, []string{"a", "b", "c"}, l)
}

func TestBadEnvNamesTheVariableButNotSecrets(t *testing.T) {
	s := New("t", "test")
	s.SetLookup(func(k string) (string, bool) { return "notanumber", true })
	var n int
	s.Int(&n, "n", "X_N", 1, "")
	err := s.Parse(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "X_N")

	s = New("t", "test")
	s.SetLookup(func(k string) (string, bool) { return "hunter2", true })
	var p string
	s.Secret(&p, "p", "X_P", "")
	require.NoError(t, s.Parse(nil))
	assert.Equal(t, "hunter2", p)
	var out bytes.Buffer
	s.PrintUsage(&out)
	assert.NotContains(t, out.String(), "hunter2")
	assert.Contains(t, out.String(), "X_P")
}
