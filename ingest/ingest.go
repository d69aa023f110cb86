// Package ingest receives vendor webhooks over HTTP and puts each record,
// unchanged, into lock.events.raw, keyed by the vendor device id. It answers
// only after Kafka acknowledged the records, so a 202 means "durably queued".
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/normalize"
)

// Options configure the handler.
type Options struct {
	// Normalizer validates each record with its vendor's adapter before it is
	// queued, so a malformed record is refused at the door with a reason.
	Normalizer *normalize.Normalizer
	Raw        bus.Writer    // lock.events.raw
	MaxRecords int           // per request
	Timeout    time.Duration // for the Kafka write
	// Signers verify vendor webhook signatures by vendor (see httpapi.Route.Signed).
	Signers    map[string]func(c *fiber.Ctx) (bool, error)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// TimeWindow bounds event times (zero: event.DefaultTimeWindow): a
	// record with an event outside it is rejected with time_out_of_range.
	TimeWindow event.TimeWindow
	// MaxPartitions bounds how many monthly partitions (of access_events,
	// partitioned by event month) the records of one request may reach
	// (default 12): records in further months are rejected with
	// too_many_partitions, to be sent in another request.
	MaxPartitions int
	// Now is the clock of received_ms and the window (default time.Now).
	Now func() time.Time
}

// ReasonTooManyPartitions rejects a record whose month would make one
// request reach more than Options.MaxPartitions monthly partitions.
const ReasonTooManyPartitions = "too_many_partitions"

// Handler serves POST /v1/ingest/{vendor}.
type Handler struct {
	opts    Options
	records *prometheus.CounterVec
}

// New returns a handler.
func New(opts Options) (*Handler, error) {
	if opts.Normalizer == nil || opts.Raw == nil {
		return nil, fmt.Errorf("ingest: Normalizer and Raw are required")
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 10000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TimeWindow == (event.TimeWindow{}) {
		opts.TimeWindow = event.DefaultTimeWindow
	}
	if opts.MaxPartitions <= 0 {
		opts.MaxPartitions = 12
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{opts: opts, records: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyfleet_ingest_http_records_total",
		Help: "Records received by HTTP ingest, by vendor and result (accepted, rejected).",
	}, []string{"vendor", "result"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(h.records)
	}
	return h, nil
}

// Routes returns the ingest routes.
func (h *Handler) Routes() []httpapi.Route {
	return []httpapi.Route{{
		Method:  fiber.MethodPost,
		Path:    "/v1/ingest/:vendor",
		Summary: "Queue vendor lock events (one JSON payload, a JSON array, NDJSON, or CSV lines for legacy).",
		Roles:   httpapi.IngestRoles,
		Signed:  h.verify,
		Handler: h.ingest,
	}}
}

func (h *Handler) verify(c *fiber.Ctx) (bool, error) {
	if f, ok := h.opts.Signers[c.Params("vendor")]; ok {
		return f(c)
	}
	return false, nil
}

// Result is the 202 response body.
type Result struct {
	Accepted int                  `json:"accepted"`
	Rejected int                  `json:"rejected"`
	Errors   []httpapi.FieldError `json:"errors,omitempty"`
}

func (h *Handler) ingest(c *fiber.Ctx) error {
	vendor := c.Params("vendor")
	if !h.opts.Normalizer.Has(vendor) {
		return httpapi.NewProblem(fiber.StatusNotFound, "unknown_vendor", fmt.Sprintf("no adapter for vendor %q", vendor))
	}
	vendor = string([]byte(vendor)) // fiber reuses its buffers
	records, err := Split(c.Body())
	if err != nil {
		return httpapi.NewProblem(fiber.StatusBadRequest, "malformed_body", err.Error())
	}
	if len(records) == 0 {
		return httpapi.NewProblem(fiber.StatusBadRequest, "empty_body", "the body holds no records")
	}
	if len(records) > h.opts.MaxRecords {
		return httpapi.NewProblem(fiber.StatusRequestEntityTooLarge, "too_many_records",
			fmt.Sprintf("%d records in one request; the limit is %d", len(records), h.opts.MaxRecords))
	}
	now := h.opts.Now().UnixMilli()
	var res Result
	msgs := make([]kafka.Message, 0, len(records))
	var events []event.Access
	months := map[int]bool{}
	reject := func(i int, reason string) {
		idx := i
		res.Errors = append(res.Errors, httpapi.FieldError{Index: &idx, Reason: reason})
		res.Rejected++
	}
records:
	for i, rec := range records {
		events, err = h.opts.Normalizer.Normalize(events[:0], vendor, now, "", rec)
		if err != nil {
			reject(i, err.Error())
			continue
		}
		var added []int
		for _, e := range events {
			if err := h.opts.TimeWindow.Check(e.TsMs, now); err != nil {
				reject(i, event.ReasonTimeOutOfRange+": "+strings.TrimPrefix(err.Error(), event.ErrTimeOutOfRange.Error()+": "))
				continue records
			}
			if m := event.Month(e.TsMs); !months[m] && !slices.Contains(added, m) {
				added = append(added, m)
			}
		}
		if len(months)+len(added) > h.opts.MaxPartitions {
			reject(i, fmt.Sprintf("%s: the request's records already reach %d monthly partitions (the limit); send events of other months in another request",
				ReasonTooManyPartitions, len(months)))
			continue
		}
		for _, m := range added {
			months[m] = true
		}
		key := ""
		if len(events) > 0 {
			key = events[0].LockID
		}
		raw := event.NewRaw(vendor, now, rec)
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: raw.AppendJSON(nil), Time: time.UnixMilli(now)})
	}
	if len(msgs) > 0 {
		ctx, cancel := context.WithTimeout(c.UserContext(), h.opts.Timeout)
		defer cancel()
		if err := h.opts.Raw.WriteMessages(ctx, msgs...); err != nil {
			h.opts.Logger.Warn("ingest: queue records failed", "vendor", vendor, "records", len(msgs), "err", err)
			c.Set(fiber.HeaderRetryAfter, "5")
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "queue_unavailable", "records could not be queued; retry later")
		}
	}
	res.Accepted = len(msgs)
	h.records.WithLabelValues(vendor, "accepted").Add(float64(res.Accepted))
	h.records.WithLabelValues(vendor, "rejected").Add(float64(res.Rejected))
	if res.Accepted == 0 {
		p := httpapi.NewProblem(fiber.StatusUnprocessableEntity, "all_records_rejected", "no record could be mapped")
		p.Errors = res.Errors
		return p
	}
	return c.Status(fiber.StatusAccepted).JSON(res)
}

// Split cuts a request body into records: one JSON value, a JSON array of
// values, or newline-delimited records (NDJSON, or CSV lines for legacy).
// The returned slices are copies, safe to keep after the request.
func Split(body []byte) ([][]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	if body[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			return nil, fmt.Errorf("body starts like a JSON array but is not one: %v", err)
		}
		out := make([][]byte, 0, len(arr))
		for _, r := range arr {
			out = append(out, bytes.Clone(bytes.TrimSpace(r)))
		}
		return out, nil
	}
	if body[0] == '{' && json.Valid(body) {
		return [][]byte{bytes.Clone(body)}, nil
	}
	var out [][]byte
	for _, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	return out, nil
}
