package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// Soaks holds one soak store per governed namespace and persists each into a Secret of its
// own in the controller's namespace, so that a restart or a new leader resumes the soak.
// One store per namespace keeps every Secret small (a namespace's edges, not the
// cluster's) and lets a namespace be forgotten by deleting one object.
//
// Only the leader holds stores: Soaks is filled by the reconciler, which runs on the
// leader alone, and never writes a Secret it did not load or create.
type Soaks struct {
	cfg    Config
	clock  clock.WithTicker
	client client.Client
	reader client.Reader // uncached: Secrets are read once per namespace, not watched
	log    logr.Logger

	mu      sync.Mutex
	entries map[string]*soakEntry
	// version increases whenever the governed set or a namespace's settings change, so
	// ingestion knows to rebuild its judges; it is read without the lock on every flow.
	version atomic.Uint64
	changed func()
}

type soakEntry struct {
	store *soak.Store
	gov   governed
	owner metav1.OwnerReference
	// enforcing is set while the namespace's policies are applied.
	enforcing bool
}

// Resumed says how a namespace's store was obtained the first time this process needed
// it.
type Resumed struct {
	// Kind is "new" (no Secret: tracking starts now), "resumed" (loaded; the downtime is
	// a shadowgate-down gap) or "lost" (the Secret could not be read: set aside, and
	// tracking starts over).
	Kind string
	// Down is the downtime recorded as a gap when Kind is "resumed".
	Down time.Duration
	// Err is why the snapshot was lost, and AsideName where its bytes were kept.
	Err       error
	AsideName string
}

// NewSoaks returns an empty set. changed is called (without locks held) whenever the
// governed set or settings change.
func NewSoaks(cfg Config, clk clock.WithTicker, c client.Client, reader client.Reader, log logr.Logger, changed func()) *Soaks {
	if changed == nil {
		changed = func() {}
	}
	return &Soaks{cfg: cfg, clock: clk, client: c, reader: reader, log: log, entries: map[string]*soakEntry{}, changed: changed}
}

func (s *Soaks) storeOptions() soak.Options {
	o := soak.DefaultOptions()
	o.Window = s.cfg.SoakHistory
	o.MaxEdgesPerNamespace = s.cfg.MaxEdgesPerNamespace
	o.MaxEdges = s.cfg.MaxEdgesPerNamespace
	return o
}

// Ensure returns namespace's store, loading it from its Secret (or creating it) the first
// time. resumed is non-nil only on that first time.
func (s *Soaks) Ensure(ctx context.Context, nsr *v1alpha1.NamespaceRollout) (*soak.Store, *Resumed, error) {
	ns := nsr.Spec.Namespace
	gov := governed{namespace: ns, egress: nsr.Spec.Egress}
	s.mu.Lock()
	if e, ok := s.entries[ns]; ok {
		changed := e.gov != gov
		e.gov = gov
		if changed {
			s.version.Add(1)
		}
		s.mu.Unlock()
		if changed {
			s.changed()
		}
		return e.store, nil, nil
	}
	s.mu.Unlock()

	store, resumed, err := s.load(ctx, nsr)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	if e, ok := s.entries[ns]; ok {
		// Another reconcile got there first; keep its store.
		s.mu.Unlock()
		return e.store, nil, nil
	}
	s.entries[ns] = &soakEntry{store: store, gov: gov, owner: ownerRef(nsr)}
	s.version.Add(1)
	s.mu.Unlock()
	s.changed()
	if resumed.Kind != "resumed" {
		// Persist the tracking start at once: a crash before the first periodic save must
		// not lose it.
		if err := s.Save(ctx, ns); err != nil {
			s.log.Error(err, "saving a new soak store", "namespace", ns)
		}
	}
	return store, resumed, nil
}

func (s *Soaks) load(ctx context.Context, nsr *v1alpha1.NamespaceRollout) (*soak.Store, *Resumed, error) {
	ns := nsr.Spec.Namespace
	opts := s.storeOptions()
	now := s.clock.Now()
	var sec corev1.Secret
	err := s.reader.Get(ctx, types.NamespacedName{Namespace: s.cfg.Namespace, Name: SoakSecretName(ns)}, &sec)
	switch {
	case apierrors.IsNotFound(err):
		st, err := soak.New(opts, s.clock)
		if err != nil {
			return nil, nil, err
		}
		st.Track(ns, now)
		return st, &Resumed{Kind: "new"}, nil
	case err != nil:
		return nil, nil, fmt.Errorf("read soak Secret %s/%s: %w", s.cfg.Namespace, SoakSecretName(ns), err)
	}
	st, lerr := soak.Load(bytes.NewReader(sec.Data[SoakSecretKey]), opts, s.clock)
	if lerr == nil {
		st.Track(ns, now) // no-op when the snapshot tracked it, as it should have
		return st, &Resumed{Kind: "resumed", Down: downtime(st, ns, now)}, nil
	}
	// The snapshot is unusable: keep its bytes aside for a post-mortem, and start over
	// from now so the gate cannot pass on what it claimed. The stretch it covered is a
	// snapshot-lost gap from the rollout's recorded soak start.
	aside := fmt.Sprintf("%s-corrupt-%d", SoakSecretName(ns), now.Unix())
	if len(aside) > 253 {
		aside = aside[:253]
	}
	cp := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: aside, Namespace: s.cfg.Namespace, Labels: sec.Labels, OwnerReferences: []metav1.OwnerReference{ownerRef(nsr)}},
		Type:       sec.Type,
		Data:       sec.Data,
	}
	cp.OwnerReferences[0].Controller = nil
	if err := s.client.Create(ctx, cp); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("soak Secret %s/%s is unreadable (%v), and keeping it aside as %s failed: %w",
			s.cfg.Namespace, sec.Name, lerr, aside, err)
	}
	st, err = soak.New(opts, s.clock)
	if err != nil {
		return nil, nil, err
	}
	st.Track(ns, now)
	if start := nsr.Status.SoakStart; start != nil && start.Time.Before(now) {
		if err := st.RecordGap(soak.Namespaces(ns), soak.Gap{Start: start.Time, End: now, Reason: soak.GapSnapshotLost,
			Source: "shadowgate", Message: lerr.Error()}); err != nil {
			s.log.Error(err, "recording the lost snapshot as a gap", "namespace", ns)
		}
	}
	return st, &Resumed{Kind: "lost", Err: lerr, AsideName: aside}, nil
}

