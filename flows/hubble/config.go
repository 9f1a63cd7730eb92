package hubble

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"k8s.io/apimachinery/pkg/util/validation"
)

// SourceName is the flows.Health.Source of every health event this package emits.
const SourceName = "hubble"

// unixScheme is the gRPC target prefix of a local Hubble socket
// (unix:///var/run/cilium/hubble.sock on a Cilium node).
const unixScheme = "unix://"

// Config configures a Source. Start from Default; the zero value is not valid.
type Config struct {
	// Address is the Hubble server, host:port (a relay, e.g. hubble-relay.kube-system:80,
	// or an agent, :4244), or unix:///path to an agent's local socket.
	Address string

	// TLS enables TLS. Like the hubble CLI the connection is plaintext by default; unlike
	// it, giving any of CAFile, CertFile, KeyFile or ServerName also enables TLS, so a
	// certificate is never silently ignored and traffic never silently plaintext.
	TLS bool
	// CAFile holds the PEM CA certificates that sign the server's certificate. Empty means
	// the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and key for mutual TLS, as Hubble
	// Relay requires when its clients must authenticate. Both or neither. They are read
	// again on every handshake, so a rotated certificate is picked up on the next
	// reconnect.
	CertFile string
	KeyFile  string
	// ServerName is the name the server's certificate must carry; empty means the host of
	// Address. Hubble's generated certificates name e.g. *.hubble-relay.cilium.io, not the
	// Service's DNS name.
	ServerName string

	// Namespaces restricts the stream, on the server, to flows whose source or
	// destination is in one of them. Empty means every flow.
	Namespaces []string
	// Verdicts restricts the stream to flows with one of these verdicts (FORWARDED,
	// DROPPED, AUDIT, ...). Empty means every verdict.
	Verdicts []string

	// BufferSize is how many events wait between the stream and the consumer. When it is
	// full the source stops reading, gRPC flow control stops the server, and the server's
	// own buffers overflow into lost_events: memory stays bounded and no loss is silent.
	// The consumer takes the waiting events as one batch, so up to twice this many may be
	// in memory; as many responses again may wait decoded for the stream loop (at most
	// 1024).
	BufferSize int

	// KeepaliveTime is the idle time after which the client pings the server, 0 to never
	// ping. Hubble servers run gRPC's default enforcement, which closes a connection with
	// "too_many_pings" when pings on a quiet stream come more often than every 5 minutes,
	// so shorter values only work against servers configured for them.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long a ping may go unanswered before the connection is
	// considered dead.
	KeepaliveTimeout time.Duration

	// BackoffInitial and BackoffMax bound the wait between reconnects: it doubles from
	// BackoffInitial after each attempt that received nothing, up to BackoffMax.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// BackoffJitter in [0,1) shortens each wait by up to this fraction, at random, so
	// that many shadowgate instances do not reconnect to a restarted relay in lockstep.
	BackoffJitter float64

	// ServerStatusInterval is how often ServerStatus is polled for unavailable nodes
	// while connected; 0 disables polling.
	ServerStatusInterval time.Duration
	// ReplayOverlap is how far before the newest flow received a reconnect's replay
	// starts.
	ReplayOverlap time.Duration
	// DedupWindow bounds how many recently received flow keys are remembered to
	// de-duplicate a replay's overlap. When more flows than this arrive within
	// ReplayOverlap, the replay starts later instead (after the newest forgotten flow), so
	// a flow is never delivered twice; the overlap is then shorter than asked.
	DedupWindow int
	// StallTimeout is how long an established stream may send nothing before it is
	// reported Stalled and re-established; 0 disables. Filtered streams on quiet clusters
	// are legitimately silent: a stall only costs a reconnect and its replay.
	StallTimeout time.Duration
	// CatchUpIdle is how long a replaying stream must be silent for the replay to count as
	// finished when no flow newer than the reconnect has arrived.
	CatchUpIdle time.Duration
}

// Default returns the configuration used when nothing is set: the hubble CLI's default
// server, plaintext, every namespace and verdict.
func Default() Config {
	return Config{
		Address:              "localhost:4245",
		BufferSize:           4096,
		KeepaliveTime:        5 * time.Minute,
		KeepaliveTimeout:     20 * time.Second,
		BackoffInitial:       500 * time.Millisecond,
		BackoffMax:           30 * time.Second,
		BackoffJitter:        0.2,
		ServerStatusInterval: 30 * time.Second,
		ReplayOverlap:        5 * time.Second,
		DedupWindow:          1 << 16,
		StallTimeout:         2 * time.Minute,
		CatchUpIdle:          3 * time.Second,
	}
}

