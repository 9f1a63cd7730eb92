package intents

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Error lists every problem found in one ClientIntents object, each at its field path,
// so a loader can point at the line of each field and the user fixes them in one go.
type Error struct {
	Object string // "ClientIntents namespace/name"
	Fields field.ErrorList
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return e.Object + ": " + strings.Join(msgs, "; ")
}

// Unwrap exposes each *field.Error to errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

// DefaultNamespace is where objects without metadata.namespace live, as kubectl places
// them with the default context.
const DefaultNamespace = "default"

// ServicePrefix marks a v1 call name as a Kubernetes Service ("svc:redis.db").
const ServicePrefix = "svc:"

// v2 target kinds, in the order Otterize documents them. Exactly one per target.
var v2TargetKinds = []string{"kubernetes", "service", "kafka", "sql", "aws", "gcp", "azure", "internet"}

// v1 call types the CRDs accept (the kubebuilder enum of v1beta1; older versions accept a
// subset, which the shape-based reader does not need to tell apart).
var v1CallTypes = []string{"http", "kafka", "database", "aws", "gcp", "azure", "internet"}

// FromUnstructured reads a ClientIntents object of any served version into the model.
//
// The version is recognized by the shape of spec, not by apiVersion: spec.service with
// spec.calls (v1alpha2, v1alpha3, v1beta1) or spec.workload with spec.targets (v2alpha1,
// v2beta1). Objects converted by hand between versions therefore read the same.
//
// Target names follow Otterize's rule (GetTargetServerName/GetTargetServerNamespace in
// otterize/intents-operator): a v1 "svc:" prefix, or kind Service, marks a Service and is
// dropped; the rest is split on "."; the first part is the server name, the second, when
// present, its namespace (so "cart.shop.svc.cluster.local" is cart in shop); without a
// dot the server lives in the intents' own namespace. Kafka and HTTP targets still mean
// L4 access to the server workload. Database and cloud IAM targets are kept with their
// type and reported in the returned notices, since no NetworkPolicy enforces them.
//
// An object without metadata.namespace is read in "default". Origin is left for the
// caller to fill.
func FromUnstructured(u *unstructured.Unstructured) (*ClientIntents, []string, error) {
	ns := u.GetNamespace()
	if ns == "" {
		ns = DefaultNamespace
	}
	r := &reader{
		ci:      &ClientIntents{Namespace: ns, Name: u.GetName(), APIVersion: u.GetAPIVersion()},
		objName: "ClientIntents " + ns + "/" + u.GetName(),
	}
	if u.GetName() == "" {
		r.errs = append(r.errs, field.Required(field.NewPath("metadata", "name"), ""))
	}
	r.readSpec(u.Object)
	if len(r.errs) > 0 {
		return nil, nil, &Error{Object: r.objName, Fields: r.errs}
	}
	return r.ci, r.notices, nil
}

type reader struct {
	ci      *ClientIntents
	objName string
	errs    field.ErrorList
	notices []string
}

func (r *reader) readSpec(obj map[string]any) {
	specPath := field.NewPath("spec")
	spec, ok := r.object(obj, "spec", specPath)
	if !ok {
		r.errs = append(r.errs, field.Required(specPath, ""))
		return
	}
	_, hasService := spec["service"]
	_, hasCalls := spec["calls"]
	_, hasWorkload := spec["workload"]
	_, hasTargets := spec["targets"]
	v1, v2 := hasService || hasCalls, hasWorkload || hasTargets
	switch {
	case v1 && v2:
		r.errs = append(r.errs, field.Forbidden(specPath,
			"mixes the v1 shape (service, calls) with the v2 shape (workload, targets)"))
	case v1:
		r.readV1(spec, specPath)
	case v2:
		r.readV2(spec, specPath)
	case strings.HasPrefix(versionOf(r.ci.APIVersion), "v1"):
		r.errs = append(r.errs, field.Required(specPath.Child("service"), ""))
	default:
		r.errs = append(r.errs, field.Required(specPath.Child("workload"), ""))
	}
}

func versionOf(apiVersion string) string {
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		return apiVersion[i+1:]
	}
	return apiVersion
}

// readV1 reads spec.service and spec.calls.
func (r *reader) readV1(spec map[string]any, p *field.Path) {
	r.ci.Client = r.readClient(spec, "service", p)
	for i, c := range r.list(spec, "calls", p.Child("calls")) {
		cp := p.Child("calls").Index(i)
		call, ok := c.(map[string]any)
		if !ok {
			r.errs = append(r.errs, field.TypeInvalid(cp, c, "must be an object"))
			continue
		}
		if t, ok := r.readCall(call, cp); ok {
			r.ci.Targets = append(r.ci.Targets, t)
		}
	}
}

