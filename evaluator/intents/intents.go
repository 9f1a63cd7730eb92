// Package intents is the version-independent model of Otterize ClientIntents
// (k8s.otterize.com v1alpha2, v1alpha3, v1beta1, v2alpha1, v2beta1). Every served version
// is read by its shape (service/calls or workload/targets) into the same model.
package intents

// Group is the ClientIntents API group.
const Group = "k8s.otterize.com"

// Versions lists every ClientIntents version shadowgate reads, oldest first.
var Versions = []string{"v1alpha2", "v1alpha3", "v1beta1", "v2alpha1", "v2beta1"}

// TargetType says what kind of server a target names.
type TargetType string

const (
	// TargetWorkload is a Kubernetes workload (v1 plain call, v2 `kubernetes`). All ports.
	TargetWorkload TargetType = "Workload"
	// TargetService is a Kubernetes Service (v1 `svc:name` or `kind: Service`, v2
	// `service`). The Service's target ports.
	TargetService TargetType = "Service"
	// TargetKafka and TargetHTTP still mean L4 access to the server workload.
	TargetKafka TargetType = "Kafka"
	TargetHTTP  TargetType = "HTTP"
	// TargetDatabase names a database instance, not a workload: ignored with a notice.
	TargetDatabase TargetType = "Database"
	// TargetInternet is egress to addresses outside the cluster.
	TargetInternet TargetType = "Internet"
	// TargetCloud covers aws, gcp and azure IAM targets: ignored with a notice.
	TargetCloud TargetType = "Cloud"
)

// ClientIntents is one ClientIntents object.
type ClientIntents struct {
	Namespace  string
	Name       string
	APIVersion string
	Client     Workload
	Targets    []Target
	Origin     string // file and document, or "cluster"
}

// Key is namespace/name.
func (c *ClientIntents) Key() string { return c.Namespace + "/" + c.Name }

// Workload names the client workload. Kind is empty when the intents do not say.
type Workload struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// Target is one thing the client calls.
type Target struct {
	Type TargetType
	// Name and Namespace of the server workload or Service; Namespace defaults to the
	// client's. Empty for internet and cloud targets.
	Name      string
	Namespace string
	// Kind of the server workload when the intent says (Deployment, StatefulSet, ...).
	Kind string
	// Internet is set for TargetInternet.
	Internet *Internet
	// Raw is the target as written, for messages and annotations ("cart.shop", "svc:redis").
	Raw string
}

// Internet is an internet target.
type Internet struct {
	Domains []string
	IPs     []string // addresses or CIDRs
	Ports   []int32
}
