package pipeline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/event"
)

// sliceReader hands out prepared access.events records once, then waits; its
// commit ends the run. It stands in for the Kafka reader only, so that a
// test or benchmark drives the writer's decode, column building and insert
// into the real ClickHouse with an exact batch.
type sliceReader struct {
	msgs   []kafka.Message
	next   int
	cancel context.CancelFunc
}

func (r *sliceReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if r.next < len(r.msgs) {
		r.next++
		return r.msgs[r.next-1], nil
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (r *sliceReader) CommitMessages(context.Context, ...kafka.Message) error {
	r.cancel()
	return nil
}

// accessRecords returns n access.events records of a plausible estate.
func accessRecords(n int) []kafka.Message {
	vendors := []string{"matter", "nuki", "schlage", "seam", "legacy"}
	base := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC).UnixMilli()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := vendors[i%len(vendors)]
		e := event.Access{
			EventID: event.ID(v, fmt.Sprintf("bench-%d", i)), TsMs: base + int64(i)*10, ReceivedMs: base + int64(i)*10 + 40,
			Vendor: v, SiteID: fmt.Sprintf("site-%02d", i%20), ZoneID: "zone-lobby", DoorID: fmt.Sprintf("door-%04d", i%1600),
			LockID: fmt.Sprintf("lock-%04d", i%1600), SubjectID: fmt.Sprintf("sub_%032x", i%8000),
			CredentialID: fmt.Sprintf("cred-%08d", i%15000), DeviceID: fmt.Sprintf("dev-%08d", i%9000),
			Attested: "true", Action: "unlock", Outcome: "granted", Method: "mobile_ble", VendorCode: "LockOperation/1/10",
			RawRef: fmt.Sprintf("lock.events.raw/%d/%d", i%4, i),
		}
		msgs[i] = kafka.Message{Topic: "access.events", Partition: i % 4, Offset: int64(i), Value: e.AppendJSON(nil)}
	}
	return msgs
}
