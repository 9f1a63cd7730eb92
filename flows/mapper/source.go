// Package mapper is a flows.Source that polls the Otterize network-mapper's GraphQL API and
// turns each client→server edge it discovered into a workload-level observation.
//
// The network-mapper keeps, in memory, every edge it has seen since it started, and its API
// returns them all on each query without saying when each was last seen. The Source
// therefore reports an edge when a poll first shows it, timed by that poll, and again only
// when it reappears after the mapper lost it (a restart or a reset): that is a new sighting.
// Edges the mapper keeps are not re-reported on every poll, so counts reflect discoveries,
// not polls.
//
// Coverage is reported through flows.KindHealth events (Source "mapper"):
//   - Connected at the first good poll, and at the first good poll after a failure.
//   - Disconnected when a poll fails (unreachable, an HTTP error, GraphQL errors, an
//     unreadable answer), timed at the last good poll: what the mapper saw after it is
//     unconfirmed until a poll shows it.
//   - CaughtUp after a recovery in which the mapper still has every edge it reported
//     before: it was running all along and this poll holds what it saw meanwhile, so the
//     gap is closed back to its start.
//   - Disconnected then Connected when a good poll lacks edges an earlier one had: the
//     mapper restarted or was reset since the last poll and what it saw in between is lost.
package mapper

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shadowgate/shadowgate/flows"
	"k8s.io/utils/clock"
)

// SourceName is the Health.Source of the events a Source emits.
const SourceName = "mapper"

// Source polls the network-mapper. It is a flows.Source: Next blocks until the next event
// and returns ctx.Err() when ctx ends; it never returns io.EOF. Like any Source it is not
// safe for concurrent use.
type Source struct {
	cfg        Config
	clock      clock.Clock
	client     *http.Client
	rand       func() float64
	namespaces map[string]bool
	body       []byte // the request, encoded once

	pending  []flows.Event
	nextPoll time.Time // zero: poll now
	failures int       // consecutive failed polls
	state    state
	// lastGood is the time of the last good poll; present holds every edge it showed,
	// namespace filter or not, so that a mapper that forgot edges is noticed whichever
	// namespaces they touch; presentBad holds the unusable intents it showed.
	lastGood   time.Time
	present    map[edge]bool
	presentBad map[string]bool
}

type state int

const (
	stateNew state = iota
	stateConnected
	stateDisconnected
)

// edge is one client→server pair. The mapper keeps one intent per pair and intent type
// (HTTP, Kafka, ...); at workload level those are one edge.
type edge struct {
	clientNS, client, clientKind string
	serverNS, server, serverKind string
}

func (e edge) String() string {
	return fmt.Sprintf("%s/%s → %s/%s", e.clientNS, e.client, e.serverNS, e.server)
}

func compareEdges(a, b edge) int {
	return cmp.Or(
		strings.Compare(a.clientNS, b.clientNS), strings.Compare(a.client, b.client), strings.Compare(a.clientKind, b.clientKind),
		strings.Compare(a.serverNS, b.serverNS), strings.Compare(a.server, b.server), strings.Compare(a.serverKind, b.serverKind),
	)
}

// Option customizes a Source.
type Option func(*Source)

// WithClock sets the clock that times polls, backoff and events.
func WithClock(c clock.Clock) Option { return func(s *Source) { s.clock = c } }

// WithHTTPClient sets the HTTP client, e.g. for TLS to a mapper behind a proxy.
// Config.Timeout still bounds each poll.
func WithHTTPClient(c *http.Client) Option { return func(s *Source) { s.client = c } }

var _ flows.Source = (*Source)(nil)

// New returns a Source polling cfg.URL. It does not contact the mapper: the first call to
// Next does.
func New(cfg Config, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mapper config: %w", err)
	}
	body, err := json.Marshal(request{OperationName: OperationName, Query: Query, Variables: map[string]any{}})
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg:        cfg,
		clock:      clock.RealClock{},
		rand:       rand.Float64,
		body:       body,
		present:    map[edge]bool{},
		presentBad: map[string]bool{},
	}
	if len(cfg.Namespaces) > 0 {
		s.namespaces = map[string]bool{}
		for _, ns := range cfg.Namespaces {
			s.namespaces[ns] = true
		}
	}
	for _, o := range opts {
		o(s)
	}
	if s.client == nil {
		s.client = newHTTPClient(cfg.Timeout)
	}
	return s, nil
}

