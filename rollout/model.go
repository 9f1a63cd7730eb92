package rollout

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/simulate"
)

// governed is how one rollout wants its namespace judged.
type governed struct {
	namespace string
	egress    bool
}

// model is what the controller derives from one Snapshot: the policies each governed
// namespace would get and the evaluators that judge against them. Everything is computed
// on first use and kept for the model's life, so the reconciler and the flow ingestion
// share one compilation per namespace and snapshot. Safe for concurrent use; the
// simulators it hands out are not, and belong to the ingestion goroutine alone.
type model struct {
	snap *Snapshot
	cfg  Config

	mu       sync.Mutex
	compiled map[governed]compiledSet
	bases    map[string]*cluster.Snapshot
}

type compiledSet struct {
	res *compile.Result
	err error
}

func newModel(snap *Snapshot, cfg Config) *model {
	return &model{snap: snap, cfg: cfg, compiled: map[governed]compiledSet{}, bases: map[string]*cluster.Snapshot{}}
}

// CompileOptions are the compiler settings the controller uses for namespace: the same
// as `shadowgate compile --enforce NAMESPACE [--egress] --external ... --allow-from-namespace ...`.
func (c Config) CompileOptions(namespace string, egress bool) compile.Options {
	o := compile.Options{Namespaces: []string{namespace}, Egress: egress, External: c.External}
	for _, from := range c.AllowFromNamespaces {
		o.AlwaysAllow = append(o.AlwaysAllow, compile.AlwaysAllow{
			Name:              "from-" + from,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: from}},
		})
	}
	return o
}

func (c Config) compileOptions(g governed) compile.Options {
	return c.CompileOptions(g.namespace, g.egress)
}

// policies returns the compiled policies of g's namespace, as `shadowgate compile` would
// write them for the same snapshot.
func (m *model) policies(g governed) (*compile.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policiesLocked(g)
}

func (m *model) policiesLocked(g governed) (*compile.Result, error) {
	if c, ok := m.compiled[g]; ok {
		return c.res, c.err
	}
	res, err := compile.Compile(m.snap.Snapshot, m.cfg.compileOptions(g))
	m.compiled[g] = compiledSet{res: res, err: err}
	return res, err
}

// base returns the snapshot without shadowgate's own policies in namespace: the state
// the namespace's enforcement is judged against. Judging against it whether or not the
// policies are applied right now means a drop they cause while enforcing shows as an
// uncovered edge, and the soak does not pass again until it is fixed.
func (m *model) base(namespace string) *cluster.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.baseLocked(namespace)
}

func (m *model) baseLocked(namespace string) *cluster.Snapshot {
	if b, ok := m.bases[namespace]; ok {
		return b
	}
	s := *m.snap.Snapshot
	s.NetworkPolicies = filter(s.NetworkPolicies, func(p *networkingv1.NetworkPolicy) bool {
		return p.Namespace != namespace || !isManaged(p)
	})
	m.bases[namespace] = &s
	return &s
}

// simulator returns a fresh Simulator judging flows as if g's namespace were enforced.
func (m *model) simulator(g governed) (*simulate.Simulator, error) {
	return simulate.New(m.base(g.namespace), m.simulateOptions(g))
}

// simulateOptions are the options of g's Simulator.
func (m *model) simulateOptions(g governed) simulate.Options {
	o := simulate.DefaultOptions()
	o.Compile = m.cfg.compileOptions(g)
	o.ExternalPrefixV4, o.ExternalPrefixV6 = m.cfg.ExternalPrefixV4, m.cfg.ExternalPrefixV6
	return o
}

// unmanagedOptions are the options of the Simulator that judges a drop under every
// policy but shadowgate's own in a namespace: a drop it would make anyway is not that
// namespace's enforcement's doing.
func unmanagedOptions() simulate.Options {
	return simulate.Options{ExternalPrefixV4: 32, ExternalPrefixV6: 128}
}

// isManaged reports whether a policy carries shadowgate's managed-by label.
func isManaged(p *networkingv1.NetworkPolicy) bool {
	return p.Labels[compile.ManagedByLabel] == compile.ManagedByValue
}
