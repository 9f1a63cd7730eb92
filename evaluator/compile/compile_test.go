package compile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// render prints policies as the table tests spell them: name, namespace and spec, and
// labels and annotations only when meta is set.
func render(t *testing.T, policies []*networkingv1.NetworkPolicy, meta bool) string {
	t.Helper()
	var b strings.Builder
	for _, p := range policies {
		c := p.DeepCopy()
		c.TypeMeta = metav1.TypeMeta{}
		if !meta {
			c.Labels, c.Annotations = nil, nil
		}
		y, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %s/%s: %v", p.Namespace, p.Name, err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

// parse reads the YAML stream a test case wants.
func parse(t *testing.T, stream string) []*networkingv1.NetworkPolicy {
	t.Helper()
	var out []*networkingv1.NetworkPolicy
	for i, doc := range strings.Split(stream, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		p := &networkingv1.NetworkPolicy{}
		if err := yaml.UnmarshalStrict([]byte(doc), p); err != nil {
			t.Fatalf("want document %d: %v", i+1, err)
		}
		out = append(out, p)
	}
	return out
}

const denyShop = `
metadata: {name: shadowgate-default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
`

// rule texts reused across cases.
const (
	fromFrontend = `{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}, podSelector: {matchLabels: {app: frontend}}}`
	fromCheckout = `{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}, podSelector: {matchLabels: {app: checkout}}}`
)

func TestCompile(t *testing.T) {
	shop := []edit{deploy("shop", "frontend"), deploy("shop", "checkout"), deploy("shop", "cart", tcp("http", 8080))}
	with := func(extra ...edit) *cluster.Snapshot { return snapshot(append(append([]edit{}, shop...), extra...)...) }
	enforceShop := Options{Namespaces: []string{"shop"}, External: ExternalOff}

	cases := map[string]struct {
		snap         *cluster.Snapshot
		opts         Options
		want         string
		wantWarnings []Warning
	}{
		"workload target: allow policy selects the server by its controller selector, one rule per client, all ports": {
			snap: with(ci("shop", "frontend", client("frontend"), wl("cart")), ci("shop", "checkout", client("checkout"), wl("cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromCheckout + `]
  - from: [` + fromFrontend + `]
---` + denyShop,
		},
		"kafka and http targets mean L4 access to the server workload": {
			snap: with(ci("shop", "frontend", client("frontend"),
				intents.Target{Type: intents.TargetKafka, Name: "cart", Raw: "cart"},
				intents.Target{Type: intents.TargetHTTP, Name: "cart", Raw: "cart"})),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---` + denyShop,
		},
		"client in another namespace is selected by its namespace name label and its selector": {
			snap: with(deploy("web", "storefront"), ci("web", "storefront", client("storefront"), wl("cart.shop"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: web}}, podSelector: {matchLabels: {app: storefront}}}]
---` + denyShop,
		},
		"service target allows the target ports: numeric, defaulted to port, named, protocol from the service port": {
			snap: with(
				service("shop", "cart", corev1.ServiceTypeClusterIP, labels.Set{"app": "cart"},
					svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http")),
					svcPort("grpc", "", 9090, intstr.IntOrString{}),
					svcPort("metrics", corev1.ProtocolTCP, 9100, intstr.FromInt32(19100)),
					svcPort("gossip", corev1.ProtocolUDP, 7946, intstr.FromInt32(7946))),
				ci("shop", "frontend", client("frontend"), svcT("svc:cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
    ports:
    - {protocol: TCP, port: 9090}
    - {protocol: TCP, port: 19100}
    - {protocol: TCP, port: http}
    - {protocol: UDP, port: 7946}
---` + denyShop,
		},
		"service selecting pods of two workloads puts the rule on each and warns": {
			snap: with(
				controlled("Deployment", "shop", "cart-canary", labels.Set{"app": "cart", "track": "canary"}, nil, 1),
				service("shop", "cart", corev1.ServiceTypeClusterIP, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
				ci("shop", "frontend", client("frontend"), svcT("svc:cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
    ports: [{protocol: TCP, port: 8080}]
---
metadata: {name: shadowgate-allow-cart-canary, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart, track: canary}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
    ports: [{protocol: TCP, port: 8080}]
---` + denyShop,
			wantWarnings: []Warning{
				{"Deployment shop/cart", "selector app=cart also selects pods of Deployment shop/cart-canary: policies that select or admit this workload cover them too (wider than intended)"},
				{"Service shop/cart", "selects pods of Deployment shop/cart, Deployment shop/cart-canary; callers through it are allowed into each"},
			},
		},
		"rules of one client merge: union of service ports from two intents": {
			snap: with(
				service("shop", "cart", corev1.ServiceTypeClusterIP, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
				service("shop", "cart-admin", corev1.ServiceTypeClusterIP, labels.Set{"app": "cart"}, svcPort("admin", corev1.ProtocolTCP, 81, intstr.FromInt32(8081))),
				ci("shop", "frontend", client("frontend"), svcT("svc:cart")),
				ci("shop", "frontend-admin", client("frontend"), svcT("svc:cart-admin"), svcT("svc:cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
    ports: [{protocol: TCP, port: 8080}, {protocol: TCP, port: 8081}]
---` + denyShop,
		},
		"a workload target widens the client's rule to all ports": {
			snap: with(
				service("shop", "cart", corev1.ServiceTypeClusterIP, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
				ci("shop", "frontend", client("frontend"), svcT("svc:cart"), wl("cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---` + denyShop,
		},
		"client whose pods resolve through a controller and through the annotation gets one peer per selector": {
			snap: with(
				annotated("shop", "frontend-legacy", "frontend", "Deployment", labels.Set{"app": "legacy-frontend", "tier": "web"}),
				ci("shop", "frontend", client("frontend"), wl("cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - ` + fromFrontend + `
    - {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}, podSelector: {matchLabels: {app: legacy-frontend, tier: web}}}
---` + denyShop,
		},
		"server without controller is selected by its full label set": {
			snap: with(
				bare("shop", "debug", labels.Set{"run": "debug", "team": "shop"}),
				ci("shop", "frontend", client("frontend"), wl("debug"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-debug, namespace: shop}
spec:
  podSelector: {matchLabels: {run: debug, team: shop}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---` + denyShop,
		},
		"server whose pods have distinct selectors gets one policy per selector, suffixed by the selector's hash": {
			snap: with(
				annotated("shop", "ledger-0", "ledger", "", labels.Set{"app": "ledger", "shard": "0"}),
				annotated("shop", "ledger-1", "ledger", "", labels.Set{"app": "ledger", "shard": "1"}),
				ci("shop", "frontend", client("frontend"), wl("ledger"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-ledger-` + shortHash(`{"matchLabels":{"app":"ledger","shard":"0"}}`) + `, namespace: shop}
spec:
  podSelector: {matchLabels: {app: ledger, shard: "0"}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---
metadata: {name: shadowgate-allow-ledger-` + shortHash(`{"matchLabels":{"app":"ledger","shard":"1"}}`) + `, namespace: shop}
spec:
  podSelector: {matchLabels: {app: ledger, shard: "1"}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---` + denyShop,
		},
		"workloads sharing a name are told apart by kind; a target without kind allows each": {
			snap: with(
				controlled("StatefulSet", "shop", "cart", labels.Set{"app": "cart-db"}, nil, 1),
				ci("shop", "frontend", client("frontend"), wl("cart")),
				ci("shop", "checkout", client("checkout"), wlKind("cart", "statefulset"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart-deployment, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---
metadata: {name: shadowgate-allow-cart-statefulset, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart-db}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromCheckout + `]
  - from: [` + fromFrontend + `]
---` + denyShop,
			wantWarnings: []Warning{{"ClientIntents shop/frontend", `target "cart" matches Deployment shop/cart, StatefulSet shop/cart; each is allowed`}},
		},
		"target in a namespace that is not enforced produces nothing there": {
			snap: with(deploy("payments", "payment"), ci("shop", "checkout", client("checkout"), wl("payment.payments"), wl("cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromCheckout + `]
---` + denyShop,
		},
		"empty namespace list enforces the namespaces intents target": {
			snap: with(deploy("payments", "payment"), ci("shop", "checkout", client("checkout"), wl("payment.payments"))),
			opts: Options{External: ExternalOff},
			want: `
metadata: {name: shadowgate-allow-payment, namespace: payments}
spec:
  podSelector: {matchLabels: {app: payment}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromCheckout + `]
---
metadata: {name: shadowgate-default-deny, namespace: payments}
spec: {podSelector: {}, policyTypes: [Ingress]}
`,
		},
		"missing server workload, service and client are warned and produce no rule": {
			snap: with(
				ci("shop", "frontend", client("frontend"), wl("catalog"), svcT("svc:search"), wlKind("cart", "StatefulSet")),
				ci("shop", "ghost", client("ghost"), wl("cart"))),
			opts: enforceShop,
			want: denyShop,
			wantWarnings: []Warning{
				{"ClientIntents shop/frontend", `target "cart": workload StatefulSet shop/cart not found in the snapshot`},
				{"ClientIntents shop/frontend", `target "catalog": workload shop/catalog not found in the snapshot`},
				{"ClientIntents shop/frontend", `target "svc:search": Service shop/search not found in the snapshot`},
				{"ClientIntents shop/ghost", "client shop/ghost not found in the snapshot: no rule admits it"},
			},
		},
		"selector-less and pod-less service targets are warned": {
			snap: with(
				service("shop", "external-db", corev1.ServiceTypeClusterIP, nil, svcPort("pg", corev1.ProtocolTCP, 5432, intstr.FromInt32(5432))),
				service("shop", "empty", corev1.ServiceTypeClusterIP, labels.Set{"app": "nothing"}, svcPort("pg", corev1.ProtocolTCP, 5432, intstr.FromInt32(5432))),
				ci("shop", "frontend", client("frontend"), svcT("svc:external-db"), svcT("svc:empty"))),
			opts: enforceShop,
			want: denyShop,
			wantWarnings: []Warning{
				{"ClientIntents shop/frontend", `target "svc:empty": Service shop/empty selects no pods in the snapshot`},
				{"ClientIntents shop/frontend", `target "svc:external-db": Service shop/external-db has no selector, so its endpoints cannot be resolved to workloads; ignored`},
			},
		},
		"client selector that also picks another workload's pods is warned with both names": {
			snap: with(
				controlled("Deployment", "shop", "frontend-canary", labels.Set{"app": "frontend", "track": "canary"}, nil, 1),
				ci("shop", "frontend", client("frontend"), wl("cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---` + denyShop,
			wantWarnings: []Warning{{"Deployment shop/frontend", "selector app=frontend also selects pods of Deployment shop/frontend-canary: policies that select or admit this workload cover them too (wider than intended)"}},
		},
		"cloud and database targets are ignored with a warning": {
			snap: with(ci("shop", "checkout", client("checkout"),
				intents.Target{Type: intents.TargetCloud, Raw: "aws:arn:aws:s3:::receipts"},
				intents.Target{Type: intents.TargetDatabase, Name: "orders-db", Raw: "orders-db"})),
			opts: enforceShop,
			want: denyShop,
			wantWarnings: []Warning{
				{"ClientIntents shop/checkout", `target "aws:arn:aws:s3:::receipts": cloud targets grant credentials, not network access; ignored`},
				{"ClientIntents shop/checkout", `target "orders-db": database targets grant credentials, not network access; ignored`},
			},
		},
		"intents that touch no enforced namespace are silent": {
			snap: with(ci("other", "ghost", client("ghost"), wl("nothing"), intents.Target{Type: intents.TargetCloud, Raw: "gcp"})),
			opts: enforceShop,
			want: denyShop,
		},
		"unlabelled pods are left out rather than selected with every other pod": {
			snap: with(
				bare("shop", "naked", nil),
				ci("shop", "frontend", client("frontend"), wl("naked")),
				ci("shop", "naked", client("naked"), wl("cart"))),
			opts:         enforceShop,
			want:         denyShop,
			wantWarnings: []Warning{{"Pod shop/naked", "pods have no labels: no selector picks them without picking every pod in the namespace; left out of the policies"}},
		},
		"host-network server is warned": {
			snap: with(hostNetwork("shop", "cart-deployment-0"), ci("shop", "frontend", client("frontend"), wl("cart"))),
			opts: enforceShop,
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromFrontend + `]
---` + denyShop,
			wantWarnings: []Warning{{"Deployment shop/cart", "pods use the host network: NetworkPolicy neither isolates them nor matches their traffic by pod selector"}},
		},
		"always-allow entries become one policy per enforced namespace": {
			snap: with(deploy("payments", "payment")),
			opts: Options{Namespaces: []string{"shop", "payments"}, External: ExternalOff, AlwaysAllow: []AlwaysAllow{{
				Name:              "monitoring",
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
				Ports:             []networkingv1.NetworkPolicyPort{numericPort(corev1.ProtocolTCP, 9100), namedPort(corev1.ProtocolTCP, "metrics")},
			}}},
			want: `
metadata: {name: shadowgate-allow-monitoring, namespace: payments}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}]
    ports: [{protocol: TCP, port: 9100}, {protocol: TCP, port: metrics}]
---
metadata: {name: shadowgate-default-deny, namespace: payments}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
metadata: {name: shadowgate-allow-monitoring, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}]
    ports: [{protocol: TCP, port: 9100}, {protocol: TCP, port: metrics}]
---` + denyShop,
		},
		"external always: LoadBalancer and NodePort target ports, Ingress backend ports, no from": {
			snap: with(
				service("shop", "frontend", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "frontend"},
					svcPort("https", corev1.ProtocolTCP, 443, intstr.FromInt32(8443)), svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http"))),
				service("shop", "cart", corev1.ServiceTypeNodePort, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
				service("shop", "checkout", corev1.ServiceTypeClusterIP, labels.Set{"app": "checkout"},
					svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8081)), svcPort("admin", corev1.ProtocolTCP, 81, intstr.FromInt32(9000))),
				service("shop", "internal", corev1.ServiceTypeClusterIP, labels.Set{"app": "checkout"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8081))),
				ingress("shop", "web",
					cluster.IngressBackend{Service: "checkout", Port: networkingv1.ServiceBackendPort{Name: "http"}},
					cluster.IngressBackend{Service: "cart", Port: networkingv1.ServiceBackendPort{Number: 80}})),
			opts: Options{Namespaces: []string{"shop"}, External: ExternalAlways},
			want: `
metadata: {name: shadowgate-allow-external-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: 8080}]}]
---
metadata: {name: shadowgate-allow-external-checkout, namespace: shop}
spec:
  podSelector: {matchLabels: {app: checkout}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: 8081}]}]
---
metadata: {name: shadowgate-allow-external-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: 8443}, {protocol: TCP, port: http}]}]
---` + denyShop,
		},
		"external: bad ingress backends and selector-less exposed services are warned": {
			snap: with(
				service("shop", "legacy", corev1.ServiceTypeLoadBalancer, nil, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
				service("shop", "cart", corev1.ServiceTypeClusterIP, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
				ingress("shop", "web",
					cluster.IngressBackend{Service: "gone", Port: networkingv1.ServiceBackendPort{Number: 80}},
					cluster.IngressBackend{Service: "cart", Port: networkingv1.ServiceBackendPort{Name: "grpc"}})),
			opts: Options{Namespaces: []string{"shop"}, External: ExternalAlways},
			want: denyShop,
			wantWarnings: []Warning{
				{"Ingress shop/web", `backend Service shop/cart has no port named "grpc"`},
				{"Ingress shop/web", "backend Service shop/gone not found in the snapshot"},
				{"Service shop/legacy", "exposed outside the cluster but has no selector: its endpoints cannot be selected; no external allowance"},
			},
		},
		"external only-if-blocked: emitted when the compiled set would drop outside traffic": {
			snap: with(service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http")))),
			opts: Options{Namespaces: []string{"shop"}, External: ExternalOnlyIfBlocked},
			want: `
metadata: {name: shadowgate-allow-external-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: http}]}]
---` + denyShop,
		},
		"external only-if-blocked: not emitted when an existing policy admits outside traffic": {
			snap: with(
				service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http"))),
				netpol("shop", `
metadata: {name: allow-world}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{protocol: TCP, port: 8080}]}]
`)),
			opts: Options{Namespaces: []string{"shop"}},
			want: denyShop,
		},
		"external only-if-blocked: still emitted when one port of several is blocked": {
			snap: with(
				service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"},
					svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http")), svcPort("admin", corev1.ProtocolTCP, 81, intstr.FromInt32(9000))),
				netpol("shop", `
metadata: {name: allow-world}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{protocol: TCP, port: 8080}]}]
`)),
			opts: Options{Namespaces: []string{"shop"}},
			want: `
metadata: {name: shadowgate-allow-external-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: 9000}, {protocol: TCP, port: http}]}]
---` + denyShop,
		},
		"external only-if-blocked: a stale allowance from an earlier compilation does not count": {
			snap: with(
				service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http"))),
				netpol("shop", `
metadata: {name: shadowgate-allow-external-cart-old, labels: {app.kubernetes.io/managed-by: shadowgate}}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: 8080}]}]
`)),
			opts: Options{Namespaces: []string{"shop"}},
			want: `
metadata: {name: shadowgate-allow-external-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: http}]}]
---` + denyShop,
		},
		"external only-if-blocked: IPv6-only pods are probed from an IPv6 address": {
			snap: with(
				ipv6Only("shop", "cart-deployment-0"),
				service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromString("http"))),
				netpol("shop", `
metadata: {name: allow-ipv4-world}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{from: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
`)),
			opts: Options{Namespaces: []string{"shop"}},
			want: `
metadata: {name: shadowgate-allow-external-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: http}]}]
---` + denyShop,
		},
		"external off: nothing for exposed services": {
			snap: with(service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080)))),
			opts: Options{Namespaces: []string{"shop"}, External: ExternalOff},
			want: denyShop,
		},
		"colliding policy names each take a hash of their purpose and are warned": {
			snap: with(service("shop", "web", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "frontend"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080)))),
			opts: Options{Namespaces: []string{"shop"}, External: ExternalAlways, AlwaysAllow: []AlwaysAllow{{
				Name: "external-web", NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "edge"}},
			}}},
			want: `
metadata: {name: shadowgate-allow-external-web-` + shortHash("always-allow/external-web") + `, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress: [{from: [{namespaceSelector: {matchLabels: {team: edge}}}]}]
---
metadata: {name: shadowgate-allow-external-web-` + shortHash("external/web") + `, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Ingress]
  ingress: [{ports: [{protocol: TCP, port: 8080}]}]
---` + denyShop,
			wantWarnings: []Warning{{"NetworkPolicy shop/shadowgate-allow-external-web", "name wanted by always-allow entry external-web and the external allowance of Service shop/web; each takes a hash suffix"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Compile(tc.snap, tc.opts)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if diff := cmp.Diff(render(t, parse(t, tc.want), false), render(t, res.Policies, false)); diff != "" {
				t.Errorf("policies (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, res.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			checkValid(t, res.Policies)
			assertConnectivity(t, tc.snap, tc.opts, res)
		})
	}
}

func TestCompileEgress(t *testing.T) {
	shop := []edit{
		deploy("shop", "frontend"), deploy("shop", "checkout"), deploy("shop", "cart"),
		deploy("payments", "payment"),
		service("payments", "payment", corev1.ServiceTypeClusterIP, labels.Set{"app": "payment"}, svcPort("grpc", corev1.ProtocolTCP, 443, intstr.FromInt32(8443))),
	}
	with := func(extra ...edit) *cluster.Snapshot { return snapshot(append(append([]edit{}, shop...), extra...)...) }
	const dnsRule = `
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
    ports: [{protocol: TCP, port: 53}, {protocol: UDP, port: 53}]`
	const denyBoth = `
metadata: {name: shadowgate-default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`

	cases := map[string]struct {
		snap         *cluster.Snapshot
		opts         Options
		want         string
		wantWarnings []Warning
	}{
		"client egress: DNS always, then each server's pods (service target ports), in any namespace": {
			snap: with(ci("shop", "checkout", client("checkout"), wl("cart"), svcT("svc:payment.payments"))),
			opts: Options{Namespaces: []string{"shop"}, Egress: true, External: ExternalOff},
			want: `
metadata: {name: shadowgate-allow-cart, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromCheckout + `]
---` + denyBoth + `---
metadata: {name: shadowgate-egress-checkout, namespace: shop}
spec:
  podSelector: {matchLabels: {app: checkout}}
  policyTypes: [Egress]
  egress:` + dnsRule + `
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: payments}}, podSelector: {matchLabels: {app: payment}}}]
    ports: [{protocol: TCP, port: 8443}]
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}, podSelector: {matchLabels: {app: cart}}}]
`,
		},
		"internet targets: host addresses as /32 and /128, CIDRs masked, ports as TCP, domains warned": {
			snap: with(ci("shop", "checkout", client("checkout"),
				internet("internet[0]", []string{"198.51.100.7", "2001:db8::10", "192.0.2.0/24"}, []string{"api.stripe.com"}, 443),
				internet("internet[1]", []string{"203.0.113.9/24", "not-an-ip"}, nil, 443),
				internet("internet[2]", []string{"192.0.2.55"}, nil))),
			opts: Options{Namespaces: []string{"shop"}, Egress: true, External: ExternalOff},
			want: denyBoth + `---
metadata: {name: shadowgate-egress-checkout, namespace: shop}
spec:
  podSelector: {matchLabels: {app: checkout}}
  policyTypes: [Egress]
  egress:` + dnsRule + `
  - to: [{ipBlock: {cidr: 192.0.2.55/32}}]
  - to: [{ipBlock: {cidr: 192.0.2.0/24}}, {ipBlock: {cidr: 198.51.100.7/32}}, {ipBlock: {cidr: 203.0.113.0/24}}, {ipBlock: {cidr: 2001:db8::10/128}}]
    ports: [{protocol: TCP, port: 443}]
`,
			wantWarnings: []Warning{
				{"ClientIntents shop/checkout", `target "internet[0]": domains api.stripe.com cannot be compiled to NetworkPolicy (it matches addresses only); egress to them stays denied`},
				{"ClientIntents shop/checkout", `target "internet[1]": "203.0.113.9/24" has host bits set; allowing 203.0.113.0/24`},
				{"ClientIntents shop/checkout", `target "internet[1]": "not-an-ip" is neither an IP address nor a CIDR; ignored`},
			},
		},
		"client namespace not enforced: no egress policy, ingress still compiled": {
			snap: with(ci("shop", "checkout", client("checkout"), svcT("svc:payment.payments"))),
			opts: Options{Namespaces: []string{"payments"}, Egress: true, External: ExternalOff},
			want: `
metadata: {name: shadowgate-allow-payment, namespace: payments}
spec:
  podSelector: {matchLabels: {app: payment}}
  policyTypes: [Ingress]
  ingress:
  - from: [` + fromCheckout + `]
    ports: [{protocol: TCP, port: 8443}]
---
metadata: {name: shadowgate-default-deny, namespace: payments}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`,
		},
		"custom DNS location": {
			snap: with(ci("shop", "frontend", client("frontend"))),
			opts: Options{Namespaces: []string{"shop"}, Egress: true, External: ExternalOff, DNS: &DNSConfig{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "dns"}},
				Ports:             []networkingv1.NetworkPolicyPort{numericPort(corev1.ProtocolUDP, 5353)},
			}},
			want: denyBoth + `---
metadata: {name: shadowgate-egress-frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dns}}}]
    ports: [{protocol: UDP, port: 5353}]
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Compile(tc.snap, tc.opts)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if diff := cmp.Diff(render(t, parse(t, tc.want), false), render(t, res.Policies, false)); diff != "" {
				t.Errorf("policies (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, res.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			checkValid(t, res.Policies)
			assertConnectivity(t, tc.snap, tc.opts, res)
		})
	}
}

// TestCompileMetadata pins the labels and the annotations that explain each rule.
func TestCompileMetadata(t *testing.T) {
	s := snapshot(
		deploy("shop", "frontend"), deploy("shop", "checkout"), deploy("shop", "cart"),
		service("shop", "cart", corev1.ServiceTypeLoadBalancer, labels.Set{"app": "cart"}, svcPort("http", corev1.ProtocolTCP, 80, intstr.FromInt32(8080))),
		ingress("shop", "web", cluster.IngressBackend{Service: "cart", Port: networkingv1.ServiceBackendPort{Number: 80}}),
		ci("shop", "frontend", client("frontend"), svcT("svc:cart")),
		ci("shop", "frontend-v1", client("frontend"), wl("cart")),
		ci("shop", "checkout", client("checkout"), svcT("svc:cart"), internet("internet[0]", []string{"198.51.100.7"}, nil, 443)),
	)
	res, err := Compile(s, Options{Namespaces: []string{"shop"}, Egress: true, External: ExternalAlways})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	type meta struct {
		Labels      map[string]string
		Intents     string
		Rules       []RuleOrigin
		ExposedBy   string
		RulesLength int
	}
	got := map[string]meta{}
	for _, p := range res.Policies {
		m := meta{Labels: p.Labels, Intents: p.Annotations[IntentsAnnotation], ExposedBy: p.Annotations[ExposedByAnnotation]}
		if r, ok := p.Annotations[RulesAnnotation]; ok {
			if err := json.Unmarshal([]byte(r), &m.Rules); err != nil {
				t.Fatalf("%s: rules annotation %q: %v", p.Name, r, err)
			}
		}
		m.RulesLength = len(p.Spec.Ingress) + len(p.Spec.Egress)
		got[p.Name] = m
	}
	managed := map[string]string{ManagedByLabel: ManagedByValue}
	want := map[string]meta{
		"shadowgate-default-deny": {Labels: managed},
		"shadowgate-allow-cart": {
			Labels:  managed,
			Intents: "shop/checkout,shop/frontend,shop/frontend-v1",
			Rules: []RuleOrigin{
				{Workload: &cluster.WorkloadID{Namespace: "shop", Name: "checkout", Kind: "Deployment"}, Intents: []IntentRef{{"shop/checkout", "svc:cart"}}},
				{Workload: &cluster.WorkloadID{Namespace: "shop", Name: "frontend", Kind: "Deployment"}, Intents: []IntentRef{{"shop/frontend", "svc:cart"}, {"shop/frontend-v1", "cart"}}},
			},
			RulesLength: 2,
		},
		"shadowgate-allow-external-cart": {Labels: managed, ExposedBy: "Ingress shop/web,Service shop/cart (LoadBalancer)", RulesLength: 1},
		"shadowgate-egress-checkout": {
			Labels:  managed,
			Intents: "shop/checkout",
			Rules: []RuleOrigin{
				{Peer: PeerDNS},
				{Workload: &cluster.WorkloadID{Namespace: "shop", Name: "cart", Kind: "Deployment"}, Intents: []IntentRef{{"shop/checkout", "svc:cart"}}},
				{Peer: PeerInternet, Intents: []IntentRef{{"shop/checkout", "internet[0]"}}},
			},
			RulesLength: 3,
		},
		"shadowgate-egress-frontend": {
			Labels:  managed,
			Intents: "shop/frontend,shop/frontend-v1",
			Rules: []RuleOrigin{
				{Peer: PeerDNS},
				{Workload: &cluster.WorkloadID{Namespace: "shop", Name: "cart", Kind: "Deployment"}, Intents: []IntentRef{{"shop/frontend", "svc:cart"}, {"shop/frontend-v1", "cart"}}},
			},
			RulesLength: 2,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

// TestCompileDeterministic feeds the same objects in different orders and expects
// byte-identical output.
func TestCompileDeterministic(t *testing.T) {
	edits := []edit{
		deploy("shop", "frontend"), deploy("shop", "checkout"), deploy("shop", "cart"), deploy("payments", "payment"),
		annotated("shop", "frontend-legacy", "frontend", "", labels.Set{"app": "legacy"}),
		service("shop", "cart", corev1.ServiceTypeNodePort, labels.Set{"app": "cart"},
			svcPort("a", corev1.ProtocolTCP, 1, intstr.FromInt32(9001)), svcPort("b", corev1.ProtocolUDP, 2, intstr.FromInt32(53)), svcPort("c", corev1.ProtocolTCP, 3, intstr.FromString("web"))),
		ci("shop", "frontend", client("frontend"), svcT("svc:cart"), wl("payment.payments"), internet("i", []string{"10.0.0.0/8", "9.9.9.9", "::1"}, nil, 443, 80)),
		ci("shop", "checkout", client("checkout"), wl("cart"), wl("payment.payments")),
		ci("payments", "payment", client("payment"), wl("checkout.shop")),
	}
	opts := Options{Egress: true, External: ExternalAlways}
	var first []byte
	for i := 0; i < 8; i++ {
		perm := append([]edit{}, edits...)
		// Rotate by i so every run inserts pods (and so their order) differently.
		perm = append(perm[i%len(perm):], perm[:i%len(perm)]...)
		res, err := Compile(snapshot(perm...), opts)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		got, err := res.Manifests()
		if err != nil {
			t.Fatalf("Manifests: %v", err)
		}
		if first == nil {
			first = got
			continue
		}
		if diff := cmp.Diff(string(first), string(got)); diff != "" {
			t.Fatalf("rotation %d (-first +got):\n%s", i, diff)
		}
	}
}

func TestCompileRejectsBadOptions(t *testing.T) {
	_, err := Compile(snapshot(), Options{External: "sometimes"})
	if err == nil || !strings.Contains(err.Error(), `external: Unsupported value: "sometimes"`) {
		t.Fatalf("Compile error = %v, want the unsupported external mode named", err)
	}
	if _, err := Compile(nil, Options{}); err == nil {
		t.Fatal("Compile(nil) succeeded, want an error")
	}
}

func TestCompileReportsEnforcedNamespaces(t *testing.T) {
	s := snapshot(deploy("shop", "frontend"), deploy("payments", "payment"),
		ci("shop", "frontend", client("frontend"), wl("payment.payments")))
	cases := map[string]struct {
		namespaces []string
		want       []string
	}{
		"explicit, sorted":           {namespaces: []string{"shop", "payments", "empty"}, want: []string{"empty", "payments", "shop"}},
		"default: the targeted ones": {want: []string{"payments"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := Compile(s, Options{Namespaces: tc.namespaces})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if diff := cmp.Diff(tc.want, res.Namespaces); diff != "" {
				t.Errorf("Namespaces (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTargetedNamespaces(t *testing.T) {
	s := snapshot(
		ci("shop", "frontend", client("frontend"), wl("cart"), svcT("svc:payment.payments")),
		ci("shop", "checkout", client("checkout"),
			intents.Target{Type: intents.TargetKafka, Name: "kafka", Namespace: "streaming", Raw: "kafka.streaming"},
			internet("i", []string{"1.1.1.1"}, nil), intents.Target{Type: intents.TargetCloud, Raw: "aws"},
			intents.Target{Type: intents.TargetDatabase, Name: "db", Namespace: "databases", Raw: "db"}),
		ci("ops", "cron", client("cron"), intents.Target{Type: intents.TargetHTTP, Name: "api", Raw: "api"}),
		ci("lonely", "nothing", client("nothing")),
	)
	want := []string{"ops", "payments", "shop", "streaming"}
	if diff := cmp.Diff(want, TargetedNamespaces(s)); diff != "" {
		t.Errorf("TargetedNamespaces (-want +got):\n%s", diff)
	}
}
