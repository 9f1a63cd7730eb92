package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// Snapshot is one build of the cluster model from the informers' caches.
type Snapshot struct {
	*cluster.Snapshot
	// Rev increases with every build, so consumers can tell a new model from the one they
	// already compiled for.
	Rev uint64
	// Built is when it was built.
	Built time.Time
	// Excluded lists the objects left out because the model could not use them (a
	// ClientIntents with an invalid target, ...), each with its error, sorted. Leaving one
	// bad object out beats refusing the whole cluster: one team's typo must not freeze
	// every namespace's rollout.
	Excluded []string
	// IntentsVersion is the k8s.otterize.com version the ClientIntents were read in, empty
	// when the API server serves none.
	IntentsVersion string
}

// ClientIntentsGroupKind is what the controller reads ClientIntents as.
var ClientIntentsGroupKind = schema.GroupKind{Group: intents.Group, Kind: "ClientIntents"}

// watchedTypes are the typed objects the model is built from.
func watchedTypes() []client.Object {
	return []client.Object{
		&corev1.Namespace{}, &corev1.Pod{}, &corev1.Service{},
		&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}, &appsv1.ReplicaSet{},
		&batchv1.Job{}, &batchv1.CronJob{},
		&networkingv1.Ingress{}, &networkingv1.NetworkPolicy{},
	}
}

// Snapshotter keeps the cluster model current: informer events mark it dirty, and a single
// goroutine rebuilds it with cluster.Build (after Debounce) and tells subscribers.
//
// ClientIntents are read as unstructured objects in the API server's preferred version of
// k8s.otterize.com. The CRD converts with strategy None, so every object is served in every
// version with its body as written, and cluster.Build reads each by its shape
// (service/calls or workload/targets), whatever apiVersion it carries: one informer sees
// every object, whichever version it was created in. When the group is not served (no
// Otterize operator and no shipped CRD), the model has no intents and the lookup is retried
// on each rebuild, so installing the CRD later is picked up without a restart.
type Snapshotter struct {
	cache    cache.Cache
	mapper   meta.RESTMapper
	clock    clock.WithTicker
	debounce time.Duration
	log      logr.Logger

	kick chan struct{}

	mu        sync.RWMutex
	cur       *Snapshot
	subs      []func(*Snapshot)
	intentGVK *schema.GroupVersionKind
	rev       uint64
}

// NewSnapshotter returns a Snapshotter reading from c.
func NewSnapshotter(c cache.Cache, mapper meta.RESTMapper, clk clock.WithTicker, debounce time.Duration, log logr.Logger) *Snapshotter {
	return &Snapshotter{cache: c, mapper: mapper, clock: clk, debounce: debounce, log: log, kick: make(chan struct{}, 1)}
}

// Watch registers the informers and their event handlers. Call it before the cache starts.
func (s *Snapshotter) Watch(ctx context.Context) error {
	for _, obj := range watchedTypes() {
		if err := s.watch(ctx, obj); err != nil {
			return err
		}
	}
	s.watchIntents(ctx)
	return nil
}

func (s *Snapshotter) watch(ctx context.Context, obj client.Object) error {
	inf, err := s.cache.GetInformer(ctx, obj)
	if err != nil {
		return fmt.Errorf("informer for %T: %w", obj, err)
	}
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.Changed() },
		UpdateFunc: func(any, any) { s.Changed() },
		DeleteFunc: func(any) { s.Changed() },
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return fmt.Errorf("event handler for %T: %w", obj, err)
	}
	return nil
}

