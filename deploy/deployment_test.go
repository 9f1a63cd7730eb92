package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/cmd/shadowgate/cli"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/rollout"
)

func renderDeployment(t *testing.T, r release) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	into(t, find(t, mustRender(t, r), "Deployment", ""), &d)
	return d
}

// Whatever the values, the controller runs as the restricted Pod Security Standard asks,
// with bounded resources and probes on its health endpoint.
func TestDeploymentIsHardened(t *testing.T) {
	cases := map[string]release{"defaults": defaultRelease()}
	for name, f := range valuesFiles(t, ".good.yaml") {
		cases[name] = release{name: releaseName, namespace: releaseNamespace, valuesFiles: []string{f}}
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			d := renderDeployment(t, r)
			pod := d.Spec.Template.Spec
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod seccompProfile is not RuntimeDefault")
			}
			if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
				t.Error("the controller needs its ServiceAccount token")
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("container has no securityContext")
			}
			want := corev1.SecurityContext{
				AllowPrivilegeEscalation: ptrTo(false),
				ReadOnlyRootFilesystem:   ptrTo(true),
				Privileged:               ptrTo(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}
			if diff := cmp.Diff(want, *sc); diff != "" {
				t.Errorf("container securityContext (-want +got):\n%s", diff)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[res]; !ok {
					t.Errorf("no %s request", res)
				}
				if _, ok := c.Resources.Limits[res]; !ok {
					t.Errorf("no %s limit", res)
				}
			}
			health := containerPort(t, c, "health")
			for probe, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil {
					t.Errorf("no HTTP probe for %s", probe)
					continue
				}
				if p.HTTPGet.Path != probe || p.HTTPGet.Port != intstr.FromString("health") {
					t.Errorf("probe %s:%s, want %s:health", p.HTTPGet.Path, p.HTTPGet.Port.String(), probe)
				}
			}
			args := parseControllerArgs(t, c.Args)
			if got := args.String("health-probe-bind-address"); got != fmt.Sprintf(":%d", health) {
				t.Errorf("--health-probe-bind-address=%s; the probes use port %d", got, health)
			}
			if got := args.String("metrics-bind-address"); got != fmt.Sprintf(":%d", containerPort(t, c, "metrics")) {
				t.Errorf("--metrics-bind-address=%s; the metrics port is %d", got, containerPort(t, c, "metrics"))
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container has no port %q", name)
	return 0
}

// controllerArgs are a Deployment's arguments as the real `shadowgate controller` parsed
// them.
type controllerArgs struct {
	t  *testing.T
	fs *pflag.FlagSet
}

// parseControllerArgs parses args with the flags of the real `shadowgate controller`
// command: a flag the chart passes and the binary does not know fails here, not in a
// crash-looping pod.
func parseControllerArgs(t *testing.T, args []string) controllerArgs {
	t.Helper()
	if len(args) == 0 || args[0] != "controller" {
		t.Fatalf("args %q do not start with the controller subcommand", args)
	}
	cmd, rest, err := cli.New(viper.New()).Find(args[:1])
	if err != nil || len(rest) != 0 || cmd.Name() != "controller" {
		t.Fatalf("no controller subcommand: %v", err)
	}
	if err := cmd.ParseFlags(args[1:]); err != nil {
		t.Fatalf("shadowgate controller %s: %v", strings.Join(args[1:], " "), err)
	}
	if extra := cmd.Flags().Args(); len(extra) != 0 {
		t.Fatalf("shadowgate controller takes no arguments; the chart passes %q", extra)
	}
	return controllerArgs{t: t, fs: cmd.Flags()}
}