func (r *reader) readCall(call map[string]any, p *field.Path) (Target, bool) {
	n := len(r.errs)
	name, _ := r.str(call, "name", p.Child("name"))
	kind, _ := r.str(call, "kind", p.Child("kind"))
	typ, _ := r.str(call, "type", p.Child("type"))
	// The L7 details do not change L4 access, but a malformed value is still an error.
	for _, k := range v1DetailLists {
		r.list(call, k, p.Child(k))
	}
	switch typ {
	case "", "http", "kafka":
		if len(r.errs) > n {
			return Target{}, false
		}
		if name == "" {
			r.errs = append(r.errs, field.Required(p.Child("name"), ""))
			return Target{}, false
		}
		t := Target{Type: TargetWorkload, Kind: kind, Raw: name}
		switch {
		case strings.HasPrefix(name, ServicePrefix) || kind == "Service":
			t.Type, t.Kind = TargetService, ""
		case typ == "http":
			t.Type = TargetHTTP
		case typ == "kafka":
			t.Type = TargetKafka
		}
		var ok bool
		t.Name, t.Namespace, ok = r.splitName(strings.TrimPrefix(name, ServicePrefix), p.Child("name"))
		return t, ok
	case "database":
		r.notice(p, "database", name, "database targets are enforced by Otterize's database integration, not by NetworkPolicies")
		return Target{Type: TargetDatabase, Name: name, Raw: name}, true
	case "aws", "gcp", "azure":
		r.notice(p, typ, name, "cloud IAM targets do not produce NetworkPolicies")
		return Target{Type: TargetCloud, Name: name, Raw: name}, true
	case "internet":
		in, ok := r.object(call, "internet", p.Child("internet"))
		if !ok {
			r.errs = append(r.errs, field.Required(p.Child("internet"), "must be set when type is internet"))
			return Target{}, false
		}
		return r.readInternet(in, p.Child("internet"))
	default:
		r.errs = append(r.errs, field.NotSupported(p.Child("type"), typ, v1CallTypes))
		return Target{}, false
	}
}

// v1DetailLists are the L7/IAM detail fields of a v1 call across versions (v1alpha2
// "topics" and "resources", later "kafkaTopics" and "HTTPResources").
var v1DetailLists = []string{"topics", "kafkaTopics", "resources", "HTTPResources", "databaseResources",
	"awsActions", "gcpPermissions", "azureRoles", "azureActions", "azureDataActions"}

// readV2 reads spec.workload and spec.targets.
func (r *reader) readV2(spec map[string]any, p *field.Path) {
	r.ci.Client = r.readClient(spec, "workload", p)
	for i, e := range r.list(spec, "targets", p.Child("targets")) {
		tp := p.Child("targets").Index(i)
		target, ok := e.(map[string]any)
		if !ok {
			r.errs = append(r.errs, field.TypeInvalid(tp, e, "must be an object"))
			continue
		}
		var kinds, unknown []string
		for k, v := range target {
			switch {
			case slices.Contains(v2TargetKinds, k):
				if v != nil {
					kinds = append(kinds, k)
				}
			default:
				unknown = append(unknown, k)
			}
		}
		if len(kinds) != 1 {
			sort.Strings(kinds)
			sort.Strings(unknown)
			msg := "must specify exactly one of " + strings.Join(v2TargetKinds, ", ")
			if len(kinds) > 1 {
				msg += "; found " + strings.Join(kinds, ", ")
			}
			if len(unknown) > 0 {
				msg += "; unknown fields: " + strings.Join(unknown, ", ")
			}
			r.errs = append(r.errs, field.Invalid(tp, omit, msg))
			continue
		}
		if t, ok := r.readTarget(target, kinds[0], tp); ok {
			r.ci.Targets = append(r.ci.Targets, t)
		}
	}
}

var omit = field.OmitValueType{}

func (r *reader) readTarget(target map[string]any, kind string, p *field.Path) (Target, bool) {
	kp := p.Child(kind)
	body, ok := r.object(target, kind, kp)
	if !ok {
		return Target{}, false
	}
	if kind == "internet" {
		return r.readInternet(body, kp)
	}
	nameField := map[string]string{"aws": "arn", "gcp": "resource", "azure": "scope"}[kind]
	if nameField == "" {
		nameField = "name"
	}
	n := len(r.errs)
	name, _ := r.str(body, nameField, kp.Child(nameField))
	if len(r.errs) > n {
		return Target{}, false
	}
	switch kind {
	case "sql":
		r.notice(p, kind, name, "database targets are enforced by Otterize's database integration, not by NetworkPolicies")
		return Target{Type: TargetDatabase, Name: name, Raw: name}, true
	case "aws", "gcp", "azure":
		r.notice(p, kind, name, "cloud IAM targets do not produce NetworkPolicies")
		return Target{Type: TargetCloud, Name: name, Raw: name}, true
	}
	if name == "" {
		r.errs = append(r.errs, field.Required(kp.Child("name"), ""))
		return Target{}, false
	}
	t := Target{Raw: name}
	switch kind {
	case "kubernetes":
		t.Kind, _ = r.str(body, "kind", kp.Child("kind"))
		switch {
		case t.Kind == "Service":
			t.Type, t.Kind = TargetService, ""
		case len(r.list(body, "http", kp.Child("http"))) > 0:
			t.Type = TargetHTTP
		default:
			t.Type = TargetWorkload
		}
	case "service":
		r.list(body, "http", kp.Child("http")) // type-checked only
		t.Type = TargetService
	case "kafka":
		r.list(body, "topics", kp.Child("topics"))
		t.Type = TargetKafka
	}
	t.Name, t.Namespace, ok = r.splitName(name, kp.Child("name"))
	return t, ok
}

