package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/shadowgate/shadowgate/alerts"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
	"github.com/shadowgate/shadowgate/simulate"
)

// The controller's RBAC, generated into deploy/rbac/role.yaml by `make generate`. Reads of
// everything the cluster model needs, writes of NetworkPolicies (only ever its own: the
// code checks the managed-by label and owner reference before it writes or deletes), and,
// in its own namespace only, its Lease and soak Secrets.
//
// +kubebuilder:rbac:groups=shadowgate.dev,resources=namespacerollouts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=shadowgate.dev,resources=namespacerollouts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=shadowgate.dev,resources=namespacerollouts/finalizers,verbs=update
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces;pods;services,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets;replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch
// +kubebuilder:rbac:groups=k8s.otterize.com,resources=clientintents,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=selfsubjectreviews,verbs=create
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=shadowgate-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=shadowgate-system,resources=secrets,verbs=get;create;update;patch

// Options are what a controller is built from.
type Options struct {
	Config     Config
	RESTConfig *rest.Config
	// Clock drives everything time-based: gates, windows, drop periods, saves,
	// debouncing. Nil means the real clock.
	Clock clock.WithTicker
	// Sources are the flow sources (Hubble, the network-mapper, a file), each named as in
	// its health events; with none nothing is observed and no gate can pass.
	Sources []simulate.NamedSource
	Log     logr.Logger
	// Metrics receive the controller's shadowgate_ metrics (nil: none). The caller
	// registers them where they are served: controller-runtime's registry in the binary.
	Metrics *alerts.Metrics
	// SkipNameValidation lets a process run several controllers (tests).
	SkipNameValidation bool
}

// Controller is a built controller: its manager and the parts tests look into.
type Controller struct {
	Manager     ctrl.Manager
	Snapshotter *Snapshotter
	Ingest      *Ingest
	Soaks       *Soaks
	Reconciler  *Reconciler
	current     atomic.Pointer[model]
}

// Start runs the manager until ctx ends.
func (c *Controller) Start(ctx context.Context) error { return c.Manager.Start(ctx) }

// Scheme returns the scheme with the Kubernetes types and shadowgate.dev/v1alpha1.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// New builds the controller: a manager with leader election, health and metrics
// endpoints, the informers of the cluster model, the NamespaceRollout reconciler, flow
// ingestion and soak persistence.
func New(ctx context.Context, o Options) (*Controller, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("controller configuration: %w", err)
	}
	if o.RESTConfig == nil {
		return nil, errors.New("controller: no API server configuration")
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	log := o.Log
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	cfg := o.Config
	mgr, err := ctrl.NewManager(o.RESTConfig, ctrl.Options{
		Scheme:                        Scheme(),
		Logger:                        log,
		Metrics:                       metricsserver.Options{BindAddress: cfg.MetricsBindAddress},
		HealthProbeBindAddress:        cfg.HealthProbeBindAddress,
		LeaderElection:                cfg.LeaderElect,
		LeaderElectionID:              cfg.LeaderElectionID,
		LeaderElectionNamespace:       cfg.Namespace,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Controller:                    config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	c := &Controller{Manager: mgr}
	modelFn := func() *model { return c.current.Load() }

	identity, err := WhoAmI(ctx, o.RESTConfig)
	if err != nil {
		log.Error(err, "cannot tell who the controller is; automatic transitions are recorded as shadowgate-controller")
		identity = "shadowgate-controller"
	}

	enqueue := make(chan event.GenericEvent, 4096)
	send := func(name string) {
		ev := event.GenericEvent{Object: &v1alpha1.NamespaceRollout{ObjectMeta: metav1.ObjectMeta{Name: name}}}
		select {
		case enqueue <- ev:
		default:
			// The periodic resync catches up with a rollout whose notice was dropped.
			log.Info("rollout queue full; the rollout waits for its resync", "rollout", name)
		}
	}
	drops := newDropCounter()
	c.Soaks = NewSoaks(cfg, clk, mgr.GetClient(), mgr.GetAPIReader(), log.WithName("soak"), func() {
		if c.Ingest != nil {
			c.Ingest.Changed()
		}
	})
	c.Ingest = NewIngest(o.Sources, c.Soaks, drops, modelFn, clk, log.WithName("ingest"), send)
	c.Ingest.metrics = o.Metrics
	c.Snapshotter = NewSnapshotter(mgr.GetCache(), mgr.GetRESTMapper(), clk, cfg.Debounce, log.WithName("model"))
	c.Snapshotter.Subscribe(func(s *Snapshot) {
		c.current.Store(newModel(s, cfg))
		c.Ingest.Changed()
		var list v1alpha1.NamespaceRolloutList
		if err := mgr.GetClient().List(context.Background(), &list); err != nil {
			log.Error(err, "listing rollouts after a model rebuild")
			return
		}
		for i := range list.Items {
			send(list.Items[i].Name)
		}
	})
	if err := c.Snapshotter.Watch(ctx); err != nil {
		return nil, err
	}
	c.Reconciler = &Reconciler{
		Client:   mgr.GetClient(),
		Reader:   mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder("shadowgate"),
		Clock:    clk,
		Config:   cfg,
		Identity: identity,
		Log:      log.WithName("reconciler"),
		Metrics:  o.Metrics,
		soaks:    c.Soaks,
		drops:    drops,
		model:    modelFn,
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("namespacerollout").
		For(&v1alpha1.NamespaceRollout{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&networkingv1.NetworkPolicy{}).
		WatchesRawSource(source.Channel(enqueue, &handler.EnqueueRequestForObject{})).
		Complete(c.Reconciler)
	if err != nil {
		return nil, fmt.Errorf("NamespaceRollout controller: %w", err)
	}
	runnables := []manager.Runnable{c.Snapshotter, c.Ingest, c.Soaks}
	if o.Metrics != nil {
		runnables = append(runnables, leaderGauge{m: o.Metrics, elected: mgr.Elected()})
	}
	for _, r := range runnables {
		if err := mgr.Add(r); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("informers", func(*http.Request) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informers not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// WhoAmI returns the user the configuration authenticates as, as the API server sees it
// (a SelfSubjectReview), so records of who promoted or rolled back name the real
// identity rather than a kubeconfig entry's name.
func WhoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("SelfSubjectReview: %w", err)
	}
	if r.Status.UserInfo.Username == "" {
		return "", errors.New("SelfSubjectReview: the API server returned no user name")
	}
	return r.Status.UserInfo.Username, nil
}