func (a controllerArgs) String(name string) string {
	a.t.Helper()
	v, err := a.fs.GetString(name)
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

func (a controllerArgs) Bool(name string) bool {
	a.t.Helper()
	v, err := a.fs.GetBool(name)
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

func (a controllerArgs) Int(name string) int {
	a.t.Helper()
	v, err := a.fs.GetInt(name)
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

func (a controllerArgs) Duration(name string) time.Duration {
	a.t.Helper()
	v, err := a.fs.GetDuration(name)
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

func (a controllerArgs) Strings(name string) []string {
	a.t.Helper()
	v, err := a.fs.GetStringSlice(name)
	if err != nil {
		a.t.Fatal(err)
	}
	if len(v) == 0 {
		return nil // as the CLI reads an unset list
	}
	return v
}

// Config is the rollout configuration the flags make, as `shadowgate controller` builds it.
func (a controllerArgs) Config() rollout.Config {
	return rollout.Config{
		Namespace:              a.String("namespace"),
		LeaderElect:            a.Bool("leader-elect"),
		LeaderElectionID:       a.String("leader-election-id"),
		MetricsBindAddress:     a.String("metrics-bind-address"),
		HealthProbeBindAddress: a.String("health-probe-bind-address"),
		Debounce:               a.Duration("debounce"),
		Resync:                 a.Duration("resync"),
		SaveInterval:           a.Duration("save-interval"),
		SoakHistory:            a.Duration("soak-history"),
		MaxEdgesPerNamespace:   a.Int("max-edges-per-namespace"),
		External:               compile.ExternalMode(a.String("external")),
		AllowFromNamespaces:    a.Strings("allow-from-namespace"),
		ExternalPrefixV4:       a.Int("external-prefix-v4"),
		ExternalPrefixV6:       a.Int("external-prefix-v6"),
	}
}

// hubbleFlags are the flow-source flags, compared as a whole.
type hubbleFlags struct {
	Hubble, CA, Cert, Key, ServerName, Mapper string
	TLS                                       bool
	Mounts                                    []corev1.VolumeMount
	SecretItems                               []corev1.KeyToPath
	SecretName                                string
}

func TestDeploymentFlags(t *testing.T) {
	const tlsDir = "/etc/shadowgate/hubble-tls"
	tlsMount := []corev1.VolumeMount{{Name: "hubble-tls", MountPath: tlsDir, ReadOnly: true}}
	cases := map[string]struct {
		values     []string
		set        []string
		wantFlags  hubbleFlags
		wantConfig func(*rollout.Config)
	}{
		"defaults": {
			wantFlags: hubbleFlags{Hubble: "hubble-relay.kube-system.svc.cluster.local:80"},
		},
		"mutual TLS and the network-mapper": {
			values: []string{"testdata/values/everything.good.yaml"},
			wantFlags: hubbleFlags{
				Hubble: "hubble-relay.kube-system.svc.cluster.local:443", TLS: true,
				CA: tlsDir + "/ca.crt", Cert: tlsDir + "/tls.crt", Key: tlsDir + "/tls.key",
				ServerName: "*.hubble-relay.cilium.io",
				Mapper:     "http://otterize-network-mapper.otterize-system.svc:9090/query",
				Mounts:     tlsMount, SecretName: "hubble-relay-client-certs",
				SecretItems: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}, {Key: "tls.crt", Path: "tls.crt"}, {Key: "tls.key", Path: "tls.key"}},
			},
			wantConfig: func(c *rollout.Config) {
				c.LeaderElectionID = "shadowgate-primary" // extraArgs override the chart's
				c.MetricsBindAddress, c.HealthProbeBindAddress = ":9090", ":9091"
				c.Debounce, c.Resync, c.SaveInterval = 500*time.Millisecond, time.Minute, 30*time.Second
				c.SoakHistory = 336 * time.Hour
				c.MaxEdgesPerNamespace = 5000
				c.External = compile.ExternalAlways
				c.AllowFromNamespaces = []string{"monitoring", "ingress-nginx"}
				c.ExternalPrefixV4, c.ExternalPrefixV6 = 16, 48
			},
		},
		"server-only TLS mounts and passes only the CA": {
			values: []string{"testdata/values/tls-server-only.good.yaml"},
			wantFlags: hubbleFlags{
				Hubble: "hubble-relay.kube-system.svc:443", TLS: true, CA: tlsDir + "/ca.crt",
				Mounts: tlsMount, SecretName: "hubble-ca",
				SecretItems: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			},
		},
		"no flow source": {
			values:    []string{"testdata/values/no-sources.good.yaml"},
			wantFlags: hubbleFlags{},
		},
		"leader election off": {
			set:        []string{"leaderElection.enabled=false"},
			wantFlags:  hubbleFlags{Hubble: "hubble-relay.kube-system.svc.cluster.local:80"},
			wantConfig: func(c *rollout.Config) { c.LeaderElect = false },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := renderDeployment(t, release{name: releaseName, namespace: releaseNamespace, valuesFiles: tc.values, set: tc.set})
			c := d.Spec.Template.Spec.Containers[0]
			args := parseControllerArgs(t, c.Args)

			got := hubbleFlags{
				Hubble: args.String("hubble"), TLS: args.Bool("hubble-tls"),
				CA: args.String("hubble-tls-ca-file"), Cert: args.String("hubble-tls-cert-file"),
				Key: args.String("hubble-tls-key-file"), ServerName: args.String("hubble-tls-server-name"),
				Mapper: args.String("mapper"),
			}
			for _, m := range c.VolumeMounts {
				if m.Name != "tmp" {
					got.Mounts = append(got.Mounts, m)
				}
			}
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Secret != nil {
					got.SecretName, got.SecretItems = v.Secret.SecretName, v.Secret.Items
				}
			}
			if diff := cmp.Diff(tc.wantFlags, got); diff != "" {
				t.Errorf("flow-source flags and mounts (-want +got):\n%s", diff)
			}

			want := rollout.Default()
			want.Namespace = releaseNamespace
			want.LeaderElect = true
			if tc.wantConfig != nil {
				tc.wantConfig(&want)
			}
			cfg := args.Config()
			if diff := cmp.Diff(want, cfg); diff != "" {
				t.Errorf("controller configuration (-want +got):\n%s", diff)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("the controller would refuse the chart's flags: %v", err)
			}
			if !slices.Contains(c.Args, "--namespace="+releaseNamespace) {
				t.Errorf("args %q do not pin the release namespace", c.Args)
			}
		})
	}
}