// TLSEnabled reports whether the connection uses TLS: TLS is set or any TLS option is.
func (c Config) TLSEnabled() bool {
	return c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// minKeepaliveTime is gRPC's floor: it raises shorter keepalive times to this silently.
const minKeepaliveTime = 10 * time.Second

// Validate reports every invalid field at once, each error naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if err := validateAddress(c.Address); err != nil {
		bad("Address", "%v", err)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("CertFile", "CertFile and KeyFile go together, got CertFile %q and KeyFile %q", c.CertFile, c.KeyFile)
	}
	for i, ns := range c.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			bad(fmt.Sprintf("Namespaces[%d]", i), "%q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
		}
	}
	for i, v := range c.Verdicts {
		if _, err := parseVerdict(v); err != nil {
			bad(fmt.Sprintf("Verdicts[%d]", i), "%v", err)
		}
	}
	if c.BufferSize < 1 {
		bad("BufferSize", "must be at least 1, got %d", c.BufferSize)
	}
	if c.KeepaliveTime != 0 && c.KeepaliveTime < minKeepaliveTime {
		bad("KeepaliveTime", "must be 0 (off) or at least %v, got %v", minKeepaliveTime, c.KeepaliveTime)
	}
	if c.KeepaliveTime != 0 && c.KeepaliveTimeout <= 0 {
		bad("KeepaliveTimeout", "must be positive when KeepaliveTime is set, got %v", c.KeepaliveTimeout)
	}
	if c.BackoffInitial <= 0 {
		bad("BackoffInitial", "must be positive, got %v", c.BackoffInitial)
	}
	if c.BackoffMax < c.BackoffInitial {
		bad("BackoffMax", "must be at least BackoffInitial (%v), got %v", c.BackoffInitial, c.BackoffMax)
	}
	if c.BackoffJitter < 0 || c.BackoffJitter >= 1 {
		bad("BackoffJitter", "must be in [0,1), got %v", c.BackoffJitter)
	}
	if c.ServerStatusInterval < 0 {
		bad("ServerStatusInterval", "must be 0 (off) or positive, got %v", c.ServerStatusInterval)
	}
	if c.ReplayOverlap < 0 {
		bad("ReplayOverlap", "must not be negative, got %v", c.ReplayOverlap)
	}
	if c.DedupWindow < 1 {
		bad("DedupWindow", "must be at least 1, got %d", c.DedupWindow)
	}
	if c.StallTimeout < 0 {
		bad("StallTimeout", "must be 0 (off) or positive, got %v", c.StallTimeout)
	}
	if c.CatchUpIdle <= 0 {
		bad("CatchUpIdle", "must be positive, got %v", c.CatchUpIdle)
	}
	return errors.Join(errs...)
}

func validateAddress(addr string) error {
	if addr == "" {
		return errors.New("is empty, want host:port or unix:///path")
	}
	if path, ok := strings.CutPrefix(addr, unixScheme); ok {
		if path == "" || path == "/" {
			return fmt.Errorf("%q names no socket path", addr)
		}
		return nil
	}
	if strings.Contains(addr, "://") {
		return fmt.Errorf("%q: only host:port and unix:///path are supported", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	if host == "" {
		// gRPC would dial the local host; say it rather than guess what was meant.
		return fmt.Errorf("%q has no host (use localhost:%s)", addr, port)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 1-65535", addr, port)
	}
	return nil
}

func parseVerdict(name string) (flowpb.Verdict, error) {
	v, ok := flowpb.Verdict_value[strings.ToUpper(name)]
	if !ok || v == int32(flowpb.Verdict_VERDICT_UNKNOWN) {
		return 0, fmt.Errorf("unknown verdict %q (want one of %s)", name, strings.Join(verdictNames(), ", "))
	}
	return flowpb.Verdict(v), nil
}

func verdictNames() []string {
	var names []string
	for v := int32(1); ; v++ {
		name, ok := flowpb.Verdict_name[v]
		if !ok {
			return names
		}
		names = append(names, name)
	}
}

// whitelist is the server-side filter set. Whitelist filters are ORed and the fields of
// one filter ANDed, each field matching any of its values; "ns/" as a pod filter matches
// every pod of ns. Source OR destination namespace therefore takes two filters.
func (c Config) whitelist() []*flowpb.FlowFilter {
	var verdicts []flowpb.Verdict
	for _, name := range c.Verdicts {
		v, _ := parseVerdict(name) // Validate has checked it.
		verdicts = append(verdicts, v)
	}
	if len(c.Namespaces) == 0 {
		if len(verdicts) == 0 {
			return nil
		}
		return []*flowpb.FlowFilter{{Verdict: verdicts}}
	}
	pods := make([]string, len(c.Namespaces))
	for i, ns := range c.Namespaces {
		pods[i] = ns + "/"
	}
	return []*flowpb.FlowFilter{
		{SourcePod: pods, Verdict: verdicts},
		{DestinationPod: pods, Verdict: verdicts},
	}
}

// tlsConfig builds the client TLS configuration, or nil for plaintext. Files are read
// now so that a typo fails New rather than every handshake. certRequested is called when
// a server asks for a client certificate and none is configured: in TLS 1.3 the server
// rejects that after the client's handshake has succeeded, and the client only sees its
// connection cut, so the source adds the reason itself.
func (c Config) tlsConfig(certRequested func()) (*tls.Config, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	conf := &tls.Config{
		ServerName: c.ServerName,
		MinVersion: tls.VersionTLS12,
	}
	if c.CAFile != "" {
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("CAFile %s: no PEM certificate found", c.CAFile)
		}
		conf.RootCAs = pool
	}
	if c.CertFile == "" {
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			certRequested()
			return &tls.Certificate{}, nil // none: the server decides whether that is fatal
		}
		return conf, nil
	}
	if _, err := c.loadKeyPair(); err != nil {
		return nil, err
	}
	conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return c.loadKeyPair()
	}
	return conf, nil
}

func (c Config) loadKeyPair() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &cert, nil
}
