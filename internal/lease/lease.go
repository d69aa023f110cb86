// Package lease coordinates the work that must run once per fleet when
// several keyfleet instances share one Kafka cluster: the batch checks,
// rollups, retention, report scheduling, recertification deadlines and the
// identity end-date sweep.
//
// A lease is a partition. Every instance joins one Kafka consumer group
// (keyfleet-leases) on one topic (leases, Partitions partitions, never
// written to); each job hashes to a partition, and the member the group
// assigns that partition holds the job's lease. The group's own machinery
// decides and heals: a holder that stops heartbeating (SIGKILL, a network
// partition) is evicted after the session timeout (10 s) and the next
// generation gives its partitions to the members left, so a lease moves
// within about SessionTimeout + HeartbeatInterval + a rebalance. A live
// member releases its leases (cancels its jobs) as soon as its generation
// ends, before it rejoins, so two live members never knowingly hold one
// lease at once; an evicted member that cannot reach the broker notices on
// its next failed heartbeat (within HeartbeatInterval), so an overlap is
// bounded by that and every guarded job is idempotent anyway (alert ids,
// partition drops and rollup rows are deterministic).
package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
)

const (
	// Topic is the lease topic (unprefixed; bus.Config.TopicPrefix is
	// prepended). Nothing is ever produced to it.
	Topic = "leases"
	// Group is the lease consumer group (unprefixed).
	Group = "keyfleet-leases"
	// Partitions is how many partitions the lease topic is created with;
	// jobs hash onto them (two jobs on one partition share a holder).
	Partitions = 16
	// clientPrefix starts the Kafka client id of a lease member; the rest
	// is the instance id, which is how Holders names other instances.
	clientPrefix = "keyfleet-lease/"
)

// Options configure a Manager.
type Options struct {
	Bus bus.Config
	// Instance names this instance (its --instance-id).
	Instance string
	// Jobs are the lease names this instance may take.
	Jobs   []string
	Logger *slog.Logger
	// Registerer receives keyfleet_lease_held{job} (nil: none).
	Registerer prometheus.Registerer
	// HeartbeatInterval and SessionTimeout of the group membership
	// (defaults 3 s and 10 s, as the other consumer groups).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	// DescribeEvery is how often Run asks the broker who holds which lease
	// (for Holders; default 5 s).
	DescribeEvery time.Duration
	Now           func() time.Time
}

// Manager holds this instance's leases.
type Manager struct {
	opts  Options
	parts map[string]int // job → partition

	mu      sync.Mutex
	held    map[string]time.Time // job → held since
	changed chan struct{}        // closed and replaced on every change of held
	holders map[string]string    // job → instance, as the broker last told
	descAt  time.Time

	gauge *prometheus.GaugeVec
}

// New returns a manager; Run joins the group.
func New(o Options) (*Manager, error) {
	if len(o.Bus.Brokers) == 0 || o.Instance == "" || len(o.Jobs) == 0 {
		return nil, errors.New("lease: Bus, Instance and Jobs are required")
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 3 * time.Second
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.DescribeEvery <= 0 {
		o.DescribeEvery = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Manager{opts: o, parts: map[string]int{}, held: map[string]time.Time{}, changed: make(chan struct{}),
		holders: map[string]string{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_lease_held",
			Help: "1 while this instance holds the job's lease (runs the job for the whole fleet), else 0.",
		}, []string{"job"})}
	for _, j := range o.Jobs {
		m.parts[j] = PartitionOf(j)
		m.gauge.WithLabelValues(j).Set(0)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(m.gauge); err != nil {
			return nil, fmt.Errorf("lease metrics: %w", err)
		}
	}
	return m, nil
}

// PartitionOf is the lease partition of a job.
func PartitionOf(job string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(job))
	return int(h.Sum32() % Partitions)
}

// Held reports whether this instance holds job's lease now.
func (m *Manager) Held(job string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.held[job]
	return ok
}

// set replaces the held jobs with those on parts.
func (m *Manager) set(parts []int) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string]time.Time{}
	for job, p := range m.parts {
		if !slices.Contains(parts, p) {
			continue
		}
		if since, ok := m.held[job]; ok {
			next[job] = since
		} else {
			next[job] = now
		}
	}
	same := len(next) == len(m.held)
	for job := range next {
		if _, ok := m.held[job]; !ok {
			same = false
		}
	}
	if same {
		return
	}
	var took, lost []string
	for job := range next {
		if _, ok := m.held[job]; !ok {
			took = append(took, job)
		}
		m.gauge.WithLabelValues(job).Set(1)
	}
	for job := range m.held {
		if _, ok := next[job]; !ok {
			lost = append(lost, job)
			m.gauge.WithLabelValues(job).Set(0)
		}
	}
	sort.Strings(took)
	sort.Strings(lost)
	if len(took) > 0 {
		m.opts.Logger.Info("leases taken", "jobs", took, "instance", m.opts.Instance)
	}
	if len(lost) > 0 {
		m.opts.Logger.Info("leases released", "jobs", lost, "instance", m.opts.Instance)
	}
	m.held = next
	close(m.changed)
	m.changed = make(chan struct{})
}

// watch returns whether job is held and a channel closed at the next change.
func (m *Manager) watch(job string) (bool, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.held[job]
	return ok, m.changed
}

