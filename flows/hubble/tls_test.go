package hubble

import (
	"slices"
	"strings"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

// TestTLS runs the client against TLS and mutual-TLS servers whose certificates come from
// a CA made for the test, as Hubble Relay's come from cilium's or cert-manager's.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := hubbletest.NewCA(t, "hubble-ca.cilium.io")
	other := hubbletest.NewCA(t, "someone else's CA")
	serverCert := ca.IssueServer(t, "relay.hubble-relay.cilium.io", "127.0.0.1")
	caFile := ca.WriteFile(t, dir, "ca.crt")
	otherCAFile := other.WriteFile(t, dir, "other-ca.crt")
	clientCert, clientKey := ca.IssueClient(t, "shadowgate").WriteFiles(t, dir, "client")
	strangerCert, strangerKey := other.IssueClient(t, "shadowgate").WriteFiles(t, dir, "stranger")

	tlsServer := []hubbletest.Option{hubbletest.WithTLS(serverCert.TLS)}
	mtlsServer := []hubbletest.Option{hubbletest.WithTLS(serverCert.TLS), hubbletest.WithClientCAs(ca.Pool())}

	cases := map[string]struct {
		server []hubbletest.Option
		edit   func(*Config)
		// wantErr is part of the Disconnected message the attempt must produce; empty
		// means the stream must be established and deliver the flow. When there are
		// several, one of them.
		wantErr []string
	}{
		"TLS with the test CA and the relay's server name": {
			server: tlsServer,
			edit:   func(c *Config) { c.CAFile, c.ServerName = caFile, "relay.hubble-relay.cilium.io" },
		},
		"TLS flag alone verifies the address's IP": {
			server: tlsServer,
			edit:   func(c *Config) { c.TLS, c.CAFile = true, caFile },
		},
		"mutual TLS with a client certificate": {
			server: mtlsServer,
			edit: func(c *Config) {
				c.CAFile, c.ServerName, c.CertFile, c.KeyFile = caFile, "relay.hubble-relay.cilium.io", clientCert, clientKey
			},
		},
		"wrong CA": {
			server:  tlsServer,
			edit:    func(c *Config) { c.CAFile, c.ServerName = otherCAFile, "relay.hubble-relay.cilium.io" },
			wantErr: []string{"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		},
		"system roots do not know the test CA": {
			server:  tlsServer,
			edit:    func(c *Config) { c.TLS = true },
			wantErr: []string{"x509: certificate signed by unknown authority"},
		},
		"wrong server name": {
			server:  tlsServer,
			edit:    func(c *Config) { c.CAFile, c.ServerName = caFile, "hubble-relay.kube-system.svc" },
			wantErr: []string{"x509: certificate is valid for relay.hubble-relay.cilium.io, not hubble-relay.kube-system.svc"},
		},
		"mutual TLS without a client certificate": {
			server:  mtlsServer,
			edit:    func(c *Config) { c.CAFile, c.ServerName = caFile, "relay.hubble-relay.cilium.io" },
			wantErr: []string{"the server asked for a client certificate and none is configured"},
		},
		"mutual TLS with a certificate from another CA": {
			server: mtlsServer,
			edit: func(c *Config) {
				c.CAFile, c.ServerName, c.CertFile, c.KeyFile = caFile, "relay.hubble-relay.cilium.io", strangerCert, strangerKey
			},
			// TLS 1.3 verifies the client's certificate after the client's handshake has
			// completed: the alert races the client's first write, which may find the
			// connection already cut.
			wantErr: []string{"tls: unknown certificate authority", "broken pipe", "connection reset by peer"},
		},
		"plaintext client, TLS server": {
			server:  tlsServer,
			edit:    func(*Config) {},
			wantErr: []string{"if it serves TLS, set TLS or CAFile"},
		},
		"TLS client, plaintext server": {
			edit:    func(c *Config) { c.CAFile = caFile },
			wantErr: []string{"tls: first record does not look like a TLS handshake"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			flow := cartToRedis.Nth(0, t0, 0)
			srv := hubbletest.Start(t, hubbletest.Steady([]*flowpb.Flow{flow}), tc.server...)
			cfg := testConfig(srv.Addr())
			tc.edit(&cfg)
			src := start(t, cfg, clocktesting.NewFakeClock(t0))

			first := next(t, src)
			if len(tc.wantErr) == 0 {
				got := summaries([]flows.Event{first, next(t, src)})
				if diff := cmp.Diff([]string{"connected", "flow f-0"}, got); diff != "" {
					t.Errorf("events (-want +got):\n%s\nfirst event: %+v", diff, first.Health)
				}
				return
			}
			if first.Kind != flows.KindHealth || first.Health.State != flows.Disconnected {
				t.Fatalf("first event %s, want disconnected", summary(first))
			}
			msg := first.Health.Message
			found := slices.ContainsFunc(tc.wantErr, func(w string) bool { return strings.Contains(msg, w) })
			if !found || !strings.HasPrefix(msg, "hubble "+srv.Addr()+": GetFlows") {
				t.Errorf("disconnected: %s\nwant it to name the server, GetFlows and one of %q", msg, tc.wantErr)
			}
		})
	}
}