// newHTTPClient bounds every phase of a request by timeout, so that a mapper that accepts
// connections and then says nothing cannot hold a poll forever.
func newHTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 1
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Name is the mapper's URL.
func (s *Source) Name() string { return s.cfg.URL }

// Close releases idle connections to the mapper.
func (s *Source) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Next returns the next event, polling the mapper when the events of the last poll are
// used up and the next poll is due.
func (s *Source) Next(ctx context.Context) (flows.Event, error) {
	for {
		if err := ctx.Err(); err != nil {
			return flows.Event{}, err
		}
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending[0] = flows.Event{}
			s.pending = s.pending[1:]
			return ev, nil
		}
		if wait := s.nextPoll.Sub(s.clock.Now()); !s.nextPoll.IsZero() && wait > 0 {
			t := s.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return flows.Event{}, ctx.Err()
			case <-t.C():
			}
		}
		if err := s.poll(ctx); err != nil {
			return flows.Event{}, err
		}
	}
}

// poll queries the mapper once and queues the events the answer yields. It returns an
// error only when ctx ended: the mapper's failures are events.
func (s *Source) poll(ctx context.Context) error {
	start := s.clock.Now()
	intents, err := s.fetch(ctx)
	if ctxErr := ctx.Err(); ctxErr != nil {
		// Our own shutdown says nothing about the mapper; the next Next polls again.
		return ctxErr
	}
	now := s.clock.Now()
	if err != nil {
		s.failed(now, err)
		return nil
	}
	s.failures = 0
	s.nextPoll = start.Add(s.cfg.PollInterval)

	current := make(map[edge]bool, len(intents))
	currentBad := map[string]bool{}
	var fresh []edge
	var bad []string
	for _, in := range intents {
		e, problem := toEdge(in)
		if problem != "" {
			if !currentBad[problem] && !s.presentBad[problem] {
				bad = append(bad, problem)
			}
			currentBad[problem] = true
			continue
		}
		if current[e] {
			continue
		}
		current[e] = true
		if !s.present[e] && s.wanted(e) {
			fresh = append(fresh, e)
		}
	}
	var forgotten []edge
	for e := range s.present {
		if !current[e] {
			forgotten = append(forgotten, e)
		}
	}
	slices.SortFunc(forgotten, compareEdges)
	if len(forgotten) > 0 {
		// The mapper lost its memory after the last good poll, so every edge it shows now
		// was seen again since then, including those it happened to rediscover before this
		// poll.
		fresh = fresh[:0]
		for e := range current {
			if s.wanted(e) {
				fresh = append(fresh, e)
			}
		}
	}

	var caughtUp *flows.Health
	switch {
	case s.state == stateConnected && len(forgotten) > 0:
		s.health(flows.Disconnected, s.lastGood, fmt.Sprintf("the network-mapper at %s no longer has %s it reported at %s: it restarted or was reset, and what it saw in between is lost",
			s.cfg.URL, edgeList(forgotten), s.lastGood.UTC().Format(time.RFC3339)))
		s.health(flows.Connected, now, "polling "+s.cfg.URL)
	case s.state == stateDisconnected && !s.lastGood.IsZero() && len(forgotten) > 0:
		s.health(flows.Connected, now, fmt.Sprintf("polling %s again; it no longer has %s: it restarted while unreachable, and what it saw before is lost",
			s.cfg.URL, edgeList(forgotten)))
	case s.state == stateDisconnected && !s.lastGood.IsZero():
		s.health(flows.Connected, now, "polling "+s.cfg.URL+" again")
		caughtUp = &flows.Health{Time: now, Source: SourceName, State: flows.CaughtUp, Since: s.lastGood,
			Message: "the network-mapper still has every edge it reported before it became unreachable: it kept running, and this poll holds what it saw meanwhile"}
	case s.state != stateConnected:
		s.health(flows.Connected, now, "polling "+s.cfg.URL)
	}

	for _, problem := range bad {
		ev := flows.Malformed(flows.ReasonInvalidField, problem)
		s.pending = append(s.pending, ev)
	}
	slices.SortFunc(fresh, compareEdges)
	for _, e := range fresh {
		s.pending = append(s.pending, flows.Event{Kind: flows.KindFlow, Flow: &flows.Flow{
			Time:          now,
			WorkloadLevel: true,
			Source:        flows.Endpoint{Namespace: e.clientNS, Workloads: []flows.Workload{{Name: e.client, Kind: e.clientKind}}},
			Destination:   flows.Endpoint{Namespace: e.serverNS, Workloads: []flows.Workload{{Name: e.server, Kind: e.serverKind}}},
		}})
	}
	if caughtUp != nil {
		s.pending = append(s.pending, flows.Event{Kind: flows.KindHealth, Health: caughtUp})
	}
	s.state, s.lastGood, s.present, s.presentBad = stateConnected, now, current, currentBad
	return nil
}

