package mapper

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg  func(*Config)
		want []string
	}{
		"defaults": {cfg: func(*Config) {}},
		"https URL and namespaces": {cfg: func(c *Config) {
			c.URL = "https://mapper.example.com/query"
			c.Namespaces = []string{"shop", "payments"}
		}},
		"every bad field is reported at once": {
			cfg: func(c *Config) {
				c.Namespaces = []string{"Shop", "shop", "shop"}
				c.PollInterval = 0
				c.Timeout = -time.Second
				c.Backoff = Backoff{Initial: 0, Max: -time.Second, Factor: 0.5, Jitter: 1.5}
				c.MaxResponseBytes = 0
			},
			want: []string{
				`namespaces[0]: Invalid value: "Shop": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`namespaces[2]: Duplicate value: "shop"`,
				`pollInterval: Invalid value: "0s": must be positive`,
				`timeout: Invalid value: "-1s": must be positive`,
				`backoff.initial: Invalid value: "0s": must be positive`,
				`backoff.max: Invalid value: "-1s": must be at least backoff.initial`,
				`backoff.factor: Invalid value: 0.5: must be at least 1`,
				`backoff.jitter: Invalid value: 1.5: must be between 0 and 1`,
				`maxResponseBytes: Invalid value: 0: must be positive`,
			},
		},
		"missing URL": {
			cfg:  func(c *Config) { c.URL = "" },
			want: []string{`url: Required value: the network-mapper's GraphQL endpoint, e.g. http://otterize-network-mapper.otterize-system:9090/query`},
		},
		"unparsable URL": {
			cfg:  func(c *Config) { c.URL = "http://[::1" },
			want: []string{`url: Invalid value: "http://[::1": parse "http://[::1": missing ']' in host`},
		},
		"not HTTP": {
			cfg:  func(c *Config) { c.URL = "grpc://mapper:9090" },
			want: []string{`url: Invalid value: "grpc://mapper:9090": scheme must be http or https`},
		},
		"no host": {
			cfg:  func(c *Config) { c.URL = "http:///query" },
			want: []string{`url: Invalid value: "http:///query": has no host`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Default()
			tc.cfg(&cfg)
			var got []string
			if err := cfg.Validate(); err != nil {
				var agg utilerrors.Aggregate
				if !errors.As(err, &agg) {
					t.Fatalf("Validate() = %T %v, want an aggregate of field errors", err, err)
				}
				for _, e := range agg.Errors() {
					got = append(got, e.Error())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate() errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := Default()
	cfg.URL = ""
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted a config without a URL")
	}
}

func TestDefaultURL(t *testing.T) {
	if got, want := DefaultURL("otterize-system"), "http://otterize-network-mapper.otterize-system:9090/query"; got != want {
		t.Errorf("DefaultURL = %q, want %q", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 10 * time.Second, Factor: 2, Jitter: 0.5}
	cases := map[string]struct {
		failures int
		random   float64
		want     time.Duration
	}{
		"first failure":                 {failures: 1, want: time.Second},
		"doubles":                       {failures: 3, want: 4 * time.Second},
		"capped at max":                 {failures: 5, want: 10 * time.Second},
		"stays capped without overflow": {failures: 10000, want: 10 * time.Second},
		"jitter stretches":              {failures: 2, random: 0.5, want: 2500 * time.Millisecond},
		"jitter stretches beyond max":   {failures: 9, random: 0.999, want: 14995 * time.Millisecond},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := b.delay(tc.failures, tc.random); got != tc.want {
				t.Errorf("delay(%d, %v) = %v, want %v", tc.failures, tc.random, got, tc.want)
			}
		})
	}
}