// readClient reads spec.service (v1) or spec.workload (v2): {name, kind}.
func (r *reader) readClient(spec map[string]any, key string, p *field.Path) Workload {
	cp := p.Child(key)
	n := len(r.errs)
	c, ok := r.object(spec, key, cp)
	if !ok {
		if len(r.errs) == n {
			r.errs = append(r.errs, field.Required(cp.Child("name"), "the client workload must be named"))
		}
		return Workload{}
	}
	name, _ := r.str(c, "name", cp.Child("name"))
	kind, _ := r.str(c, "kind", cp.Child("kind"))
	if name == "" && len(r.errs) == n {
		r.errs = append(r.errs, field.Required(cp.Child("name"), "the client workload must be named"))
	}
	return Workload{Name: name, Kind: kind}
}

// splitName applies Otterize's name.namespace rule (see FromUnstructured).
func (r *reader) splitName(s string, p *field.Path) (name, namespace string, ok bool) {
	parts := strings.Split(s, ".")
	name, namespace = parts[0], r.ci.Namespace
	if len(parts) > 1 {
		namespace = parts[1]
	}
	if name == "" || namespace == "" {
		r.errs = append(r.errs, field.Invalid(p, s, "must be a name or name.namespace"))
		return "", "", false
	}
	return name, namespace, true
}

func (r *reader) readInternet(in map[string]any, p *field.Path) (Target, bool) {
	n := len(r.errs)
	inet := &Internet{
		Domains: r.strs(in, "domains", p.Child("domains")),
		IPs:     r.strs(in, "ips", p.Child("ips")),
	}
	for i, ip := range inet.IPs {
		if _, err := netip.ParseAddr(ip); err == nil {
			continue
		}
		if _, err := netip.ParsePrefix(ip); err == nil {
			continue
		}
		r.errs = append(r.errs, field.Invalid(p.Child("ips").Index(i), ip, "must be an IP address or a CIDR"))
	}
	for i, d := range inet.Domains {
		if d == "" {
			r.errs = append(r.errs, field.Invalid(p.Child("domains").Index(i), d, "must not be empty"))
		}
	}
	for i, v := range r.list(in, "ports", p.Child("ports")) {
		port, ok := toInt(v)
		if !ok || port < 1 || port > math.MaxUint16 {
			r.errs = append(r.errs, field.Invalid(p.Child("ports").Index(i), v, "must be a port number between 1 and 65535"))
			continue
		}
		inet.Ports = append(inet.Ports, int32(port))
	}
	if len(inet.Domains) == 0 && len(inet.IPs) == 0 {
		r.errs = append(r.errs, field.Required(p, "must list domains or ips"))
	}
	if len(r.errs) > n {
		return Target{}, false
	}
	return Target{Type: TargetInternet, Internet: inet, Raw: "internet"}, true
}

func (r *reader) notice(p *field.Path, kind, name, why string) {
	r.notices = append(r.notices, fmt.Sprintf("%s: %s (%s %q): %s; ignored", r.objName, p, kind, name, why))
}

// The accessors below record a type error and return the zero value, so one pass
// reports every bad field. A key that is absent or null reads as unset.

func (r *reader) object(m map[string]any, key string, p *field.Path) (map[string]any, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, false
	}
	o, ok := v.(map[string]any)
	if !ok {
		r.errs = append(r.errs, field.TypeInvalid(p, v, "must be an object"))
	}
	return o, ok
}

func (r *reader) str(m map[string]any, key string, p *field.Path) (string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		r.errs = append(r.errs, field.TypeInvalid(p, v, "must be a string"))
	}
	return s, ok
}

func (r *reader) list(m map[string]any, key string, p *field.Path) []any {
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		r.errs = append(r.errs, field.TypeInvalid(p, v, "must be a list"))
	}
	return l
}

func (r *reader) strs(m map[string]any, key string, p *field.Path) []string {
	var out []string
	for i, v := range r.list(m, key, p) {
		s, ok := v.(string)
		if !ok {
			r.errs = append(r.errs, field.TypeInvalid(p.Index(i), v, "must be a string"))
			continue
		}
		out = append(out, s)
	}
	return out
}

// toInt accepts the integer representations unstructured content carries: int64 from
// Kubernetes decoders, float64 from plain encoding/json.
func toInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
	}
	return 0, false
}
