package mapper

import (
	"fmt"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultNamespace is where the Otterize Helm chart installs the network-mapper.
const DefaultNamespace = "otterize-system"

// DefaultURL is the network-mapper's GraphQL endpoint inside the cluster when it runs in
// namespace: the otterize-network-mapper Service, port 9090, path /query.
func DefaultURL(namespace string) string {
	return fmt.Sprintf("http://otterize-network-mapper.%s:9090/query", namespace)
}

// Config configures a Source.
type Config struct {
	// URL is the network-mapper's GraphQL endpoint.
	URL string `json:"url"`
	// Namespaces limits the edges reported to those whose client or server is in one of
	// them; empty reports every edge. The mapper's own namespaces argument filters on the
	// client's namespace only, which would hide the ingress from other namespaces that a
	// namespace's gate depends on, so the filter is applied here, not by the mapper.
	Namespaces []string `json:"namespaces,omitempty"`
	// PollInterval is the time between the starts of two successful polls.
	PollInterval time.Duration `json:"pollInterval"`
	// Timeout bounds one poll: connecting, sending the query and reading the answer.
	Timeout time.Duration `json:"timeout"`
	// Backoff spaces the polls after a failure.
	Backoff Backoff `json:"backoff"`
	// MaxResponseBytes bounds the answer read from the mapper, so that a misbehaving
	// endpoint cannot make us buffer without limit. The mapper returns every edge it
	// knows on each poll: a few hundred bytes per edge.
	MaxResponseBytes int64 `json:"maxResponseBytes"`
}

// Backoff is an exponential backoff with jitter: the n-th consecutive failure waits
// min(Max, Initial·Factor^(n-1)), stretched by a random fraction up to Jitter.
type Backoff struct {
	Initial time.Duration `json:"initial"`
	Max     time.Duration `json:"max"`
	Factor  float64       `json:"factor"`
	Jitter  float64       `json:"jitter"`
}

// Default is the configuration with every default: the mapper in DefaultNamespace, polled
// every 30s. The mapper aggregates what it sees between polls, so polling more often
// only costs more; a failed poll is retried after 1s, 2s, 4s, ... up to the poll
// interval.
func Default() Config {
	return Config{
		URL:              DefaultURL(DefaultNamespace),
		PollInterval:     30 * time.Second,
		Timeout:          10 * time.Second,
		Backoff:          Backoff{Initial: time.Second, Max: 30 * time.Second, Factor: 2, Jitter: 0.2},
		MaxResponseBytes: 64 << 20,
	}
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	var errs field.ErrorList
	p := field.NewPath("url")
	switch u, err := url.Parse(c.URL); {
	case c.URL == "":
		errs = append(errs, field.Required(p, "the network-mapper's GraphQL endpoint, e.g. "+DefaultURL(DefaultNamespace)))
	case err != nil:
		errs = append(errs, field.Invalid(p, c.URL, err.Error()))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, field.Invalid(p, c.URL, "scheme must be http or https"))
	case u.Host == "":
		errs = append(errs, field.Invalid(p, c.URL, "has no host"))
	}
	seen := map[string]bool{}
	for i, ns := range c.Namespaces {
		p := field.NewPath("namespaces").Index(i)
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(p, ns, msg))
		}
		if seen[ns] {
			errs = append(errs, field.Duplicate(p, ns))
		}
		seen[ns] = true
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, field.Invalid(field.NewPath(name), d.String(), "must be positive"))
		}
	}
	positive("pollInterval", c.PollInterval)
	positive("timeout", c.Timeout)
	positive("backoff.initial", c.Backoff.Initial)
	if c.Backoff.Max < c.Backoff.Initial {
		errs = append(errs, field.Invalid(field.NewPath("backoff", "max"), c.Backoff.Max.String(), "must be at least backoff.initial"))
	}
	if c.Backoff.Factor < 1 {
		errs = append(errs, field.Invalid(field.NewPath("backoff", "factor"), c.Backoff.Factor, "must be at least 1"))
	}
	if c.Backoff.Jitter < 0 || c.Backoff.Jitter > 1 {
		errs = append(errs, field.Invalid(field.NewPath("backoff", "jitter"), c.Backoff.Jitter, "must be between 0 and 1"))
	}
	if c.MaxResponseBytes <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("maxResponseBytes"), c.MaxResponseBytes, "must be positive"))
	}
	return errs.ToAggregate()
}

// delay is the wait after the n-th consecutive failure (n ≥ 1); r is a random number in
// [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	d := float64(b.Initial)
	for i := 1; i < n && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	d = min(d, float64(b.Max))
	return time.Duration(d * (1 + b.Jitter*r))
}
