package rollout

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/shadowgate/shadowgate/evaluator/compile"
)

// FieldManager is the server-side apply field manager of every object the controller
// writes; `kubectl get -o yaml --show-managed-fields` shows it on the managed policies.
const FieldManager = "shadowgate"

// Labels and names of the objects the controller creates.
const (
	// SoakNamespaceLabel on a soak Secret names the governed namespace it belongs to.
	SoakNamespaceLabel = "shadowgate.dev/soak-namespace"
	// SoakSecretType is the type of the soak Secrets.
	SoakSecretType = "shadowgate.dev/soak-snapshot"
	// SoakSecretKey is the data key holding the snapshot.
	SoakSecretKey    = "snapshot"
	soakSecretPrefix = "shadowgate-soak-"
	// MaxSoakSnapshotBytes keeps a snapshot and the Secret around it under the API
	// server's 1 MiB object limit (etcd's request limit is 1.5 MiB; the object limit is
	// what bites first).
	MaxSoakSnapshotBytes = 1000 << 10
)

// SoakSecretName is the name of the Secret holding namespace's soak snapshot.
func SoakSecretName(namespace string) string { return soakSecretPrefix + namespace }

// Config is the controller's configuration. Every field has a flag of the same name in
// `shadowgate controller`, a SHADOWGATE_* variable and a configuration-file key.
type Config struct {
	// Namespace the controller runs in: its leader-election Lease and the soak Secrets
	// live there.
	Namespace string `json:"namespace"`
	// LeaderElect makes replicas elect one active controller.
	LeaderElect bool `json:"leaderElect"`
	// LeaderElectionID names the Lease.
	LeaderElectionID string `json:"leaderElectionID"`
	// MetricsBindAddress serves /metrics; "0" disables it.
	MetricsBindAddress string `json:"metricsBindAddress"`
	// HealthProbeBindAddress serves /healthz and /readyz; "0" disables it.
	HealthProbeBindAddress string `json:"healthProbeBindAddress"`

	// Debounce delays a snapshot rebuild after a cluster change so that a burst of
	// changes (a rollout replacing pods) costs one rebuild. 0 rebuilds at once.
	Debounce time.Duration `json:"debounce"`
	// Resync is how often each rollout is re-examined without any change: the gate's
	// answer moves with time alone.
	Resync time.Duration `json:"resync"`
	// SaveInterval is how often the soak stores are written to their Secrets; a crash
	// loses at most this much, and the loss shows as a gap.
	SaveInterval time.Duration `json:"saveInterval"`
	// SoakHistory is how much history the soak stores keep: the longest soak window a
	// rollout may ask for. A whole number of hours.
	SoakHistory time.Duration `json:"soakHistory"`
	// MaxEdgesPerNamespace caps the distinct edges kept per namespace; observations
	// beyond it count as overflow, which fails the gate. The default keeps a namespace's
	// snapshot inside its Secret even when every edge has peers of its own (about 66
	// bytes per edge after compression; TestSoakSnapshotAtTheEdgeCapFitsInASecret).
	MaxEdgesPerNamespace int `json:"maxEdgesPerNamespace"`

	// External and AllowFromNamespaces are compiler settings shared by every rollout, as
	// `shadowgate compile --external / --allow-from-namespace`.
	External            compile.ExternalMode `json:"external"`
	AllowFromNamespaces []string             `json:"allowFromNamespaces,omitempty"`
	// ExternalPrefixV4 and ExternalPrefixV6 bucket external peers in the soak store.
	ExternalPrefixV4 int `json:"externalPrefixV4"`
	ExternalPrefixV6 int `json:"externalPrefixV6"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Namespace:              "shadowgate-system",
		LeaderElectionID:       "shadowgate-controller",
		MetricsBindAddress:     ":8080",
		HealthProbeBindAddress: ":8081",
		Debounce:               2 * time.Second,
		Resync:                 30 * time.Second,
		SaveInterval:           time.Minute,
		SoakHistory:            7 * 24 * time.Hour,
		MaxEdgesPerNamespace:   12_000,
		External:               compile.ExternalOnlyIfBlocked,
		ExternalPrefixV4:       24,
		ExternalPrefixV6:       64,
	}
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, msg := range validation.IsDNS1123Label(c.Namespace) {
		bad("namespace", "%q: %s", c.Namespace, msg)
	}
	if c.LeaderElect {
		for _, msg := range validation.IsDNS1123Subdomain(c.LeaderElectionID) {
			bad("leader-election-id", "%q: %s", c.LeaderElectionID, msg)
		}
	}
	if c.Debounce < 0 {
		bad("debounce", "%s must not be negative", c.Debounce)
	}
	if c.Resync <= 0 {
		bad("resync", "%s must be positive", c.Resync)
	}
	if c.SaveInterval <= 0 {
		bad("save-interval", "%s must be positive", c.SaveInterval)
	}
	if c.SoakHistory < time.Hour || c.SoakHistory%time.Hour != 0 {
		bad("soak-history", "%s must be a whole number of hours, at least 1h", c.SoakHistory)
	}
	if c.MaxEdgesPerNamespace <= 0 {
		bad("max-edges-per-namespace", "%d must be positive", c.MaxEdgesPerNamespace)
	}
	if err := new(compile.ExternalMode).Set(string(c.External)); err != nil {
		bad("external", "%v", err)
	}
	for _, ns := range c.AllowFromNamespaces {
		for _, msg := range validation.IsDNS1123Label(ns) {
			bad("allow-from-namespace", "%q: %s", ns, msg)
		}
	}
	if c.ExternalPrefixV4 < 0 || c.ExternalPrefixV4 > 32 {
		bad("external-prefix-v4", "%d must be 0..32", c.ExternalPrefixV4)
	}
	if c.ExternalPrefixV6 < 0 || c.ExternalPrefixV6 > 128 {
		bad("external-prefix-v6", "%d must be 0..128", c.ExternalPrefixV6)
	}
	return errors.Join(errs...)
}