// failed records a failed poll: the first failure after a good poll opens a gap at that
// poll; later ones only push the next attempt back.
func (s *Source) failed(now time.Time, err error) {
	s.failures++
	s.nextPoll = now.Add(s.cfg.Backoff.delay(s.failures, s.rand()))
	if s.state == stateDisconnected {
		return
	}
	at, msg := now, err.Error()
	if s.state == stateConnected {
		at = s.lastGood
		msg += fmt.Sprintf(" (nothing the network-mapper saw since the last good poll at %s is confirmed)", s.lastGood.UTC().Format(time.RFC3339))
	}
	s.state = stateDisconnected
	s.health(flows.Disconnected, at, msg)
}

func (s *Source) health(st flows.HealthState, at time.Time, msg string) {
	s.pending = append(s.pending, flows.Event{Kind: flows.KindHealth, Health: &flows.Health{
		Time: at, Source: SourceName, State: st, Message: msg,
	}})
}

func (s *Source) wanted(e edge) bool {
	return s.namespaces == nil || s.namespaces[e.clientNS] || s.namespaces[e.serverNS]
}

// edgeList names a few edges: a reset mapper may have forgotten thousands.
func edgeList(es []edge) string {
	const shown = 3
	names := make([]string, 0, shown)
	for _, e := range es[:min(len(es), shown)] {
		names = append(names, e.String())
	}
	s := fmt.Sprintf("%d edge", len(es))
	if len(es) != 1 {
		s += "s"
	}
	s += " (" + strings.Join(names, ", ")
	if len(es) > shown {
		s += ", ..."
	}
	return s + ")"
}

// toEdge checks an intent; problem is a stable description of what makes it unusable.
func toEdge(in intent) (e edge, problem string) {
	valid := func(id *identity) bool { return id != nil && id.Namespace != "" && id.Name != "" }
	name := func(id *identity) string {
		if id == nil {
			return "<null>"
		}
		return id.Namespace + "/" + id.Name
	}
	if !valid(in.Client) || !valid(in.Server) {
		return edge{}, fmt.Sprintf("network-mapper intent %s → %s: client and server need a name and a namespace", name(in.Client), name(in.Server))
	}
	return edge{
		clientNS: in.Client.Namespace, client: in.Client.Name, clientKind: in.Client.kind(),
		serverNS: in.Server.Namespace, server: in.Server.Name, serverKind: in.Server.kind(),
	}, ""
}

// fetch sends Query and decodes the answer.
func (s *Source) fetch(ctx context.Context) ([]intent, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(s.body))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", s.cfg.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.timeoutHint(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the answer: %w", s.cfg.URL, s.timeoutHint(err))
	}
	if int64(len(body)) > s.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("POST %s: answer is longer than maxResponseBytes (%d)", s.cfg.URL, s.cfg.MaxResponseBytes)
	}
	intents, err := decodeResponse(resp.StatusCode, resp.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", s.cfg.URL, err)
	}
	return intents, nil
}

func (s *Source) timeoutHint(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within the %s timeout: %w", s.cfg.Timeout, err)
	}
	return err
}
