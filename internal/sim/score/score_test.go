package score_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/sim/activity"
	"github.com/keyfleet/keyfleet/internal/sim/score"
)

const minute = int64(60_000)

var labels = []activity.Label{
	{Type: "unlock_burst", SubjectID: "s1", CredentialID: "c1", StartMs: 100 * minute, EndMs: 130 * minute},
	{Type: "unlock_burst", SubjectID: "s2", CredentialID: "c2", StartMs: 500 * minute, EndMs: 520 * minute},
	{Type: "door_forced", DoorID: "d1", StartMs: 200 * minute, EndMs: 200 * minute},
	{Type: "use_after_revocation", SubjectID: "s3", CredentialID: "c3", DoorID: "d9", StartMs: 300 * minute, EndMs: 900 * minute},
}

func TestScore(t *testing.T) {
	alerts := []score.Alert{
		{Detector: "unlock_burst", SubjectID: "s1", TsMs: 125 * minute, WindowStartMs: 95 * minute, WindowEndMs: 125 * minute}, // hit
		{Detector: "unlock_burst", SubjectID: "s1", TsMs: 140 * minute},                                                        // hit within slack
		{Detector: "unlock_burst", SubjectID: "s9", TsMs: 125 * minute},                                                        // wrong subject
		{Detector: "unlock_burst", SubjectID: "s2", TsMs: 700 * minute},                                                        // too late
		{Detector: "door_forced", DoorID: "d1", TsMs: 200 * minute},                                                            // hit
		{Detector: "use_after_revocation", CredentialID: "c3", TsMs: 600 * minute},                                             // hit by credential
		{Detector: "off_schedule", SubjectID: "s4", TsMs: 10 * minute},                                                         // not a label type
	}
	res := score.Score(labels, alerts, score.Options{Slack: 15 * time.Minute})
	by := map[string]score.Result{}
	for _, r := range res {
		by[r.Type] = r
	}
	b := by["unlock_burst"]
	require.Equal(t, 2, b.Labels)
	require.Equal(t, 1, b.Detected)
	require.Equal(t, 4, b.Alerts)
	require.Equal(t, 2, b.Matching)
	require.InDelta(t, 0.5, b.Precision, 1e-9)
	require.InDelta(t, 0.5, b.Recall, 1e-9)
	require.InDelta(t, 1.0, by["door_forced"].F1, 1e-9)
	require.InDelta(t, 1.0, by["use_after_revocation"].Recall, 1e-9)
	require.Zero(t, by["denied_storm"].Labels)
	require.Equal(t, 1, by["off_schedule"].Alerts)
	require.Zero(t, by["off_schedule"].Labels)

	var out strings.Builder
	require.NoError(t, score.WriteTable(&out, res))
	require.Contains(t, out.String(), "unlock_burst")
}

func TestReadAlertsAndLabels(t *testing.T) {
	alerts, err := score.ReadAlerts(strings.NewReader(`{"alert_id":"a1","detector":"door_forced","door_id":"d1","ts_ms":5}` + "\n\n" +
		`{"note":"not an alert"}` + "\n"))
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	require.Equal(t, "d1", alerts[0].DoorID)
	ls, err := score.ReadLabels(strings.NewReader(`{"type":"door_forced","subject_id":"","credential_id":"","door_id":"d1","start_ms":1,"end_ms":2}` + "\n"))
	require.NoError(t, err)
	require.Equal(t, "d1", ls[0].DoorID)
	_, err = score.ReadAlerts(strings.NewReader("{broken\n"))
	require.ErrorContains(t, err, "line 1")
}
