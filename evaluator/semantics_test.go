package evaluator

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Policies used by several cases.
const (
	defaultDenyShop = `
metadata: {namespace: shop, name: default-deny}
spec: {podSelector: {}}
`
	noEgressShop = `
metadata: {namespace: shop, name: no-egress}
spec: {podSelector: {}, policyTypes: [Egress]}
`
	cartFromFrontend = `
metadata: {namespace: shop, name: allow-frontend}
spec:
  podSelector: {matchLabels: {app: cart}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
`
	cartFromPodIPsButFrontend = `
metadata: {namespace: shop, name: cidr}
spec:
  podSelector: {matchLabels: {app: cart}}
  ingress:
  - from: [{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.10/32]}}]
`
	cartFromProdFrontends = `
metadata: {namespace: shop, name: prod-frontends}
spec:
  podSelector: {matchLabels: {app: cart}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {env: prod}}
      podSelector: {matchLabels: {app: frontend}}
`
	cartFromShopPods = `
metadata: {namespace: shop, name: from-shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  ingress:
  - from: [{podSelector: {}}]
`
	frontendEgressToRedis = `
metadata: {namespace: shop, name: frontend-out}
spec:
  podSelector: {matchLabels: {app: frontend}}
  egress:
  - to: [{podSelector: {matchLabels: {app: redis}}}]
`
	redisFromNodes = `
metadata: {namespace: shop, name: nodes}
spec:
  podSelector: {matchLabels: {app: redis}}
  ingress:
  - from: [{ipBlock: {cidr: 192.168.0.0/24}}]
`
)

// cartIngress is a policy admitting into cart-1 what the given rule admits.
func cartIngress(name, rule string) string {
	return fmt.Sprintf(`
metadata: {namespace: shop, name: %s}
spec:
  podSelector: {matchLabels: {app: cart}}
  ingress:
  - %s
`, name, rule)
}

// frontendEgress is an Egress-only policy on the frontend with the given rule.
func frontendEgress(name, rule string) string {
	return fmt.Sprintf(`
metadata: {namespace: shop, name: %s}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
  - %s
`, name, rule)
}

// Pods that are not in the snapshot: the evaluators judge them by their own content.
var (
	ghostPod = &cluster.Pod{Namespace: "ghost", Name: "intruder", Labels: labels.Set{"app": "frontend"},
		IPs: []netip.Addr{netip.MustParseAddr("10.99.0.1")}}
	newFrontend = &cluster.Pod{Namespace: "shop", Name: "frontend-new", Labels: labels.Set{"app": "frontend"},
		IPs: []netip.Addr{netip.MustParseAddr("10.244.9.1")}}
	newCart = &cluster.Pod{Namespace: "shop", Name: "cart-new", Labels: labels.Set{"app": "cart"},
		IPs:   []netip.Addr{netip.MustParseAddr("10.244.9.2")},
		Ports: []cluster.ContainerPort{{Name: "http", Port: 8081, Protocol: corev1.ProtocolTCP}}}
)

type semanticsCase struct {
	policies string // YAML documents, in input order
	conn     Connection
	want     Verdict
}