// Run is a member of the lease group until ctx ends: it takes the leases of
// the partitions each generation assigns it and releases them when the
// generation ends.
func (m *Manager) Run(ctx context.Context) error {
	defer m.set(nil)
	if err := bus.Retry(ctx, m.opts.Logger, "create lease topic", m.ensureTopic); err != nil {
		return nil // Retry gives up only when ctx ends
	}
	dialer := kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	if d := m.opts.Bus.Dialer(); d != nil {
		dialer = *d
	}
	dialer.ClientID = clientPrefix + m.opts.Instance
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: m.opts.Bus.TopicPrefix + Group, Brokers: m.opts.Bus.Brokers, Dialer: &dialer,
		Topics: []string{m.opts.Bus.Topic(Topic)}, HeartbeatInterval: m.opts.HeartbeatInterval,
		SessionTimeout: m.opts.SessionTimeout, RebalanceTimeout: 2 * m.opts.SessionTimeout,
		JoinGroupBackoff: time.Second, StartOffset: kafka.LastOffset,
	})
	if err != nil {
		return fmt.Errorf("lease group: %w", err)
	}
	defer group.Close()
	go m.describeLoop(ctx)
	backoff := bus.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			bus.Report(ctx, "join lease group", err)
			m.opts.Logger.Warn("join lease group", "err", err)
			if !bus.Wait(ctx, backoff.Next()) {
				return nil
			}
			continue
		}
		backoff.Reset()
		bus.Report(ctx, "join lease group", nil)
		var parts []int
		for _, a := range gen.Assignments[m.opts.Bus.Topic(Topic)] {
			parts = append(parts, a.ID)
		}
		m.set(parts)
		go m.describe(ctx)
		ended := make(chan struct{})
		gen.Start(func(gctx context.Context) {
			<-gctx.Done()
			close(ended)
		})
		select {
		case <-ended:
		case <-ctx.Done():
		}
		// Released before rejoining: the next holder is assigned only
		// once every live member has rejoined (or was evicted).
		m.set(nil)
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (m *Manager) ensureTopic(ctx context.Context) error {
	client := m.opts.Bus.Client(15 * time.Second)
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: m.opts.Bus.Topic(Topic), NumPartitions: Partitions, ReplicationFactor: -1,
	}}})
	if err != nil {
		return fmt.Errorf("create lease topic: %w", err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, terr)
		}
	}
	return nil
}

func (m *Manager) describeLoop(ctx context.Context) {
	for bus.Wait(ctx, m.opts.DescribeEvery) {
		m.describe(ctx)
	}
}

// describe asks the broker which member holds which lease partition.
func (m *Manager) describe(ctx context.Context) {
	members, err := Members(ctx, m.opts.Bus, Group)
	if err != nil {
		m.opts.Logger.Debug("describe lease group", "err", err)
		return
	}
	byPart := map[int]string{}
	for _, mem := range members {
		inst := strings.TrimPrefix(mem.ClientID, clientPrefix)
		for _, t := range mem.Assignments {
			if t.Topic != m.opts.Bus.Topic(Topic) {
				continue
			}
			for _, p := range t.Partitions {
				byPart[p] = inst
			}
		}
	}
	holders := map[string]string{}
	for job, p := range m.parts {
		if inst, ok := byPart[p]; ok {
			holders[job] = inst
		}
	}
	m.mu.Lock()
	m.holders, m.descAt = holders, m.opts.Now()
	m.mu.Unlock()
}

// Member is one member of a consumer group as the broker describes it.
type Member struct {
	ID          string
	ClientID    string
	Host        string
	Assignments []kafka.GroupMemberTopic
}

// Members describes a consumer group (unprefixed name): its members and
// their assigned partitions.
func Members(ctx context.Context, c bus.Config, group string) ([]Member, error) {
	client := c.Client(10 * time.Second)
	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{c.TopicPrefix + group}})
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(resp.Groups) != 1 {
		return nil, fmt.Errorf("describe group %s: %d groups answered", group, len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.Error != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, g.Error)
	}
	out := make([]Member, 0, len(g.Members))
	for _, mem := range g.Members {
		out = append(out, Member{ID: mem.MemberID, ClientID: mem.ClientID, Host: mem.ClientHost,
			Assignments: mem.MemberAssignments.Topics})
	}
	return out, nil
}

// Status is one job's lease as /readyz shows it.
type Status struct {
	// Holder is the instance holding the lease, as the broker last said
	// (empty while nobody does or before the first answer).
	Holder string `json:"holder"`
	// Here is true while this instance holds it.
	Here bool `json:"held_here"`
	// Since is when this instance took it (zero when not held here).
	Since *time.Time `json:"since,omitempty"`
}

// Holders returns every job's lease status.
func (m *Manager) Holders() map[string]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]Status, len(m.parts))
	for job := range m.parts {
		st := Status{Holder: m.holders[job]}
		if since, ok := m.held[job]; ok {
			s := since.UTC()
			st.Here, st.Since, st.Holder = true, &s, m.opts.Instance
		}
		out[job] = st
	}
	return out
}

// Guard returns run wrapped so that it runs only while this instance holds
// job's lease: it waits for the lease, runs run with a context that ends
// when the lease is lost, and waits again. run's error ends the guard only
// when the lease was still held (a loss is not run's failure).
func (m *Manager) Guard(job string, run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			held, changed := m.watch(job)
			if !held {
				select {
				case <-changed:
					continue
				case <-ctx.Done():
					return nil
				}
			}
			jctx, cancel := context.WithCancel(ctx)
			lost := make(chan struct{})
			go func() {
				defer close(lost)
				ch := changed
				for {
					select {
					case <-jctx.Done():
						return
					case <-ch:
					}
					var ok bool
					if ok, ch = m.watch(job); !ok {
						cancel()
						return
					}
				}
			}()
			err := run(jctx)
			wasLost := jctx.Err() != nil && ctx.Err() == nil
			cancel()
			<-lost
			if ctx.Err() != nil {
				return nil
			}
			if err != nil && !wasLost {
				return err
			}
			if !wasLost {
				// run returned by itself while holding: wait for a
				// change rather than spinning.
				select {
				case <-changed:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}
