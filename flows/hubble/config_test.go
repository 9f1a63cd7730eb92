package hubble

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]struct {
		edit func(*Config)
		// want are substrings of the error, one per bad field; none means valid.
		want []string
	}{
		"host:port":               {edit: func(c *Config) { c.Address = "hubble-relay.kube-system:80" }},
		"IPv6 host:port":          {edit: func(c *Config) { c.Address = "[::1]:4245" }},
		"agent unix socket":       {edit: func(c *Config) { c.Address = "unix:///var/run/cilium/hubble.sock" }},
		"mTLS files":              {edit: func(c *Config) { c.CertFile, c.KeyFile = "c.crt", "c.key" }},
		"namespaces and verdicts": {edit: func(c *Config) { c.Namespaces, c.Verdicts = []string{"shop"}, []string{"DROPPED", "forwarded"} }},
		"keepalive off":           {edit: func(c *Config) { c.KeepaliveTime, c.KeepaliveTimeout = 0, 0 }},
		"empty address":           {edit: func(c *Config) { c.Address = "" }, want: []string{"Address: is empty"}},
		"address without port":    {edit: func(c *Config) { c.Address = "hubble-relay" }, want: []string{`Address: "hubble-relay" is not host:port`}},
		"address without host":    {edit: func(c *Config) { c.Address = ":4245" }, want: []string{`Address: ":4245" has no host`}},
		"port out of range":       {edit: func(c *Config) { c.Address = "relay:70000" }, want: []string{`port "70000" is not a number in 1-65535`}},
		"other scheme":            {edit: func(c *Config) { c.Address = "dns:///relay:80" }, want: []string{"only host:port and unix:///path"}},
		"unix without path":       {edit: func(c *Config) { c.Address = "unix://" }, want: []string{"names no socket path"}},
		"cert without key":        {edit: func(c *Config) { c.CertFile = "c.crt" }, want: []string{"CertFile: CertFile and KeyFile go together"}},
		"key without cert":        {edit: func(c *Config) { c.KeyFile = "c.key" }, want: []string{"CertFile: CertFile and KeyFile go together"}},
		"bad namespace":           {edit: func(c *Config) { c.Namespaces = []string{"shop", "Shop_1"} }, want: []string{`Namespaces[1]: "Shop_1" is not a namespace name`}},
		"unknown verdict":         {edit: func(c *Config) { c.Verdicts = []string{"DENIED"} }, want: []string{`Verdicts[0]: unknown verdict "DENIED" (want one of FORWARDED, DROPPED`}},
		"unknown-verdict name":    {edit: func(c *Config) { c.Verdicts = []string{"VERDICT_UNKNOWN"} }, want: []string{`Verdicts[0]: unknown verdict "VERDICT_UNKNOWN"`}},
		"keepalive too short":     {edit: func(c *Config) { c.KeepaliveTime = time.Second }, want: []string{"KeepaliveTime: must be 0 (off) or at least 10s, got 1s"}},
		"every numeric field bad at once": {
			edit: func(c *Config) {
				c.BufferSize, c.KeepaliveTimeout = 0, 0
				c.BackoffInitial, c.BackoffMax, c.BackoffJitter = 0, -1, 1
				c.ServerStatusInterval, c.ReplayOverlap, c.DedupWindow = -1, -1, 0
				c.StallTimeout, c.CatchUpIdle = -1, 0
			},
			want: []string{
				"BufferSize: must be at least 1, got 0",
				"KeepaliveTimeout: must be positive when KeepaliveTime is set",
				"BackoffInitial: must be positive, got 0s",
				"BackoffMax: must be at least BackoffInitial (0s), got -1ns",
				"BackoffJitter: must be in [0,1), got 1",
				"ServerStatusInterval: must be 0 (off) or positive, got -1ns",
				"ReplayOverlap: must not be negative, got -1ns",
				"DedupWindow: must be at least 1, got 0",
				"StallTimeout: must be 0 (off) or positive, got -1ns",
				"CatchUpIdle: must be positive, got 0s",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("Validate() reported %d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestWhitelist(t *testing.T) {
	cases := map[string]struct {
		namespaces, verdicts []string
		want                 []*flowpb.FlowFilter
	}{
		"nothing filters nothing": {},
		"verdicts alone": {
			verdicts: []string{"dropped", "AUDIT"},
			want:     []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED, flowpb.Verdict_AUDIT}}},
		},
		"namespaces match source or destination": {
			namespaces: []string{"shop", "billing"},
			want: []*flowpb.FlowFilter{
				{SourcePod: []string{"shop/", "billing/"}},
				{DestinationPod: []string{"shop/", "billing/"}},
			},
		},
		"verdicts apply on both sides": {
			namespaces: []string{"shop"},
			verdicts:   []string{"DROPPED"},
			want: []*flowpb.FlowFilter{
				{SourcePod: []string{"shop/"}, Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}},
				{DestinationPod: []string{"shop/"}, Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := Default()
			c.Namespaces, c.Verdicts = tc.namespaces, tc.verdicts
			if diff := cmp.Diff(tc.want, c.whitelist(), protocmp.Transform()); diff != "" {
				t.Errorf("whitelist (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca := hubbletest.NewCA(t, "test CA")
	caFile := ca.WriteFile(t, dir, "ca.crt")
	certFile, keyFile := ca.IssueClient(t, "shadowgate").WriteFiles(t, dir, "client")
	otherCert, _ := ca.IssueClient(t, "other").WriteFiles(t, dir, "other")

	cases := map[string]struct {
		edit func(*Config)
		want string
	}{
		"missing CA file": {
			edit: func(c *Config) { c.CAFile = filepath.Join(dir, "nope.crt") },
			want: "CAFile: open " + filepath.Join(dir, "nope.crt") + ": no such file or directory",
		},
		"CA file without PEM": {
			edit: func(c *Config) { c.CAFile = filepath.Join("testdata", "ca.bad.pem") },
			want: "CAFile testdata/ca.bad.pem: no PEM certificate found",
		},
		"missing client key": {
			edit: func(c *Config) { c.CAFile, c.CertFile, c.KeyFile = caFile, certFile, filepath.Join(dir, "nope.key") },
			want: "client certificate " + certFile + " with key " + filepath.Join(dir, "nope.key") + ": open",
		},
		"corrupt client key": {
			edit: func(c *Config) { c.CertFile, c.KeyFile = certFile, filepath.Join("testdata", "key.bad.pem") },
			want: "with key testdata/key.bad.pem: tls: failed to parse private key",
		},
		"key of another certificate": {
			edit: func(c *Config) { c.CertFile, c.KeyFile = otherCert, keyFile },
			want: "tls: private key does not match public key",
		},
		"invalid config": {
			edit: func(c *Config) { c.BufferSize = 0 },
			want: "hubble config: BufferSize: must be at least 1, got 0",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := Default()
			c.Address = "127.0.0.1:1"
			tc.edit(&c)
			src, err := New(c, nil)
			if err == nil {
				src.Close()
				t.Fatalf("New() succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New() = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