var semanticsCases = map[string]semanticsCase{
	// Isolation.
	"no policies: not isolated": {
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, open),
	},
	"policy in another namespace does not isolate": {
		policies: `
metadata: {namespace: payments, name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, open),
	},
	"empty podSelector isolates every pod of its namespace": {
		policies: defaultDenyShop,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/default-deny"}.denied()),
	},
	"podSelector isolates only the pods it selects": {
		policies: `
metadata: {namespace: shop, name: deny-redis}
spec: {podSelector: {matchLabels: {app: redis}}}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, open),
	},
	"matchExpressions in spec.podSelector choose the isolated pods": {
		policies: `
metadata: {namespace: shop, name: deny-backend}
spec: {podSelector: {matchExpressions: [{key: tier, operator: In, values: [backend]}]}}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, isolated{"shop/deny-backend"}.denied()),
	},
	"invalid spec.podSelector selects nothing": {
		policies: `
metadata: {namespace: shop, name: bad}
spec: {podSelector: {matchExpressions: [{key: app, operator: Sideways, values: [cart]}]}}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, open),
	},

	// policyTypes.
	"policyTypes unset without egress rules leaves egress open": {
		policies: `
metadata: {namespace: shop, name: allow-all-in}
spec: {podSelector: {}, ingress: [{}]}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, isolated{"shop/allow-all-in"}.by("shop/allow-all-in#0")),
	},
	"policyTypes unset with egress rules isolates egress": {
		policies: frontendEgressToRedis,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(isolated{"shop/frontend-out"}.denied(), open),
	},
	"policyTypes unset isolates ingress even with only egress rules": {
		policies: frontendEgressToRedis,
		conn:     tcp(pod("shop/cart-1"), pod("shop/frontend-abc"), 8080),
		want:     verdict(open, isolated{"shop/frontend-out"}.denied()),
	},
	"Egress-only policyTypes does not isolate ingress": {
		policies: noEgressShop,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(isolated{"shop/no-egress"}.denied(), open),
	},
	"rules of a direction missing from policyTypes are ignored": {
		policies: `
metadata: {namespace: shop, name: ingress-only}
spec: {podSelector: {}, policyTypes: [Ingress], egress: [{}]}
---
metadata: {namespace: shop, name: egress-only}
spec: {podSelector: {}, policyTypes: [Egress], ingress: [{}]}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(isolated{"shop/egress-only"}.denied(), isolated{"shop/ingress-only"}.denied()),
	},
	"policyTypes with only unknown values isolates nothing": {
		policies: `
metadata: {namespace: shop, name: sideways}
spec: {podSelector: {}, policyTypes: [Sideways]}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, open),
	},

	// Rules.
	"ingress: [] allows nothing": {
		policies: `
metadata: {namespace: shop, name: none}
spec: {podSelector: {}, policyTypes: [Ingress], ingress: []}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, isolated{"shop/none"}.denied()),
	},
	"egress: [] allows nothing": {
		policies: `
metadata: {namespace: shop, name: none}
spec: {podSelector: {matchLabels: {app: frontend}}, policyTypes: [Egress], egress: []}
`,
		conn: tcp(pod("shop/frontend-abc"), external("203.0.113.7"), 443),
		want: verdict(isolated{"shop/none"}.denied(), notPod),
	},
	"empty from allows every peer, even external": {
		policies: cartIngress("web", `ports: [{port: 8080}]`),
		conn:     tcp(external("203.0.113.7"), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/web"}.by("shop/web#0")),
	},
	"empty ports allow every port and protocol": {
		policies: cartFromShopPods,
		conn:     udp(pod("shop/frontend-abc"), pod("shop/cart-1"), 5353),
		want:     verdict(open, isolated{"shop/from-shop"}.by("shop/from-shop#0")),
	},
	"union of two policies": {
		policies: cartFromFrontend + "---" + cartIngress("allow-payments", `from: [{namespaceSelector: {matchLabels: {team: payments}}}]`),
		conn:     tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/allow-frontend", "shop/allow-payments"}.by("shop/allow-payments#0")),
	},
	"every admitting rule is listed, sorted": {
		policies: `
metadata: {namespace: shop, name: b}
spec:
  podSelector: {}
  ingress:
  - ports: [{port: 8080}]
  - from: [{podSelector: {}}]
  - from: [{namespaceSelector: {matchLabels: {team: payments}}}]
` + "---" + defaultDenyShop + "---" + cartIngress("a", `from: [{podSelector: {matchLabels: {app: frontend}}}]`),
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, isolated{"shop/a", "shop/b", "shop/default-deny"}.by("shop/a#0", "shop/b#0", "shop/b#1")),
	},
	"egress denial alone denies the connection": {
		policies: frontendEgressToRedis + "---" + cartFromFrontend,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(isolated{"shop/frontend-out"}.denied(), isolated{"shop/allow-frontend"}.by("shop/allow-frontend#0")),
	},
	"egress admitted by a podSelector peer": {
		policies: frontendEgressToRedis,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/redis-0"), 6379),
		want:     verdict(isolated{"shop/frontend-out"}.by("shop/frontend-out#0"), open),
	},
	"duplicate names: the last policy wins": {
		policies: `
metadata: {namespace: shop, name: p}
spec: {podSelector: {}}
---
metadata: {namespace: shop, name: p}
spec: {podSelector: {}, ingress: [{}]}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want: verdict(open, isolated{"shop/p"}.by("shop/p#0")),
	},

	// Peers and selectors.
	"empty podSelector peer matches every pod of the policy namespace": {
		policies: cartFromShopPods,
		conn:     tcp(pod("shop/legacy-0"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/from-shop"}.by("shop/from-shop#0")),
	},
	"nil vs empty podSelector: empty podSelector alone stays in the policy namespace": {
		policies: cartFromShopPods,
		conn:     tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/from-shop"}.denied()),
	},
	"nil vs empty podSelector: nil podSelector next to a namespaceSelector admits every pod": {
		policies: cartIngress("from-all-namespaces", `from: [{namespaceSelector: {}}]`),
		conn:     tcp(pod("dev/frontend-xyz"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/from-all-namespaces"}.by("shop/from-all-namespaces#0")),
	},
	"namespaceSelector alone matches every pod of matching namespaces": {
		policies: cartIngress("from-payments", `from: [{namespaceSelector: {matchLabels: {team: payments}}}]`),
		conn:     tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/from-payments"}.by("shop/from-payments#0")),
	},
	"namespaceSelector reads the snapshot's namespace labels": {
		policies: cartIngress("from-prod", `from: [{namespaceSelector: {matchLabels: {env: prod}}}]`),
		conn:     tcp(pod("dev/frontend-xyz"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/from-prod"}.denied()),
	},
	"namespace missing from the snapshot has only its name label": {
		policies: cartIngress("from-ghost", `from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ghost}}}]`),
		conn:     tcp(Endpoint{Kind: Pod, Pod: ghostPod}, pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/from-ghost"}.by("shop/from-ghost#0")),
	},
	"namespaceSelector and podSelector in one peer are ANDed: both match": {
		policies: cartFromProdFrontends,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/prod-frontends"}.by("shop/prod-frontends#0")),
	},
	"namespaceSelector and podSelector in one peer are ANDed: namespace does not match": {
		policies: cartFromProdFrontends,
		conn:     tcp(pod("dev/frontend-xyz"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/prod-frontends"}.denied()),
	},
	"namespaceSelector and podSelector in one peer are ANDed: pod does not match": {
		policies: cartFromProdFrontends,
		conn:     tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/prod-frontends"}.denied()),
	},
	"separate peers are ORed": {
		policies: cartIngress("either", `from: [{namespaceSelector: {matchLabels: {team: payments}}}, {podSelector: {matchLabels: {app: frontend}}}]`),
		conn:     tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/either"}.by("shop/either#0")),
	},
	"podSelector alone is scoped to the policy namespace": {
		policies: cartFromFrontend,
		conn:     tcp(pod("dev/frontend-xyz"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/allow-frontend"}.denied()),
	},
	"In matches a listed value": {
		policies: cartIngress("in", `from: [{namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, operator: In, values: [api, frontend]}]}}]`),
		conn:     tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/in"}.by("shop/in#0")),
	},
	"NotIn matches pods without the key": {
		policies: cartIngress("not-backend", `from: [{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [backend]}]}}]`),
		conn:     tcp(pod("shop/legacy-0"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/not-backend"}.by("shop/not-backend#0")),
	},
	"NotIn excludes a listed value": {
		policies: cartIngress("not-backend", `from: [{podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [backend]}]}}]`),
		conn:     tcp(pod("shop/redis-0"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/not-backend"}.denied()),
	},
	"Exists requires the key": {
		policies: cartIngress("tiered", `from: [{podSelector: {matchExpressions: [{key: tier, operator: Exists}]}}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/tiered"}.denied()),
	},
	"DoesNotExist matches pods lacking the key": {
		policies: cartIngress("untiered", `from: [{podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/untiered"}.by("shop/untiered#0")),
	},
	"matchLabels and matchExpressions are ANDed": {
		policies: cartIngress("backend-not-redis", `from: [{podSelector: {matchLabels: {tier: backend}, matchExpressions: [{key: app, operator: NotIn, values: [redis]}]}}]`),
		conn:     tcp(pod("shop/redis-0"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/backend-not-redis"}.denied()),
	},
	"invalid peer selector matches nothing": {
		policies: cartIngress("in-nothing", `from: [{podSelector: {matchExpressions: [{key: app, operator: In}]}}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/in-nothing"}.denied()),
	},
	"empty peer matches nothing": {
		policies: cartIngress("empty-peer", `from: [{}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/empty-peer"}.denied()),
	},
	"ipBlock next to a selector in one peer matches nothing": {
		policies: cartIngress("mixed", `from: [{ipBlock: {cidr: 0.0.0.0/0}, podSelector: {}}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/mixed"}.denied()),
	},
	"pod outside the snapshot is judged by its labels": {
		policies: cartFromFrontend,
		conn:     tcp(Endpoint{Kind: Pod, Pod: newFrontend}, pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/allow-frontend"}.by("shop/allow-frontend#0")),
	},
	"destination outside the snapshot resolves named ports on its own ports": {
		policies: cartIngress("http", `ports: [{port: http}]`),
		conn:     tcp(pod("shop/frontend-abc"), Endpoint{Kind: Pod, Pod: newCart}, 8081),
		want:     verdict(open, isolated{"shop/http"}.by("shop/http#0")),
	},

	// Nodes, host network, external endpoints.
	"selectors never match a node": {
		policies: cartIngress("all-pods", `from: [{namespaceSelector: {}, podSelector: {}}]`),
		conn:     tcp(node("n2", n2IP), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/all-pods"}.denied()),
	},
	"selectors never match an external endpoint": {
		policies: cartIngress("all-namespaces", `from: [{namespaceSelector: {}}]`),
		conn:     tcp(external("203.0.113.7"), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/all-namespaces"}.denied()),
	},
	"ingress from own node allowed": {
		policies: defaultDenyShop,
		conn:     tcp(node("n1", n1IP), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, Direction{Allowed: true, Exempt: ExemptOwnNode}),
	},
	"own node recognized by address alone": {
		policies: defaultDenyShop,
		conn:     tcp(node("", n1IP), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, Direction{Allowed: true, Exempt: ExemptOwnNode}),
	},
	"own node recognized by name alone": {
		policies: defaultDenyShop,
		conn:     tcp(node("n1", netip.Addr{}), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, Direction{Allowed: true, Exempt: ExemptOwnNode}),
	},
	"from remote node needs ipBlock": {
		policies: defaultDenyShop,
		conn:     tcp(node("n2", n2IP), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/default-deny"}.denied()),
	},
	"remote node admitted by ipBlock": {
		policies: cartIngress("nodes", `from: [{ipBlock: {cidr: 192.168.0.0/24}}]`),
		conn:     tcp(node("n2", n2IP), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/nodes"}.by("shop/nodes#0")),
	},
	"node with neither name nor address is not the own node": {
		policies: defaultDenyShop,
		conn:     tcp(Endpoint{Kind: Host}, pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/default-deny"}.denied()),
	},
	"no egress exemption to the own node": {
		policies: noEgressShop,
		conn:     tcp(pod("shop/frontend-abc"), node("n1", n1IP), 10250),
		want:     verdict(isolated{"shop/no-egress"}.denied(), notPod),
	},
	"host-network pod on the same node is own-node traffic": {
		policies: defaultDenyShop,
		conn:     tcp(pod("kube-system/node-exporter"), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, Direction{Allowed: true, Exempt: ExemptOwnNode}),
	},
	"host-network pod is never selected by a pod selector": {
		policies: `
metadata: {namespace: shop, name: exporter}
spec:
  podSelector: {matchLabels: {app: redis}}
  ingress:
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: node-exporter}}}]
`,
		conn: tcp(pod("kube-system/node-exporter"), pod("shop/redis-0"), 6379),
		want: verdict(notPod, isolated{"shop/exporter"}.denied()),
	},
	"host-network pod matches ipBlocks by its node address": {
		policies: redisFromNodes,
		conn:     tcp(pod("kube-system/node-exporter"), pod("shop/redis-0"), 6379),
		want:     verdict(notPod, isolated{"shop/nodes"}.by("shop/nodes#0")),
	},
	"host-network destination is not isolated": {
		policies: `
metadata: {namespace: kube-system, name: default-deny}
spec: {podSelector: {}}
`,
		conn: tcp(pod("shop/frontend-abc"), pod("kube-system/node-exporter"), 9100),
		want: verdict(open, notPod),
	},
	"egress to external needs ipBlock": {
		policies: frontendEgress("in-cluster", `to: [{namespaceSelector: {}}]`),
		conn:     tcp(pod("shop/frontend-abc"), external("203.0.113.7"), 443),
		want:     verdict(isolated{"shop/in-cluster"}.denied(), notPod),
	},
	"egress to external admitted by ipBlock": {
		policies: frontendEgress("internet", `to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]`),
		conn:     tcp(pod("shop/frontend-abc"), external("203.0.113.7"), 443),
		want:     verdict(isolated{"shop/internet"}.by("shop/internet#0"), notPod),
	},
	"Pod endpoint without a pod is judged as external": {
		policies: cartIngress("world", `from: [{ipBlock: {cidr: 203.0.113.0/24}}]`),
		conn:     tcp(Endpoint{Kind: Pod, IP: worldIP}, pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/world"}.by("shop/world#0")),
	},

	// ipBlock.
	"ipBlock except carves out a pod IP": {
		policies: cartFromPodIPsButFrontend,
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/cidr"}.denied()),
	},
	"ipBlock matches pod IPs": {
		policies: cartFromPodIPsButFrontend,
		conn:     tcp(pod("shop/redis-0"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/cidr"}.by("shop/cidr#0")),
	},
	"ipBlock compares IPv4-mapped addresses unmapped": {
		policies: cartIngress("world", `from: [{ipBlock: {cidr: 203.0.113.0/24}}]`),
		conn:     tcp(external("::ffff:203.0.113.7"), pod("shop/cart-1"), 8080),
		want:     verdict(notPod, isolated{"shop/world"}.by("shop/world#0")),
	},
	"IPv6 ipBlock matches an IPv6 pod address": {
		policies: cartIngress("v6", `from: [{ipBlock: {cidr: "fd00::/64"}}]`),
		conn:     tcp(Endpoint{Kind: Pod, Pod: fx.Pod("payments", "api-1"), IP: netip.MustParseAddr("fd00::30")}, pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/v6"}.by("shop/v6#0")),
	},
	"IPv4 ipBlock never matches an IPv6 address": {
		policies: cartIngress("v4", `from: [{ipBlock: {cidr: 0.0.0.0/0}}]`),
		conn:     tcp(Endpoint{Kind: Pod, Pod: fx.Pod("payments", "api-1"), IP: netip.MustParseAddr("fd00::30")}, pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/v4"}.denied()),
	},
	"pod without an address matches no ipBlock": {
		policies: `
metadata: {namespace: shop, name: anywhere}
spec:
  podSelector: {matchLabels: {app: redis}}
  ingress:
  - from: [{ipBlock: {cidr: 0.0.0.0/0}}, {ipBlock: {cidr: "::/0"}}]
`,
		conn: tcp(pod("shop/cart-synth"), pod("shop/redis-0"), 6379),
		want: verdict(open, isolated{"shop/anywhere"}.denied()),
	},
	"pod endpoint without a wire address uses the pod's primary address": {
		policies: cartIngress("frontend-ip", `from: [{ipBlock: {cidr: 10.244.1.10/32}}]`),
		conn:     tcp(Endpoint{Kind: Pod, Pod: fx.Pod("shop", "frontend-abc")}, pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/frontend-ip"}.by("shop/frontend-ip#0")),
	},
	"invalid ipBlock cidr matches nothing": {
		policies: cartIngress("bad-cidr", `from: [{ipBlock: {cidr: 10.0.0/8}}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/bad-cidr"}.denied()),
	},
	"invalid except makes the ipBlock match nothing": {
		policies: cartIngress("bad-except", `from: [{ipBlock: {cidr: 10.0.0.0/8, except: [bogus]}}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/bad-except"}.denied()),
	},

	// Ports.
	"protocol defaults to TCP": {
		policies: cartIngress("port", `ports: [{port: 8080}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/port"}.by("shop/port#0")),
	},
	"UDP distinct from TCP": {
		policies: cartIngress("port", `ports: [{port: 8080}]`),
		conn:     udp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/port"}.denied()),
	},
	"SCTP distinct from TCP": {
		policies: cartIngress("sctp", `ports: [{protocol: SCTP, port: 3868}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 3868),
		want:     verdict(open, isolated{"shop/sctp"}.denied()),
	},
	"SCTP port admits SCTP": {
		policies: cartIngress("sctp", `ports: [{protocol: SCTP, port: 3868}]`),
		conn:     sctp(pod("shop/frontend-abc"), pod("shop/cart-1"), 3868),
		want:     verdict(open, isolated{"shop/sctp"}.by("shop/sctp#0")),
	},
	"port without a number admits every port of its protocol": {
		policies: cartIngress("udp", `ports: [{protocol: UDP}]`),
		conn:     udp(pod("shop/frontend-abc"), pod("shop/cart-1"), 9999),
		want:     verdict(open, isolated{"shop/udp"}.by("shop/udp#0")),
	},
	"port without a number still requires its protocol": {
		policies: cartIngress("udp", `ports: [{protocol: UDP}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 9999),
		want:     verdict(open, isolated{"shop/udp"}.denied()),
	},
	"endPort range inclusive: upper bound": {
		policies: cartIngress("range", `ports: [{port: 8000, endPort: 8080}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/range"}.by("shop/range#0")),
	},
	"endPort range inclusive: lower bound": {
		policies: cartIngress("range", `ports: [{port: 8000, endPort: 8080}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8000),
		want:     verdict(open, isolated{"shop/range"}.by("shop/range#0")),
	},
	"port past endPort denied": {
		policies: cartIngress("range", `ports: [{port: 8000, endPort: 8080}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8081),
		want:     verdict(open, isolated{"shop/range"}.denied()),
	},
	"endPort below port matches nothing": {
		policies: cartIngress("inverted", `ports: [{port: 8080, endPort: 8000}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/inverted"}.denied()),
	},
	"named port resolved on destination pod": {
		policies: cartIngress("http", `ports: [{port: http}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		want:     verdict(open, isolated{"shop/http"}.by("shop/http#0")),
	},
	"named port: container port protocol defaults to TCP": {
		policies: cartIngress("metrics", `ports: [{port: metrics}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 9090),
		want:     verdict(open, isolated{"shop/metrics"}.by("shop/metrics#0")),
	},
	"named port resolved on destination pod, protocol must match": {
		policies: cartIngress("dns", `ports: [{port: dns}]`),
		conn:     udp(pod("shop/frontend-abc"), pod("shop/cart-1"), 5353),
		want:     verdict(open, isolated{"shop/dns"}.denied()),
	},
	"named port with the container port's protocol": {
		policies: cartIngress("dns", `ports: [{protocol: UDP, port: dns}]`),
		conn:     udp(pod("shop/frontend-abc"), pod("shop/cart-1"), 5353),
		want:     verdict(open, isolated{"shop/dns"}.by("shop/dns#0")),
	},
	"named port must resolve to the connection's port": {
		policies: cartIngress("http", `ports: [{port: http}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 9090),
		want:     verdict(open, isolated{"shop/http"}.denied()),
	},
	"named port the destination does not declare matches nothing": {
		policies: cartIngress("redis", `ports: [{port: redis}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 6379),
		want:     verdict(open, isolated{"shop/redis"}.denied()),
	},
	"empty port name matches nothing, not even unnamed container ports": {
		policies: cartIngress("unnamed", `ports: [{port: ""}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 7000),
		want:     verdict(open, isolated{"shop/unnamed"}.denied()),
	},
	"named port in egress resolves on the destination pod": {
		policies: frontendEgress("to-redis", `ports: [{port: redis}]`),
		conn:     tcp(pod("shop/frontend-abc"), pod("shop/redis-0"), 6379),
		want:     verdict(isolated{"shop/to-redis"}.by("shop/to-redis#0"), open),
	},
	"named port in egress never resolves on the source pod": {
		policies: `
metadata: {namespace: shop, name: cart-out}
spec:
  podSelector: {matchLabels: {app: cart}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: http}]
`,
		conn: tcp(pod("shop/cart-1"), pod("shop/redis-0"), 8080),
		want: verdict(isolated{"shop/cart-out"}.denied(), open),
	},
	"named port never matches a non-pod destination": {
		policies: frontendEgress("http-out", `{to: [{ipBlock: {cidr: 0.0.0.0/0}}], ports: [{port: http}]}`),
		conn:     tcp(pod("shop/frontend-abc"), external("203.0.113.7"), 8080),
		want:     verdict(isolated{"shop/http-out"}.denied(), notPod),
	},

	// Exemptions.
	"pod to itself always allowed": {
		policies: defaultDenyShop + "---" + noEgressShop,
		conn:     tcp(pod("shop/cart-1"), pod("shop/cart-1"), 8080),
		want: Verdict{Allowed: true,
			Egress:  Direction{Allowed: true, Exempt: ExemptSelf},
			Ingress: Direction{Allowed: true, Exempt: ExemptSelf}},
	},
	"pod to another pod with the same labels is not itself": {
		policies: defaultDenyShop,
		conn:     tcp(Endpoint{Kind: Pod, Pod: newCart}, Endpoint{Kind: Pod, Pod: &cluster.Pod{Namespace: "shop", Name: "cart-new", Labels: newCart.Labels, Ports: newCart.Ports}}, 8081),
		want:     verdict(open, isolated{"shop/default-deny"}.denied()),
	},
}

func TestSemantics(t *testing.T) {
	if n := len(semanticsCases); n < 40 {
		t.Fatalf("only %d semantics cases; the spec needs at least 40", n)
	}
	names := make([]string, 0, len(semanticsCases))
	for name := range semanticsCases {
		names = append(names, name)
	}
	sort.Strings(names)
	var reasons strings.Builder
	for _, name := range names {
		tc := semanticsCases[name]
		t.Run(name, func(t *testing.T) {
			policies := parsePolicies(t, tc.policies)
			engine := NewEngine(fx, policies)
			for _, e := range []struct {
				name string
				ev   Evaluator
			}{
				{"oracle", NewOracle(fx, policies)},
				{"engine", engine},
				{"engine (cached)", engine},
				{"engine, resolved (cold)", refEvaluator{NewEngine(fx, policies)}},
				{"engine, resolved (cached by Evaluate)", refEvaluator{engine}},
			} {
				if diff := cmp.Diff(tc.want, e.ev.Evaluate(tc.conn)); diff != "" {
					t.Errorf("%s verdict for %s (-want +got):\n%s", e.name, tc.conn, diff)
				}
			}
		})
		fmt.Fprintf(&reasons, "%s\n\t%s\n", name, tc.want.ReasonFor(tc.conn))
	}
	golden(t, "reasons.golden", reasons.String())
}
