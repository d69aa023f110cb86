package legacy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/adaptertest"
)

func line(kind, number, result string) string {
	return "2026-11-20T08:15:02Z,PANEL-7,READER-3," + kind + "," + number + "," + result
}

const card = "00123456"

var secrets = []string{card, "987654"}

var cases = []adaptertest.Case{
	{Name: "card granted", Payload: line("CARD", card, "GRANTED"), Secrets: secrets},
	{Name: "pin granted", Payload: line("PIN", "987654", "GRANTED"), Secrets: secrets},
	{Name: "card invalid", Payload: line("CARD", card, "DENIED_INVALID"), Secrets: secrets},
	{Name: "card revoked", Payload: line("CARD", card, "DENIED_REVOKED"), Secrets: secrets},
	{Name: "card expired", Payload: line("CARD", card, "DENIED_EXPIRED"), Secrets: secrets},
	{Name: "pin outside schedule", Payload: line("PIN", "987654", "DENIED_SCHEDULE"), Secrets: secrets},
	{Name: "door forced", Payload: line("", "", "FORCED")},
	{Name: "door held open", Payload: line("", "", "HELD_OPEN")},
	{Name: "tamper", Payload: line("", "", "TAMPER")},
	{Name: "unknown result", Payload: line("CARD", card, "DENIED_ANTIPASSBACK"), Secrets: secrets},
	{Name: "unknown kind", Payload: line("FOB", card, "GRANTED"), Secrets: secrets},
	{Name: "crlf and spaces", Payload: " 2026-11-20T09:15:02+01:00 , PANEL-7 , READER-3 , CARD , " + card + " , GRANTED \r\n", Secrets: secrets},
	{Name: "header line", Payload: Header},
	{Name: "error empty", Payload: ""},
	{Name: "error five fields", Payload: "2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD," + card, Secrets: secrets},
	{Name: "error seven fields", Payload: line("CARD", card, "GRANTED") + ",extra", Secrets: secrets},
	{Name: "error bad time", Payload: "20/11/2026 08:15,PANEL-7,READER-3,CARD," + card + ",GRANTED", Secrets: secrets},
	{Name: "error no reader", Payload: "2026-11-20T08:15:02Z,PANEL-7,,CARD," + card + ",GRANTED", Secrets: secrets},
	{Name: "error no result", Payload: line("CARD", card, ""), Secrets: secrets},
	{Name: "error number without kind", Payload: line("", card, "GRANTED"), Secrets: secrets},
	{Name: "error quoted field", Payload: `2026-11-20T08:15:02Z,"PANEL-7",READER-3,CARD,` + card + `,GRANTED`, Secrets: secrets},
	{Name: "error json", Payload: `{"time":"2026-11-20T08:15:02Z"}`},
	{Name: "error trailing nul", Payload: line("CARD", card, "GRANTED") + "\x00", Secrets: secrets},
	{Name: "error nul inside a field", Payload: line("CARD", card, "GRAN\x00TED"), Secrets: secrets},
	{Name: "error escape sequence", Payload: "2026-11-20T08:15:02Z,PANEL-7,\x1b[2JREADER-3,CARD," + card + ",GRANTED", Secrets: secrets},
	{Name: "error tab inside a field", Payload: line("CARD", card, "GRANTED\tDENIED"), Secrets: secrets},
	{Name: "tabs around fields", Payload: "2026-11-20T08:15:02Z\t,\tPANEL-7,READER-3\t,CARD," + card + ",GRANTED\t", Secrets: secrets},
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, Vendor, Adapter{}, cases) }

func TestTable(t *testing.T) { adaptertest.CheckTable(t, Adapter{}) }

func TestEveryMappingRow(t *testing.T) {
	adaptertest.Rows(t, Vendor, Adapter{}, func(m normalize.Mapping) (string, bool) {
		switch m.Field {
		case "result":
			return line("CARD", card, m.Code), true
		case "kind":
			return line(m.Code, card, "GRANTED"), true
		}
		return "", false
	})
}

func TestSameLineSameID(t *testing.T) {
	n := adaptertest.Normalizer(Vendor, Adapter{})
	a, _, err := adaptertest.Run(n, Vendor, line("CARD", card, "GRANTED"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := adaptertest.Run(n, Vendor, line("CARD", card, "GRANTED"))
	c, _, _ := adaptertest.Run(n, Vendor, line("CARD", card, "DENIED_INVALID"))
	if a[0].EventID != b[0].EventID || a[0].EventID == c[0].EventID {
		t.Fatalf("ids: same line %s %s, other line %s", a[0].EventID, b[0].EventID, c[0].EventID)
	}
}

// A line ending in a NUL byte (a truncated export) used to be accepted as
// an unknown result (action other); control characters are refused with a
// reason the DLQ records.
func TestControlCharacters(t *testing.T) {
	n := adaptertest.Normalizer(Vendor, Adapter{})
	for _, payload := range []string{
		line("CARD", card, "GRANTED") + "\x00",
		"\x00" + line("CARD", card, "GRANTED"),
		line("CARD", card, "DENIED_\x7fINVALID"),
	} {
		events, _, err := adaptertest.Run(n, Vendor, payload)
		require.Error(t, err, "%q", payload)
		require.Empty(t, events)
		var nerr *normalize.Error
		require.ErrorAs(t, err, &nerr)
		assert.Equal(t, normalize.ReasonMalformed, nerr.Reason)
		assert.Contains(t, err.Error(), "control character")
		assert.NotContains(t, err.Error(), card)
	}
	// Trailing whitespace (CR LF) is still trimmed, not refused.
	events, _, err := adaptertest.Run(n, Vendor, line("CARD", card, "GRANTED")+"\r\n")
	require.NoError(t, err)
	require.Len(t, events, 1)
	assert.Equal(t, "unlock", events[0].Action)
}

func FuzzAdapter(f *testing.F) {
	adaptertest.Seed(f, cases)
	f.Fuzz(func(t *testing.T, payload []byte) {
		adaptertest.Fuzz(t, Vendor, Adapter{}, payload)
	})
}

var benchPayload = []byte(line("CARD", card, "GRANTED"))

func BenchmarkAdapter(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	var dst []event.Access
	for b.Loop() {
		var err error
		dst, err = Adapter{}.Normalize(dst[:0], benchPayload)
		if err != nil || len(dst) != 1 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