// watchIntents finds the served ClientIntents version and watches it; it reports whether
// one is served.
func (s *Snapshotter) watchIntents(ctx context.Context) bool {
	s.mu.RLock()
	done := s.intentGVK != nil
	s.mu.RUnlock()
	if done {
		return true
	}
	m, err := s.mapper.RESTMapping(ClientIntentsGroupKind)
	if err != nil {
		if !meta.IsNoMatchError(err) {
			s.log.Error(err, "looking up the ClientIntents API")
		}
		return false
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(m.GroupVersionKind)
	if err := s.watch(ctx, u); err != nil {
		s.log.Error(err, "watching ClientIntents", "version", m.GroupVersionKind.Version)
		return false
	}
	gvk := m.GroupVersionKind
	s.mu.Lock()
	s.intentGVK = &gvk
	s.mu.Unlock()
	s.log.Info("watching ClientIntents", "version", gvk.Version)
	return true
}

// Changed marks the model stale. It never blocks.
func (s *Snapshotter) Changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Subscribe registers fn to be called, from the rebuild goroutine, with every new model.
func (s *Snapshotter) Subscribe(fn func(*Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Current returns the latest model, nil before the first build.
func (s *Snapshotter) Current() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// NeedLeaderElection: only the leader evaluates.
func (s *Snapshotter) NeedLeaderElection() bool { return true }

// Start rebuilds the model until ctx ends: at once after the caches sync, then after each
// burst of changes.
func (s *Snapshotter) Start(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	s.Changed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		}
		if s.debounce > 0 {
			t := s.clock.NewTimer(s.debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C():
			}
			// Changes that arrived while waiting are part of this rebuild.
			select {
			case <-s.kick:
			default:
			}
		}
		if err := s.rebuild(ctx); err != nil {
			s.log.Error(err, "rebuilding the cluster model; keeping the previous one")
		}
	}
}

// rebuild lists every watched object from the cache and builds the model.
func (s *Snapshotter) rebuild(ctx context.Context) error {
	o, intentsVersion, err := s.objects(ctx)
	if err != nil {
		return err
	}
	snap, excluded, err := buildLenient(o)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.cur != nil {
		// Every governed namespace's judge diffs the new snapshot against the old one:
		// the objects that did not change are then the same, compared by address.
		snap.ReuseUnchanged(s.cur.Snapshot)
	}
	s.rev++
	next := &Snapshot{Snapshot: snap, Rev: s.rev, Built: s.clock.Now(), Excluded: excluded, IntentsVersion: intentsVersion}
	s.cur = next
	subs := append([]func(*Snapshot){}, s.subs...)
	s.mu.Unlock()
	for _, fn := range subs {
		fn(next)
	}
	return nil
}

func (s *Snapshotter) objects(ctx context.Context) (*cluster.Objects, string, error) {
	o := &cluster.Objects{}
	var errs []error
	// Build only reads the objects, so the cache's own copies do: a rebuild of a large
	// cluster would otherwise copy every pod.
	list := func(l client.ObjectList) {
		if err := s.cache.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			errs = append(errs, fmt.Errorf("list %T: %w", l, err))
		}
	}
	var (
		nss  corev1.NamespaceList
		pods corev1.PodList
		svcs corev1.ServiceList
		deps appsv1.DeploymentList
		sts  appsv1.StatefulSetList
		dss  appsv1.DaemonSetList
		rss  appsv1.ReplicaSetList
		jobs batchv1.JobList
		cjs  batchv1.CronJobList
		ings networkingv1.IngressList
		nps  networkingv1.NetworkPolicyList
	)
	for _, l := range []client.ObjectList{&nss, &pods, &svcs, &deps, &sts, &dss, &rss, &jobs, &cjs, &ings, &nps} {
		list(l)
	}
	o.Namespaces = ptrs(nss.Items)
	o.Pods = ptrs(pods.Items)
	o.Services = ptrs(svcs.Items)
	o.Deployments = ptrs(deps.Items)
	o.StatefulSets = ptrs(sts.Items)
	o.DaemonSets = ptrs(dss.Items)
	o.ReplicaSets = ptrs(rss.Items)
	o.Jobs = ptrs(jobs.Items)
	o.CronJobs = ptrs(cjs.Items)
	o.Ingresses = ptrs(ings.Items)
	o.NetworkPolicies = ptrs(nps.Items)

	version := ""
	if s.watchIntents(ctx) {
		s.mu.RLock()
		gvk := *s.intentGVK
		s.mu.RUnlock()
		ul := &unstructured.UnstructuredList{}
		ul.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		list(ul)
		o.ClientIntents = ptrs(ul.Items)
		version = gvk.Version
	}
	return o, version, errors.Join(errs...)
}

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// buildLenient builds the model, leaving out the objects cluster.Build rejects. Build
// reports every rejected object at once, so one retry without them suffices; a second
// failure is returned.
func buildLenient(o *cluster.Objects) (*cluster.Snapshot, []string, error) {
	snap, err := cluster.Build(o)
	if err == nil {
		return snap, nil, nil
	}
	bad := map[string]bool{}
	why := map[string][]string{}
	for _, e := range flatten(err) {
		var oe *cluster.ObjectError
		if !errors.As(e, &oe) || oe.Object == "" {
			return nil, nil, fmt.Errorf("build the cluster model: %w", err)
		}
		bad[oe.Object] = true
		why[oe.Object] = append(why[oe.Object], oe.Err.Error())
	}
	excluded := make([]string, 0, len(why))
	for obj, msgs := range why {
		excluded = append(excluded, obj+": "+strings.Join(msgs, "; "))
	}
	o = without(o, bad)
	snap, err = cluster.Build(o)
	if err != nil {
		return nil, nil, fmt.Errorf("build the cluster model without %d rejected objects: %w", len(bad), err)
	}
	sort.Strings(excluded)
	return snap, excluded, nil
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// without returns a copy of o less the objects named in bad ("Kind namespace/name", as
// cluster.ObjectRef prints them).
func without(o *cluster.Objects, bad map[string]bool) *cluster.Objects {
	keep := func(kind string, ns, name string) bool {
		ref := cluster.ObjectRef{Kind: kind, Namespace: ns, Name: name}
		if kind != "Namespace" && ns == "" {
			ref.Namespace = intents.DefaultNamespace
		}
		return !bad[ref.String()]
	}
	out := *o
	out.Namespaces = filter(o.Namespaces, func(x *corev1.Namespace) bool { return keep("Namespace", "", x.Name) })
	out.Pods = filter(o.Pods, func(x *corev1.Pod) bool { return keep("Pod", x.Namespace, x.Name) })
	out.Services = filter(o.Services, func(x *corev1.Service) bool { return keep("Service", x.Namespace, x.Name) })
	out.Deployments = filter(o.Deployments, func(x *appsv1.Deployment) bool { return keep("Deployment", x.Namespace, x.Name) })
	out.StatefulSets = filter(o.StatefulSets, func(x *appsv1.StatefulSet) bool { return keep("StatefulSet", x.Namespace, x.Name) })
	out.DaemonSets = filter(o.DaemonSets, func(x *appsv1.DaemonSet) bool { return keep("DaemonSet", x.Namespace, x.Name) })
	out.ReplicaSets = filter(o.ReplicaSets, func(x *appsv1.ReplicaSet) bool { return keep("ReplicaSet", x.Namespace, x.Name) })
	out.Jobs = filter(o.Jobs, func(x *batchv1.Job) bool { return keep("Job", x.Namespace, x.Name) })
	out.CronJobs = filter(o.CronJobs, func(x *batchv1.CronJob) bool { return keep("CronJob", x.Namespace, x.Name) })
	out.Ingresses = filter(o.Ingresses, func(x *networkingv1.Ingress) bool { return keep("Ingress", x.Namespace, x.Name) })
	out.NetworkPolicies = filter(o.NetworkPolicies, func(x *networkingv1.NetworkPolicy) bool { return keep("NetworkPolicy", x.Namespace, x.Name) })
	out.ClientIntents = filter(o.ClientIntents, func(x *unstructured.Unstructured) bool {
		return keep("ClientIntents", x.GetNamespace(), x.GetName())
	})
	return &out
}

func filter[T any](in []T, keep func(T) bool) []T {
	out := make([]T, 0, len(in))
	for _, x := range in {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// excludedIn returns the excluded objects that concern namespace ns.
func (s *Snapshot) excludedIn(ns string) []string {
	var out []string
	for _, e := range s.Excluded {
		if strings.Contains(e, " "+ns+"/") {
			out = append(out, e)
		}
	}
	return out
}