// downtime is the shadowgate-down gap that Load just recorded for ns, if any.
func downtime(st *soak.Store, ns string, now time.Time) time.Duration {
	sum, ok := st.Summary(ns, now)
	if !ok {
		return 0
	}
	var d time.Duration
	for _, g := range sum.Gaps {
		for _, c := range g.Causes {
			if c.Reason == soak.GapShadowgateDown && !c.End.Before(now) {
				d = max(d, c.End.Sub(c.Start))
			}
		}
	}
	return d
}

// Get returns namespace's store, nil when this process holds none.
func (s *Soaks) Get(namespace string) *soak.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[namespace]; ok {
		return e.store
	}
	return nil
}

// SetEnforcing records whether namespace's policies are applied.
func (s *Soaks) SetEnforcing(namespace string, on bool) {
	s.mu.Lock()
	e, ok := s.entries[namespace]
	changed := ok && e.enforcing != on
	if changed {
		e.enforcing = on
		s.version.Add(1)
	}
	s.mu.Unlock()
	if changed {
		s.changed()
	}
}

// Forget drops namespace's store from memory; its Secret goes with its owner.
func (s *Soaks) Forget(namespace string) {
	s.mu.Lock()
	_, ok := s.entries[namespace]
	delete(s.entries, namespace)
	if ok {
		s.version.Add(1)
	}
	s.mu.Unlock()
	if ok {
		s.changed()
	}
}

// Version changes whenever the governed set or a namespace's settings change.
func (s *Soaks) Version() uint64 { return s.version.Load() }

// governedView is a consistent copy of the governed set for ingestion.
type governedView struct {
	version uint64
	byNS    map[string]governedEntry
}

type governedEntry struct {
	gov       governed
	store     *soak.Store
	enforcing bool
}

func (s *Soaks) view() governedView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := governedView{version: s.version.Load(), byNS: make(map[string]governedEntry, len(s.entries))}
	for ns, e := range s.entries {
		v.byNS[ns] = governedEntry{gov: e.gov, store: e.store, enforcing: e.enforcing}
	}
	return v
}

// Save writes namespace's store to its Secret with server-side apply.
func (s *Soaks) Save(ctx context.Context, namespace string) error {
	s.mu.Lock()
	e, ok := s.entries[namespace]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	e.store.Expire(s.clock.Now())
	var buf bytes.Buffer
	if err := e.store.Save(&buf); err != nil {
		return fmt.Errorf("encode the soak store of %s: %w", namespace, err)
	}
	if buf.Len() > MaxSoakSnapshotBytes {
		return fmt.Errorf("soak snapshot of %s is %d bytes, over the %d a Secret can hold; lower --max-edges-per-namespace or the soak window",
			namespace, buf.Len(), MaxSoakSnapshotBytes)
	}
	owner := metav1ac.OwnerReference().
		WithAPIVersion(e.owner.APIVersion).WithKind(e.owner.Kind).WithName(e.owner.Name).WithUID(e.owner.UID)
	ac := corev1ac.Secret(SoakSecretName(namespace), s.cfg.Namespace).
		WithLabels(map[string]string{compile.ManagedByLabel: compile.ManagedByValue, SoakNamespaceLabel: namespace}).
		WithOwnerReferences(owner).
		WithType(SoakSecretType).
		WithData(map[string][]byte{SoakSecretKey: buf.Bytes()})
	if err := s.client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("write soak Secret %s/%s: %w", s.cfg.Namespace, SoakSecretName(namespace), err)
	}
	return nil
}

// SaveAll saves every store, reporting every failure.
func (s *Soaks) SaveAll(ctx context.Context) error {
	s.mu.Lock()
	names := make([]string, 0, len(s.entries))
	for ns := range s.entries {
		names = append(names, ns)
	}
	s.mu.Unlock()
	sort.Strings(names)
	var errs []error
	for _, ns := range names {
		if err := s.Save(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NeedLeaderElection: only the leader holds stores.
func (s *Soaks) NeedLeaderElection() bool { return true }

// Start saves every SaveInterval until ctx ends, then once more, so a clean shutdown
// (a rolling update, a lost lease) leaves no gap beyond the time until the next leader
// loads.
func (s *Soaks) Start(ctx context.Context) error {
	t := s.clock.NewTicker(s.cfg.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.SaveAll(final); err != nil {
				s.log.Error(err, "saving the soak stores on shutdown")
			}
			return nil
		case <-t.C():
			if err := s.SaveAll(ctx); err != nil && ctx.Err() == nil {
				s.log.Error(err, "saving the soak stores")
			}
		}
	}
}

func ownerRef(nsr *v1alpha1.NamespaceRollout) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "NamespaceRollout",
		Name:               nsr.Name,
		UID:                nsr.UID,
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}
}
