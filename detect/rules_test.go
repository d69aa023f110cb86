package detect_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
)

func TestRulesExample(t *testing.T) {
	r, err := detect.LoadRules("rules.example.json")
	require.NoError(t, err)
	assert.Equal(t, 1, r.Version)
	assert.Equal(t, 45, r.Detectors.StaleCredential.UnusedDays)
	assert.Equal(t, 5*time.Minute, r.Detectors.DoorAjar.HeldOpen.D())
	// Unnamed fields keep their defaults.
	assert.Equal(t, detect.DefaultRules().Detectors.UnlockBurst.HistoryDays, r.Detectors.UnlockBurst.HistoryDays)
	// The defaults round-trip through JSON.
	b, err := json.Marshal(detect.DefaultRules())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["version"] = 2
	b, _ = json.Marshal(m)
	back, err := detect.ParseRules(b)
	require.NoError(t, err)
	want := detect.DefaultRules()
	want.Version = 2
	assert.Equal(t, want, back)
}

func TestRulesErrors(t *testing.T) {
	f := func(doc, want string) {
		t.Helper()
		_, err := detect.ParseRules([]byte(doc))
		require.Error(t, err, doc)
		assert.Contains(t, err.Error(), want, doc)
	}
	f(`{"detectors":{}}`, `"version"`)
	f(`{"version":1,"detectors":{"unlock_burts":{}}}`, "unknown field")
	f(`{"version":1,"detectors":{"unlock_burst":{"severity":"urgent"}}}`, "unlock_burst.severity")
	f(`{"version":1,"detectors":{"unlock_burst":{"window":"soon"}}}`, "rules")
	f(`{"version":1,"detectors":{"unlock_burst":{"measure":"rooms"}}}`, "measure")
	f(`{"version":1,"detectors":{"denied_storm":{"door_threshold":0}}}`, "denied_storm")
	f(`{"version":1,"responders":{"rules":[{"name":"x","detectors":["nope"],"min_severity":"high","actions":["suspend"]}]}}`, "unknown detector")
	f(`{"version":1,"responders":{"rules":[{"name":"x","min_severity":"high","actions":["page"]}]}}`, "unknown action")
	f(`{"version":1,"detectors":{"off_schedule":{"time_zone":"Mars/Olympus"}}}`, "off_schedule.time_zone")
	f(`{"version":1,"detectors":{"off_schedule":{"site_time_zones":{"site-1":""}}}}`, "off_schedule.site_time_zones[site-1]")
	f(`{"version":1,"detectors":{"off_schedule":{"utc_offset_minutes":900}}}`, "utc_offset_minutes")
	f(`{"version":1,"detectors":{"unlock_burst":{"peer_quorum":-1}}}`, "unlock_burst.peer_quorum")
	f(`{"version":1,"detectors":{"unlock_burst":{"learning_severity":"meh"}}}`, "unlock_burst.learning_severity")
	f(`{"version":1} trailing`, "")
}
