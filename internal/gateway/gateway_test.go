package gateway_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/keyfleet/keyfleet/internal/gateway"
)

func TestAllowed(t *testing.T) {
	office := []gateway.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "07:00", End: "19:00"}}
	night := []gateway.Window{{Days: []string{"fri"}, Start: "22:00", End: "06:00"}}
	// 2026-11-27 is a Friday.
	at := func(day int, hhmm string) time.Time {
		t, err := time.Parse("15:04", hhmm)
		if err != nil {
			panic(err)
		}
		return time.Date(2026, 11, day, t.Hour(), t.Minute(), 0, 0, time.UTC)
	}
	cases := []struct {
		name    string
		windows []gateway.Window
		t       time.Time
		want    bool
	}{
		{"no windows: any time", nil, at(29, "03:00"), true},
		{"weekday inside", office, at(27, "07:00"), true},
		{"weekday, end is exclusive", office, at(27, "19:00"), false},
		{"weekday before start", office, at(27, "06:59"), false},
		{"saturday", office, at(28, "12:00"), false},
		{"every day when no days", []gateway.Window{{Start: "10:00", End: "11:00"}}, at(29, "10:30"), true},
		{"past midnight, evening part", night, at(27, "23:30"), true},
		{"past midnight, morning after", night, at(28, "05:59"), true},
		{"past midnight, morning ends", night, at(28, "06:00"), false},
		{"past midnight, the morning before does not count", night, at(27, "05:00"), false},
		{"one of several windows", append(office, night...), at(28, "01:00"), true},
		{"a malformed window allows nothing", []gateway.Window{{Start: "7:00", End: "19:00"}}, at(27, "12:00"), false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, gateway.Allowed(c.windows, c.t), c.name)
	}
}

func TestACLVersion(t *testing.T) {
	a := gateway.ACLVersion([]string{"c2", "c1", "c1"})
	assert.Equal(t, a, gateway.ACLVersion([]string{"c1", "c2"}), "order and duplicates do not matter")
	assert.Len(t, a, 32)
	assert.NotEqual(t, a, gateway.ACLVersion([]string{"c1"}))
	assert.NotEqual(t, gateway.ACLVersion(nil), gateway.ACLVersion([]string{""}))
	assert.Equal(t, gateway.ACLVersion(nil), gateway.ACLVersion([]string{}))
	// ids are newline-terminated, so concatenations differ
	assert.NotEqual(t, gateway.ACLVersion([]string{"ab", "c"}), gateway.ACLVersion([]string{"a", "bc"}))
}

func TestDrifted(t *testing.T) {
	f := func(a gateway.Ack, want bool) {
		t.Helper()
		assert.Equal(t, want, a.Drifted(), "%+v", a)
	}
	f(gateway.Ack{Status: gateway.AckApplied, ACLVersion: "aa", ExpectedACLVersion: "aa"}, false)
	f(gateway.Ack{Status: gateway.AckApplied, ACLVersion: "aa", ExpectedACLVersion: "AA"}, false)
	f(gateway.Ack{Status: gateway.AckApplied, ACLVersion: "aa", ExpectedACLVersion: "bb"}, true)
	f(gateway.Ack{Status: gateway.AckFailed, ACLVersion: "aa", ExpectedACLVersion: "bb"}, false)
	f(gateway.Ack{Status: gateway.AckApplied, ACLVersion: "", ExpectedACLVersion: "bb"}, false) // gateway without versions
	f(gateway.Ack{Status: gateway.AckApplied, ACLVersion: "aa"}, false)
}
