package cluster

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/intents"
)

const (
	// AnnotationWorkloadName on a pod overrides its workload identity, as Otterize reads
	// it (podownerresolver in otterize/intents-operator).
	AnnotationWorkloadName = "intents.otterize.com/workload-name"
	// AnnotationServiceName is the deprecated predecessor of AnnotationWorkloadName,
	// read only when the latter is absent.
	AnnotationServiceName = "intents.otterize.com/service-name"

	// SynthesizedSuffix ends the name of a pod made up from a workload's template.
	SynthesizedSuffix = "-synthesized"
)

// Build interprets objects into a Snapshot and indexes it. It does not modify o.
//
// Every object is first checked as LoadObjects checks it (see validate); any problem
// fails the whole build with every ObjectError found, located by o.Sources.
//
// Workload identities are resolved as Otterize resolves them:
//
//  1. the pod's intents.otterize.com/workload-name annotation, else the deprecated
//     intents.otterize.com/service-name, taken verbatim with an empty Kind (an empty
//     value overrides nothing); such pods have no Selector;
//  2. else the root of the pod's controller chain (the ownerReference marked
//     controller, else the first one, as Otterize takes the first): Pod→ReplicaSet→
//     Deployment, Pod→Job→CronJob, Pod→StatefulSet, Pod→DaemonSet, with the root's Kind;
//  3. else the pod itself, Kind "Pod".
//
// As Otterize does, dots in a resolved object name become underscores ("web.v2" is
// identity "web_v2"), because Otterize reads a dot in an intent's target as the
// name.namespace separator.
//
// When an owner is missing from the snapshot, the owner reference itself is the
// identity, with a warning. A pod whose ReplicaSet is missing but whose
// pod-template-hash label ends the ReplicaSet's name is taken to belong to the
// Deployment named by the rest ("cart-5d9f8b7c4" with hash "5d9f8b7c4" is Deployment
// "cart"), which is how the Deployment controller names ReplicaSets. A ReplicaSet
// present without its Deployment stands in for it: its selector and template labels,
// less pod-template-hash, are the Deployment's.
//
// Each root workload without pods in the snapshot gets one synthesized pod from its
// template (named "<workload>-synthesized", no IPs), so a snapshot of manifests alone
// can be evaluated. Pods in phase Succeeded or Failed keep their identity but not
// their IPs, which the cluster is free to reuse.
//
// NetworkPolicies are copied with the API server's defaults applied: policyTypes
// (Ingress, plus Egress when there are egress rules) and port protocol TCP. Service
// ports default to protocol TCP and targetPort = port, and the type to ClusterIP.
func Build(o *Objects) (*Snapshot, error) {
	b := &builder{
		o:           o,
		s:           &Snapshot{Namespaces: map[string]*Namespace{}, Workloads: map[WorkloadID]*Workload{}, Ignored: map[string]int{}},
		controllers: map[ObjectRef]*controller{},
		ownedPods:   map[WorkloadID]bool{},
		warned:      map[string]bool{},
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	for k, v := range o.Ignored {
		b.s.Ignored[k] = v
	}
	for _, w := range o.Warnings {
		b.warn("%s", w)
	}
	b.namespaces()
	b.indexControllers()
	b.pods()
	b.rootWorkloads()
	b.podWorkloads()
	b.services()
	b.ingresses()
	b.networkPolicies()
	b.referencedNamespaces()

	for w := range b.warned {
		b.s.Warnings = append(b.s.Warnings, w)
	}
	sort.Strings(b.s.Warnings)
	b.s.Index()
	return b.s, nil
}

type builder struct {
	o           *Objects
	s           *Snapshot
	controllers map[ObjectRef]*controller
	// ownedPods marks ownership identities (annotations aside) that have pods.
	ownedPods map[WorkloadID]bool
	intents   []*intents.ClientIntents
	warned    map[string]bool
}

func (b *builder) warn(format string, args ...any) { b.warned[fmt.Sprintf(format, args...)] = true }

func (b *builder) source(ref ObjectRef) Source { return b.o.Sources[ref] }

// each visits every object with its kind, in a fixed order.
func (o *Objects) each(fn func(kind string, obj metav1.Object)) {
	for _, x := range o.Namespaces {
		fn("Namespace", x)
	}
	for _, x := range o.Pods {
		fn("Pod", x)
	}
	for _, x := range o.Deployments {
		fn("Deployment", x)
	}
	for _, x := range o.StatefulSets {
		fn("StatefulSet", x)
	}
	for _, x := range o.DaemonSets {
		fn("DaemonSet", x)
	}
	for _, x := range o.ReplicaSets {
		fn("ReplicaSet", x)
	}
	for _, x := range o.Jobs {
		fn("Job", x)
	}
	for _, x := range o.CronJobs {
		fn("CronJob", x)
	}
	for _, x := range o.Services {
		fn("Service", x)
	}
	for _, x := range o.Ingresses {
		fn("Ingress", x)
	}
	for _, x := range o.NetworkPolicies {
		fn("NetworkPolicy", x)
	}
	for _, x := range o.ClientIntents {
		fn("ClientIntents", x)
	}
}

func refOf(kind string, obj metav1.Object) ObjectRef {
	ns := obj.GetNamespace()
	switch {
	case kind == "Namespace":
		ns = ""
	case ns == "":
		ns = intents.DefaultNamespace
	}
	return ObjectRef{Kind: kind, Namespace: ns, Name: obj.GetName()}
}

// check validates every object and parses the ClientIntents.
func (b *builder) check() error {
	var errs []*ObjectError
	seen := map[ObjectRef]bool{}
	b.o.each(func(kind string, obj metav1.Object) {
		ref := refOf(kind, obj)
		src := b.source(ref)
		fail := func(err error) {
			file := src.File
			if file == "" {
				file = "cluster"
			}
			errs = append(errs, &ObjectError{File: file, Document: src.Document, Line: src.Line, Object: ref.String(), Err: err})
		}
		if seen[ref] {
			fail(fmt.Errorf("duplicate object"))
			return
		}
		seen[ref] = true
		fieldErrs := validate(kind, obj)
		for _, e := range fieldErrs {
			fail(e)
		}
		if u, ok := obj.(*unstructured.Unstructured); ok && len(fieldErrs) == 0 {
			ci, notices, err := intents.FromUnstructured(u)
			if err != nil {
				fail(err)
				return
			}
			ci.Origin = src.String()
			b.intents = append(b.intents, ci)
			for _, n := range notices {
				b.warn("%s: %s", src, n)
			}
		}
	})
	if len(errs) > 0 {
		return joinSorted(errs)
	}
	sort.Slice(b.intents, func(i, j int) bool { return b.intents[i].Key() < b.intents[j].Key() })
	b.s.Intents = b.intents
	return nil
}

func (b *builder) namespaces() {
	for _, ns := range b.o.Namespaces {
		l := labels.Set{}
		for k, v := range ns.Labels {
			l[k] = v
		}
		// The API server sets this label on every namespace; policies select on it.
		l[corev1.LabelMetadataName] = ns.Name
		b.s.Namespaces[ns.Name] = &Namespace{Name: ns.Name, Labels: l}
	}
}

func (b *builder) referencedNamespaces() {
	b.o.each(func(kind string, obj metav1.Object) {
		if kind == "Namespace" {
			return
		}
		ns := refOf(kind, obj).Namespace
		if _, ok := b.s.Namespaces[ns]; !ok {
			b.s.Namespaces[ns] = SynthesizeNamespace(ns)
		}
	})
}

// controller is a pod controller present in the snapshot.
type controller struct {
	ref    ObjectRef
	owners []metav1.OwnerReference
	group  string
	// selector selects the controller's pods: spec.selector, or the pod template
	// labels for Jobs without one and for CronJobs; nil when there is neither.
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
	replicas int32
	src      Source
}

func (b *builder) addController(kind, group string, obj metav1.Object, sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, replicas *int32) {
	ref := refOf(kind, obj)
	c := &controller{ref: ref, owners: obj.GetOwnerReferences(), group: group, template: tmpl, replicas: 1, src: b.source(ref)}
	if replicas != nil {
		c.replicas = *replicas
	}
	switch {
	case sel != nil:
		c.selector = sel.DeepCopy()
	case len(tmpl.Labels) > 0:
		c.selector = &metav1.LabelSelector{MatchLabels: copyLabels(tmpl.Labels)}
	default:
		b.warn("%s: %s has no selector and its pod template no labels; its pods cannot be selected by label", c.src, ref)
	}
	b.controllers[ref] = c
}

func (b *builder) indexControllers() {
	for _, x := range b.o.Deployments {
		b.addController("Deployment", appsv1.GroupName, x, x.Spec.Selector, &x.Spec.Template, x.Spec.Replicas)
	}
	for _, x := range b.o.StatefulSets {
		b.addController("StatefulSet", appsv1.GroupName, x, x.Spec.Selector, &x.Spec.Template, x.Spec.Replicas)
	}
	for _, x := range b.o.DaemonSets {
		b.addController("DaemonSet", appsv1.GroupName, x, x.Spec.Selector, &x.Spec.Template, nil)
	}
	for _, x := range b.o.ReplicaSets {
		b.addController("ReplicaSet", appsv1.GroupName, x, x.Spec.Selector, &x.Spec.Template, x.Spec.Replicas)
	}
	for _, x := range b.o.Jobs {
		b.addController("Job", batchv1.GroupName, x, x.Spec.Selector, &x.Spec.Template, x.Spec.Parallelism)
	}
	for _, x := range b.o.CronJobs {
		b.addController("CronJob", batchv1.GroupName, x, nil, &x.Spec.JobTemplate.Spec.Template, nil)
	}
}

// ownerOf picks the reference Otterize follows: the controller, else the first.
func ownerOf(owners []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range owners {
		if owners[i].Controller != nil && *owners[i].Controller {
			return &owners[i]
		}
	}
	if len(owners) > 0 {
		return &owners[0]
	}
	return nil
}

func groupOf(apiVersion string) string {
	if g, _, ok := strings.Cut(apiVersion, "/"); ok {
		return g
	}
	return ""
}

// identity is the Otterize identity of an object: dots become underscores.
func identity(ns, kind, name string) WorkloadID {
	return WorkloadID{Namespace: ns, Name: strings.ReplaceAll(name, ".", "_"), Kind: kind}
}

// resolution is where an ownership chain leads.
type resolution struct {
	id WorkloadID
	// top is the highest controller of the chain present in the snapshot, nil if none.
	top *controller
	// exact is set when top is the root itself; standIn when top is a ReplicaSet whose
	// Deployment is missing. Otherwise top's selector does not describe the identity.
	exact, standIn bool
}

// walk follows owner references from self (whose own controller record, if any, is
// top) to the root.
func (b *builder) walk(self ObjectRef, owners []metav1.OwnerReference, top *controller, hash string) resolution {
	ns, cur := self.Namespace, self
	visited := map[ObjectRef]bool{self: true}
	for {
		ref := ownerOf(owners)
		if ref == nil {
			return resolution{id: identity(ns, cur.Kind, cur.Name), top: top, exact: top != nil}
		}
		oref := ObjectRef{Kind: ref.Kind, Namespace: ns, Name: ref.Name}
		c := b.controllers[oref]
		if c != nil && c.group != groupOf(ref.APIVersion) {
			c = nil // same kind name, another API group (a CRD)
		}
		if c == nil {
			src := b.source(cur)
			if cur.Kind == "Pod" && ref.Kind == "ReplicaSet" && groupOf(ref.APIVersion) == appsv1.GroupName &&
				hash != "" && strings.HasSuffix(ref.Name, "-"+hash) && len(ref.Name) > len(hash)+1 {
				dep := strings.TrimSuffix(ref.Name, "-"+hash)
				b.warn("%s: %s: owner %s is not in the snapshot; identity inferred from label %s=%s as Deployment %s/%s",
					src, cur, oref, appsv1.DefaultDeploymentUniqueLabelKey, hash, ns, dep)
				return resolution{id: identity(ns, "Deployment", dep)}
			}
			b.warn("%s: %s: owner %s is not in the snapshot; the owner reference is used as the identity", src, cur, oref)
			standIn := top != nil && top.ref.Kind == "ReplicaSet" && ref.Kind == "Deployment" && groupOf(ref.APIVersion) == appsv1.GroupName
			return resolution{id: identity(ns, ref.Kind, ref.Name), top: top, standIn: standIn}
		}
		if visited[oref] {
			b.warn("%s: %s: ownership cycle through %s; %s is used as the identity", b.source(self), self, oref, cur)
			return resolution{id: identity(ns, cur.Kind, cur.Name), top: top, exact: top != nil && top.ref == cur}
		}
		visited[oref] = true
		cur, owners, top = oref, c.owners, c
	}
}

// selector is how the resolved identity's pods are selected, when known.
func (r resolution) selector() *metav1.LabelSelector {
	switch {
	case r.top == nil || r.top.selector == nil:
		return nil
	case r.exact:
		return r.top.selector.DeepCopy()
	case r.standIn:
		return withoutHash(r.top.selector)
	}
	return nil
}

// withoutHash drops pod-template-hash, which the Deployment controller adds to each
// ReplicaSet's selector, leaving the Deployment's own selector.
func withoutHash(sel *metav1.LabelSelector) *metav1.LabelSelector {
	out := sel.DeepCopy()
	delete(out.MatchLabels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(out.MatchLabels) == 0 {
		out.MatchLabels = nil
	}
	return out
}

// annotatedName returns the identity a pod (or template) names by annotation.
func annotatedName(ann map[string]string) (string, bool) {
	for _, k := range []string{AnnotationWorkloadName, AnnotationServiceName} {
		if v, ok := ann[k]; ok && v != "" {
			return v, true
		}
	}
	return "", false
}

func (b *builder) pods() {
	pods := append([]*corev1.Pod(nil), b.o.Pods...)
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	ipOwner := map[netip.Addr]string{}
	for _, p := range pods {
		ref := refOf("Pod", p)
		src := b.source(ref)
		pod := &Pod{
			Namespace:   ref.Namespace,
			Name:        p.Name,
			Labels:      copyLabels(p.Labels),
			NodeName:    p.Spec.NodeName,
			HostNetwork: p.Spec.HostNetwork,
			Ports:       containerPorts(&p.Spec),
			Origin:      src.String(),
		}
		pod.HostIP = hostIP(p)
		terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if !terminal {
			pod.IPs = podIPs(p)
			if len(pod.IPs) == 0 && !pod.HostNetwork {
				b.warn("%s: %s has no IP address; flows cannot be attributed to it", src, ref)
			}
		}
		if !pod.HostNetwork {
			for _, ip := range pod.IPs {
				if first, ok := ipOwner[ip]; ok {
					b.warn("pods %s and %s both have IP %s; flows to it are attributed to %s", first, pod.Key(), ip, pod.Key())
				}
				ipOwner[ip] = pod.Key()
			}
		}
		res := b.walk(ref, p.OwnerReferences, nil, p.Labels[appsv1.DefaultDeploymentUniqueLabelKey])
		b.ownedPods[res.id] = true
		if name, ok := annotatedName(p.Annotations); ok {
			pod.Workload = WorkloadID{Namespace: ref.Namespace, Name: name}
		} else {
			pod.Workload = res.id
			pod.Selector = res.selector()
		}
		b.s.Pods = append(b.s.Pods, pod)
	}
}

// rootWorkloads records every controller at the top of its chain, and synthesizes a
// pod for those without one.
func (b *builder) rootWorkloads() {
	type root struct {
		c   *controller
		res resolution
	}
	byID := map[WorkloadID]root{}
	refs := make([]ObjectRef, 0, len(b.controllers))
	for ref := range b.controllers {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, ref := range refs {
		c := b.controllers[ref]
		res := b.walk(ref, c.owners, c, "")
		if res.top != c {
			continue // a controller above it is present
		}
		// Several tops share an identity when ReplicaSets stand in for one missing
		// Deployment: the one with most replicas (the current one) speaks for it.
		if prev, ok := byID[res.id]; ok && prev.c.replicas >= c.replicas {
			continue
		}
		byID[res.id] = root{c: c, res: res}
	}
	ids := make([]WorkloadID, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	for _, id := range ids {
		r := byID[id]
		tmplLabels := copyLabels(r.c.template.Labels)
		if r.res.standIn {
			delete(tmplLabels, appsv1.DefaultDeploymentUniqueLabelKey)
		}
		w := &Workload{
			ID:          id,
			Selector:    r.res.selector(),
			Template:    tmplLabels,
			Ports:       containerPorts(&r.c.template.Spec),
			HostNetwork: r.c.template.Spec.HostNetwork,
			Origin:      r.c.src.String(),
		}
		b.s.Workloads[id] = w
		if !b.ownedPods[id] {
			b.synthesize(r.c, w)
		}
	}
}

func (b *builder) synthesize(c *controller, w *Workload) {
	pod := &Pod{
		Namespace:   c.ref.Namespace,
		Name:        c.ref.Name + SynthesizedSuffix,
		Labels:      copyLabels(w.Template),
		HostNetwork: w.HostNetwork,
		Ports:       containerPorts(&c.template.Spec),
		Workload:    w.ID,
		Selector:    w.Selector.DeepCopy(),
		Synthesized: true,
		Origin:      w.Origin,
	}
	if name, ok := annotatedName(c.template.Annotations); ok {
		pod.Workload, pod.Selector = WorkloadID{Namespace: c.ref.Namespace, Name: name}, nil
	}
	for _, p := range b.s.Pods {
		if p.Key() == pod.Key() {
			b.warn("%s: %s: a pod named %s exists; no pod synthesized for the workload", c.src, c.ref, pod.Key())
			return
		}
	}
	b.s.Pods = append(b.s.Pods, pod)
}

// podWorkloads gives identities known only from pods (bare pods, annotations, missing
// owners) a Workload, described by their first pod.
func (b *builder) podWorkloads() {
	sort.Slice(b.s.Pods, func(i, j int) bool { return b.s.Pods[i].Key() < b.s.Pods[j].Key() })
	for _, p := range b.s.Pods {
		if _, ok := b.s.Workloads[p.Workload]; ok {
			continue
		}
		// pod-template-hash names one ReplicaSet's revision, not the workload.
		tmpl := copyLabels(p.Labels)
		delete(tmpl, appsv1.DefaultDeploymentUniqueLabelKey)
		b.s.Workloads[p.Workload] = &Workload{
			ID:          p.Workload,
			Template:    tmpl,
			Ports:       append([]ContainerPort(nil), p.Ports...),
			HostNetwork: p.HostNetwork,
			Origin:      p.Origin,
		}
	}
}

// containerPorts lists the ports of the containers and of the sidecars (init
// containers with restartPolicy Always, which run alongside them).
func containerPorts(spec *corev1.PodSpec) []ContainerPort {
	var out []ContainerPort
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, ContainerPort{Name: p.Name, Port: p.ContainerPort, Protocol: proto})
		}
	}
	for i := range spec.InitContainers {
		if rp := spec.InitContainers[i].RestartPolicy; rp != nil && *rp == corev1.ContainerRestartPolicyAlways {
			add(&spec.InitContainers[i])
		}
	}
	for i := range spec.Containers {
		add(&spec.Containers[i])
	}
	return out
}

// podIPs reads status.podIPs, else status.podIP. Validation has rejected bad addresses.
func podIPs(p *corev1.Pod) []netip.Addr {
	var raw []string
	for _, ip := range p.Status.PodIPs {
		raw = append(raw, ip.IP)
	}
	if len(raw) == 0 && p.Status.PodIP != "" {
		raw = []string{p.Status.PodIP}
	}
	var out []netip.Addr
	for _, s := range raw {
		if a, err := netip.ParseAddr(s); err == nil && !containsAddr(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func hostIP(p *corev1.Pod) netip.Addr {
	s := p.Status.HostIP
	if s == "" && len(p.Status.HostIPs) > 0 {
		s = p.Status.HostIPs[0].IP
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func copyLabels(in map[string]string) labels.Set {
	if in == nil {
		return nil
	}
	out := make(labels.Set, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (b *builder) services() {
	for _, x := range b.o.Services {
		ref := refOf("Service", x)
		svc := &Service{
			Namespace: ref.Namespace,
			Name:      x.Name,
			Type:      x.Spec.Type,
			Origin:    b.source(ref).String(),
		}
		if svc.Type == "" {
			svc.Type = corev1.ServiceTypeClusterIP
		}
		if len(x.Spec.Selector) > 0 {
			svc.Selector = copyLabels(x.Spec.Selector)
		}
		for _, p := range x.Spec.Ports {
			p = *p.DeepCopy()
			if p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
			if p.TargetPort == (intstr.IntOrString{}) {
				p.TargetPort = intstr.FromInt32(p.Port)
			}
			svc.Ports = append(svc.Ports, p)
		}
		ips := x.Spec.ClusterIPs
		if len(ips) == 0 && x.Spec.ClusterIP != "" {
			ips = []string{x.Spec.ClusterIP}
		}
		for _, s := range ips {
			if a, err := netip.ParseAddr(s); err == nil {
				svc.ClusterIPs = append(svc.ClusterIPs, a.Unmap())
			}
		}
		b.s.Services = append(b.s.Services, svc)
	}
	sort.Slice(b.s.Services, func(i, j int) bool {
		a, c := b.s.Services[i], b.s.Services[j]
		return a.Namespace < c.Namespace || (a.Namespace == c.Namespace && a.Name < c.Name)
	})
}

func (b *builder) ingresses() {
	for _, x := range b.o.Ingresses {
		ref := refOf("Ingress", x)
		ing := &Ingress{Namespace: ref.Namespace, Name: x.Name, Origin: b.source(ref).String()}
		add := func(be *networkingv1.IngressBackend) {
			if be == nil || be.Service == nil {
				return // resource backends are not Services
			}
			nb := IngressBackend{Service: be.Service.Name, Port: be.Service.Port}
			for _, have := range ing.Backends {
				if have == nb {
					return
				}
			}
			ing.Backends = append(ing.Backends, nb)
		}
		add(x.Spec.DefaultBackend)
		for _, rule := range x.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for i := range rule.HTTP.Paths {
				add(&rule.HTTP.Paths[i].Backend)
			}
		}
		b.s.Ingresses = append(b.s.Ingresses, ing)
	}
	sort.Slice(b.s.Ingresses, func(i, j int) bool {
		a, c := b.s.Ingresses[i], b.s.Ingresses[j]
		return a.Namespace < c.Namespace || (a.Namespace == c.Namespace && a.Name < c.Name)
	})
}

func (b *builder) networkPolicies() {
	for _, x := range b.o.NetworkPolicies {
		np := x.DeepCopy()
		np.Namespace = refOf("NetworkPolicy", x).Namespace
		DefaultNetworkPolicy(np)
		b.s.NetworkPolicies = append(b.s.NetworkPolicies, np)
	}
	sort.Slice(b.s.NetworkPolicies, func(i, j int) bool {
		a, c := b.s.NetworkPolicies[i], b.s.NetworkPolicies[j]
		return a.Namespace < c.Namespace || (a.Namespace == c.Namespace && a.Name < c.Name)
	})
}

// DefaultNetworkPolicy applies the API server's defaults in place: policyTypes from the
// rules when unset, and TCP for ports without a protocol.
func DefaultNetworkPolicy(np *networkingv1.NetworkPolicy) {
	if len(np.Spec.PolicyTypes) == 0 {
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	tcp := func(ports []networkingv1.NetworkPolicyPort) {
		for i := range ports {
			if ports[i].Protocol == nil {
				p := corev1.ProtocolTCP
				ports[i].Protocol = &p
			}
		}
	}
	for i := range np.Spec.Ingress {
		tcp(np.Spec.Ingress[i].Ports)
	}
	for i := range np.Spec.Egress {
		tcp(np.Spec.Egress[i].Ports)
	}
}
