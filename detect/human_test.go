package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestHumanDuration(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		assert.Equal(t, want, humanDuration(d), "%s", d)
	}
	f(0, "0 s")
	f(45*time.Second+400*time.Millisecond, "45 s")
	f(59*time.Second+600*time.Millisecond, "1 min")
	f(2*time.Minute, "2 min")
	f(2*time.Minute+30*time.Second, "2 min 30 s")
	f(12*time.Minute+29*time.Second, "12 min")
	f(59*time.Minute+40*time.Second, "1 h")
	f(3*time.Hour, "3 h")
	f(3*time.Hour+20*time.Minute, "3 h 20 min")
	f(13*time.Hour+31*time.Minute, "14 h")
	f(47*time.Hour, "47 h")
	f(4329*time.Hour+23*time.Minute, "180 days")
	f(-90*time.Minute, "1 h 30 min")
}
