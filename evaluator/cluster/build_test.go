package cluster

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

type objMod func(metav1.Object)

func owned(apiVersion, kind, name string) objMod {
	return func(o metav1.Object) {
		o.SetOwnerReferences(append(o.GetOwnerReferences(), metav1.OwnerReference{
			APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: ptr.To(true)}))
	}
}

func annotated(k, v string) objMod {
	return func(o metav1.Object) {
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[k] = v
		o.SetAnnotations(a)
	}
}

func labeled(kv ...string) objMod {
	return func(o metav1.Object) {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		o.SetLabels(l)
	}
}

func apply(o metav1.Object, mods []objMod) {
	for _, m := range mods {
		m(o)
	}
}

func newPod(ns, name, ip string, mods ...objMod) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
	apply(p, mods)
	return p
}

func template(lbls map[string]string, mods ...objMod) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbls},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "i", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
	apply(&t, mods)
	return t
}

func match(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func newDeployment(ns, name string, replicas int32, mods ...objMod) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas), Selector: match("app", name),
			Template: template(map[string]string{"app": name}),
		},
	}
	apply(d, mods)
	return d
}

func newReplicaSet(ns, name, app, hash string, replicas int32, mods ...objMod) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app, "pod-template-hash": hash}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: match("app", app, "pod-template-hash", hash),
			Template: template(map[string]string{"app": app, "pod-template-hash": hash}),
		},
	}
	apply(rs, mods)
	return rs
}

func mustBuild(t *testing.T, o *Objects) *Snapshot {
	t.Helper()
	s, err := Build(o)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return s
}

func TestIdentityResolution(t *testing.T) {
	const ns = "shop"
	cases := map[string]struct {
		objs         Objects
		pod          string
		wantID       WorkloadID
		wantSelector *metav1.LabelSelector
		wantWarnings []string
	}{
		"workload-name annotation overrides the owner chain": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "cart", 1)},
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "cart-abc", "cart", "abc", 1, owned("apps/v1", "Deployment", "cart"))},
				Pods:        []*corev1.Pod{newPod(ns, "cart-abc-1", "10.0.0.1", owned("apps/v1", "ReplicaSet", "cart-abc"), annotated(AnnotationWorkloadName, "cart-api"))},
			},
			pod:    "cart-abc-1",
			wantID: WorkloadID{Namespace: ns, Name: "cart-api"},
		},
		"deprecated service-name annotation": {
			objs:   Objects{Pods: []*corev1.Pod{newPod(ns, "p", "10.0.0.1", annotated(AnnotationServiceName, "legacy"))}},
			pod:    "p",
			wantID: WorkloadID{Namespace: ns, Name: "legacy"},
		},
		"workload-name wins over the deprecated annotation": {
			objs: Objects{Pods: []*corev1.Pod{newPod(ns, "p", "10.0.0.1",
				annotated(AnnotationServiceName, "legacy"), annotated(AnnotationWorkloadName, "current"))}},
			pod:    "p",
			wantID: WorkloadID{Namespace: ns, Name: "current"},
		},
		"empty annotation is no override": {
			objs:   Objects{Pods: []*corev1.Pod{newPod(ns, "p", "10.0.0.1", annotated(AnnotationWorkloadName, ""))}},
			pod:    "p",
			wantID: WorkloadID{Namespace: ns, Name: "p", Kind: "Pod"},
		},
		"ReplicaSet to Deployment": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "cart", 2)},
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "cart-abc", "cart", "abc", 2, owned("apps/v1", "Deployment", "cart"))},
				Pods:        []*corev1.Pod{newPod(ns, "cart-abc-1", "10.0.0.1", owned("apps/v1", "ReplicaSet", "cart-abc"), labeled("app", "cart", "pod-template-hash", "abc"))},
			},
			pod:          "cart-abc-1",
			wantID:       WorkloadID{Namespace: ns, Name: "cart", Kind: "Deployment"},
			wantSelector: match("app", "cart"),
		},
		"Job to CronJob, selected by the job template's labels": {
			objs: Objects{
				CronJobs: []*batchv1.CronJob{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "report"},
					Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
						Template: template(map[string]string{"app": "report"}),
					}}},
				}},
				Jobs: []*batchv1.Job{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "report-1", OwnerReferences: []metav1.OwnerReference{
						{APIVersion: "batch/v1", Kind: "CronJob", Name: "report", Controller: ptr.To(true)}}},
					Spec: batchv1.JobSpec{Template: template(map[string]string{"app": "report"})},
				}},
				Pods: []*corev1.Pod{newPod(ns, "report-1-x", "10.0.0.1", owned("batch/v1", "Job", "report-1"))},
			},
			pod:          "report-1-x",
			wantID:       WorkloadID{Namespace: ns, Name: "report", Kind: "CronJob"},
			wantSelector: match("app", "report"),
		},
		"StatefulSet": {
			objs: Objects{
				StatefulSets: []*appsv1.StatefulSet{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
					Spec:       appsv1.StatefulSetSpec{Selector: match("app", "db"), Template: template(map[string]string{"app": "db"})},
				}},
				Pods: []*corev1.Pod{newPod(ns, "db-0", "10.0.0.1", owned("apps/v1", "StatefulSet", "db"))},
			},
			pod:          "db-0",
			wantID:       WorkloadID{Namespace: ns, Name: "db", Kind: "StatefulSet"},
			wantSelector: match("app", "db"),
		},
		"DaemonSet": {
			objs: Objects{
				DaemonSets: []*appsv1.DaemonSet{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
					Spec:       appsv1.DaemonSetSpec{Selector: match("app", "agent"), Template: template(map[string]string{"app": "agent"})},
				}},
				Pods: []*corev1.Pod{newPod(ns, "agent-x", "10.0.0.1", owned("apps/v1", "DaemonSet", "agent"))},
			},
			pod:          "agent-x",
			wantID:       WorkloadID{Namespace: ns, Name: "agent", Kind: "DaemonSet"},
			wantSelector: match("app", "agent"),
		},
		"ReplicaSet without owner is the root": {
			objs: Objects{
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "solo", "solo", "h", 1)},
				Pods:        []*corev1.Pod{newPod(ns, "solo-1", "10.0.0.1", owned("apps/v1", "ReplicaSet", "solo"))},
			},
			pod:          "solo-1",
			wantID:       WorkloadID{Namespace: ns, Name: "solo", Kind: "ReplicaSet"},
			wantSelector: match("app", "solo", "pod-template-hash", "h"),
		},
		"missing ReplicaSet: Deployment inferred from pod-template-hash": {
			objs: Objects{Pods: []*corev1.Pod{newPod(ns, "cart-5d9f8b7c4-x", "10.0.0.1",
				owned("apps/v1", "ReplicaSet", "cart-5d9f8b7c4"), labeled("pod-template-hash", "5d9f8b7c4"))}},
			pod:    "cart-5d9f8b7c4-x",
			wantID: WorkloadID{Namespace: ns, Name: "cart", Kind: "Deployment"},
			wantWarnings: []string{"cluster: Pod shop/cart-5d9f8b7c4-x: owner ReplicaSet shop/cart-5d9f8b7c4 is not in the snapshot; " +
				"identity inferred from label pod-template-hash=5d9f8b7c4 as Deployment shop/cart"},
		},
		"missing ReplicaSet whose name does not end in the hash is the identity": {
			objs: Objects{Pods: []*corev1.Pod{newPod(ns, "x", "10.0.0.1",
				owned("apps/v1", "ReplicaSet", "handmade"), labeled("pod-template-hash", "5d9f8b7c4"))}},
			pod:          "x",
			wantID:       WorkloadID{Namespace: ns, Name: "handmade", Kind: "ReplicaSet"},
			wantWarnings: []string{"cluster: Pod shop/x: owner ReplicaSet shop/handmade is not in the snapshot; the owner reference is used as the identity"},
		},
		"ReplicaSet present without its Deployment stands in for it": {
			objs: Objects{
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "cart-abc", "cart", "abc", 2, owned("apps/v1", "Deployment", "cart"))},
				Pods:        []*corev1.Pod{newPod(ns, "cart-abc-1", "10.0.0.1", owned("apps/v1", "ReplicaSet", "cart-abc"))},
			},
			pod:          "cart-abc-1",
			wantID:       WorkloadID{Namespace: ns, Name: "cart", Kind: "Deployment"},
			wantSelector: match("app", "cart"),
			wantWarnings: []string{"cluster: ReplicaSet shop/cart-abc: owner Deployment shop/cart is not in the snapshot; the owner reference is used as the identity"},
		},
		"missing Job owner": {
			objs:         Objects{Pods: []*corev1.Pod{newPod(ns, "j-x", "10.0.0.1", owned("batch/v1", "Job", "j"))}},
			pod:          "j-x",
			wantID:       WorkloadID{Namespace: ns, Name: "j", Kind: "Job"},
			wantWarnings: []string{"cluster: Pod shop/j-x: owner Job shop/j is not in the snapshot; the owner reference is used as the identity"},
		},
		"bare pod": {
			objs:   Objects{Pods: []*corev1.Pod{newPod(ns, "debug", "10.0.0.1")}},
			pod:    "debug",
			wantID: WorkloadID{Namespace: ns, Name: "debug", Kind: "Pod"},
		},
		"host-network pod keeps its owner's identity": {
			objs: Objects{
				DaemonSets: []*appsv1.DaemonSet{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
					Spec:       appsv1.DaemonSetSpec{Selector: match("app", "agent"), Template: template(map[string]string{"app": "agent"})},
				}},
				Pods: []*corev1.Pod{func() *corev1.Pod {
					p := newPod(ns, "agent-x", "10.0.0.11", owned("apps/v1", "DaemonSet", "agent"))
					p.Spec.HostNetwork = true
					return p
				}()},
			},
			pod:          "agent-x",
			wantID:       WorkloadID{Namespace: ns, Name: "agent", Kind: "DaemonSet"},
			wantSelector: match("app", "agent"),
		},
		"dots in resolved names become underscores, as Otterize does": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "web.v2", 1)},
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "web.v2-abc", "web.v2", "abc", 1, owned("apps/v1", "Deployment", "web.v2"))},
				Pods:        []*corev1.Pod{newPod(ns, "web.v2-abc-1", "10.0.0.1", owned("apps/v1", "ReplicaSet", "web.v2-abc"))},
			},
			pod:          "web.v2-abc-1",
			wantID:       WorkloadID{Namespace: ns, Name: "web_v2", Kind: "Deployment"},
			wantSelector: match("app", "web.v2"),
		},
		"first owner reference when none is the controller": {
			objs: Objects{
				StatefulSets: []*appsv1.StatefulSet{{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
					Spec:       appsv1.StatefulSetSpec{Selector: match("app", "db"), Template: template(map[string]string{"app": "db"})},
				}},
				Pods: []*corev1.Pod{func() *corev1.Pod {
					p := newPod(ns, "db-0", "10.0.0.1")
					p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"}}
					return p
				}()},
			},
			pod:          "db-0",
			wantID:       WorkloadID{Namespace: ns, Name: "db", Kind: "StatefulSet"},
			wantSelector: match("app", "db"),
		},
		"an owner of another API group is not the apps kind of the same name": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "cart", 1)},
				Pods:        []*corev1.Pod{newPod(ns, "cart-x", "10.0.0.1", owned("example.com/v1", "Deployment", "cart"))},
			},
			pod:          "cart-x",
			wantID:       WorkloadID{Namespace: ns, Name: "cart", Kind: "Deployment"},
			wantWarnings: []string{"cluster: Pod shop/cart-x: owner Deployment shop/cart is not in the snapshot; the owner reference is used as the identity"},
		},
		"ownership cycle stops at the last object before it": {
			objs: Objects{
				ReplicaSets: []*appsv1.ReplicaSet{
					newReplicaSet(ns, "a", "x", "h", 1, owned("apps/v1", "ReplicaSet", "b")),
					newReplicaSet(ns, "b", "x", "h", 1, owned("apps/v1", "ReplicaSet", "a")),
				},
				Pods: []*corev1.Pod{newPod(ns, "p", "10.0.0.1", owned("apps/v1", "ReplicaSet", "a"))},
			},
			pod:          "p",
			wantID:       WorkloadID{Namespace: ns, Name: "b", Kind: "ReplicaSet"},
			wantSelector: match("app", "x", "pod-template-hash", "h"),
			wantWarnings: []string{
				"cluster: Pod shop/p: ownership cycle through ReplicaSet shop/a; ReplicaSet shop/b is used as the identity",
				"cluster: ReplicaSet shop/a: ownership cycle through ReplicaSet shop/a; ReplicaSet shop/b is used as the identity",
				"cluster: ReplicaSet shop/b: ownership cycle through ReplicaSet shop/b; ReplicaSet shop/a is used as the identity",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := mustBuild(t, &tc.objs)
			p := s.Pod(ns, tc.pod)
			if p == nil {
				t.Fatalf("pod %s/%s not in snapshot", ns, tc.pod)
			}
			if diff := cmp.Diff(tc.wantID, p.Workload); diff != "" {
				t.Errorf("workload (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSelector, p.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, s.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if _, ok := s.Workloads[tc.wantID]; !ok {
				t.Errorf("identity %s has no Workload", tc.wantID)
			}
		})
	}
}

func TestSynthesizedPods(t *testing.T) {
	const ns = "shop"
	cronJob := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "report"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: template(map[string]string{"app": "report"}),
		}}},
	}
	completedJob := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "report-1", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "batch/v1", Kind: "CronJob", Name: "report", Controller: ptr.To(true)}}},
		Spec: batchv1.JobSpec{Template: template(map[string]string{"app": "report"})},
	}
	httpPort := []ContainerPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}
	cases := map[string]struct {
		objs         Objects
		want         []*Pod // synthesized pods only
		wantWarnings []string
	}{
		"a Deployment alone gets one pod from its template": {
			objs: Objects{Deployments: []*appsv1.Deployment{newDeployment(ns, "web", 3)}},
			want: []*Pod{{
				Namespace: ns, Name: "web-synthesized", Labels: labels.Set{"app": "web"}, Ports: httpPort,
				Workload: WorkloadID{Namespace: ns, Name: "web", Kind: "Deployment"}, Selector: match("app", "web"),
				Synthesized: true, Origin: "cluster",
			}},
		},
		"a Deployment with pods gets none": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "web", 1)},
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "web-abc", "web", "abc", 1, owned("apps/v1", "Deployment", "web"))},
				Pods:        []*corev1.Pod{newPod(ns, "web-abc-1", "10.0.0.1", owned("apps/v1", "ReplicaSet", "web-abc"))},
			},
		},
		"pods named by annotation still count as the Deployment's": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "web", 1)},
				ReplicaSets: []*appsv1.ReplicaSet{newReplicaSet(ns, "web-abc", "web", "abc", 1, owned("apps/v1", "Deployment", "web"))},
				Pods: []*corev1.Pod{newPod(ns, "web-abc-1", "10.0.0.1",
					owned("apps/v1", "ReplicaSet", "web-abc"), annotated(AnnotationWorkloadName, "frontend"))},
			},
		},
		"a CronJob whose Jobs have no pods gets one pod, its Jobs none": {
			objs: Objects{CronJobs: []*batchv1.CronJob{cronJob}, Jobs: []*batchv1.Job{completedJob}},
			want: []*Pod{{
				Namespace: ns, Name: "report-synthesized", Labels: labels.Set{"app": "report"}, Ports: httpPort,
				Workload: WorkloadID{Namespace: ns, Name: "report", Kind: "CronJob"}, Selector: match("app", "report"),
				Synthesized: true, Origin: "cluster",
			}},
		},
		"the template's workload-name annotation names the pod's identity": {
			objs: Objects{Deployments: []*appsv1.Deployment{func() *appsv1.Deployment {
				d := newDeployment(ns, "web", 1)
				d.Spec.Template.Annotations = map[string]string{AnnotationWorkloadName: "storefront"}
				return d
			}()}},
			want: []*Pod{{
				Namespace: ns, Name: "web-synthesized", Labels: labels.Set{"app": "web"}, Ports: httpPort,
				Workload: WorkloadID{Namespace: ns, Name: "storefront"}, Synthesized: true, Origin: "cluster",
			}},
		},
		"ReplicaSets standing in for one Deployment: one pod, from the one with most replicas": {
			objs: Objects{ReplicaSets: []*appsv1.ReplicaSet{
				newReplicaSet(ns, "web-new", "web", "new", 3, owned("apps/v1", "Deployment", "web")),
				newReplicaSet(ns, "web-old", "web", "old", 0, owned("apps/v1", "Deployment", "web")),
			}},
			want: []*Pod{{
				Namespace: ns, Name: "web-new-synthesized", Labels: labels.Set{"app": "web"}, Ports: httpPort,
				Workload: WorkloadID{Namespace: ns, Name: "web", Kind: "Deployment"}, Selector: match("app", "web"),
				Synthesized: true, Origin: "cluster",
			}},
			wantWarnings: []string{
				"cluster: ReplicaSet shop/web-new: owner Deployment shop/web is not in the snapshot; the owner reference is used as the identity",
				"cluster: ReplicaSet shop/web-old: owner Deployment shop/web is not in the snapshot; the owner reference is used as the identity",
			},
		},
		"a host-network DaemonSet": {
			objs: Objects{DaemonSets: []*appsv1.DaemonSet{{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
				Spec: appsv1.DaemonSetSpec{Selector: match("app", "agent"), Template: func() corev1.PodTemplateSpec {
					t := template(map[string]string{"app": "agent"})
					t.Spec.HostNetwork = true
					return t
				}()},
			}}},
			want: []*Pod{{
				Namespace: ns, Name: "agent-synthesized", Labels: labels.Set{"app": "agent"}, Ports: httpPort, HostNetwork: true,
				Workload: WorkloadID{Namespace: ns, Name: "agent", Kind: "DaemonSet"}, Selector: match("app", "agent"),
				Synthesized: true, Origin: "cluster",
			}},
		},
		"a pod already holding the name blocks synthesis": {
			objs: Objects{
				Deployments: []*appsv1.Deployment{newDeployment(ns, "web", 1)},
				Pods:        []*corev1.Pod{newPod(ns, "web-synthesized", "10.0.0.9")},
			},
			wantWarnings: []string{"cluster: Deployment shop/web: a pod named shop/web-synthesized exists; no pod synthesized for the workload"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := mustBuild(t, &tc.objs)
			var got []*Pod
			for _, p := range s.Pods {
				if p.Synthesized {
					got = append(got, p)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpAddr, cmp.AllowUnexported(Pod{})); diff != "" {
				t.Errorf("synthesized pods (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, s.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if _, ok := s.Workloads[p.Workload]; !ok {
					t.Errorf("synthesized pod %s: identity %s has no Workload", p.Key(), p.Workload)
				}
			}
		})
	}
}

func TestBuildPods(t *testing.T) {
	const ns = "shop"
	always := corev1.ContainerRestartPolicyAlways
	withStatus := func(p *corev1.Pod, st corev1.PodStatus) *corev1.Pod { p.Status = st; return p }
	cases := map[string]struct {
		pod          *corev1.Pod
		wantIPs      []netip.Addr
		wantHostIP   netip.Addr
		wantPorts    []ContainerPort
		wantWarnings []string
	}{
		"podIPs win over podIP; IPv4-mapped addresses unmapped; duplicates dropped": {
			pod: withStatus(newPod(ns, "p", ""), corev1.PodStatus{
				Phase: corev1.PodRunning, PodIP: "10.0.0.1",
				PodIPs:  []corev1.PodIP{{IP: "::ffff:10.0.0.2"}, {IP: "fd00::2"}, {IP: "10.0.0.2"}},
				HostIPs: []corev1.HostIP{{IP: "192.168.0.1"}},
			}),
			wantIPs:    []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2")},
			wantHostIP: netip.MustParseAddr("192.168.0.1"),
		},
		"finished pods keep no IP, their address may be reused": {
			pod: withStatus(newPod(ns, "p", ""), corev1.PodStatus{Phase: corev1.PodSucceeded, PodIP: "10.0.0.1"}),
		},
		"a pending pod without IP is warned about": {
			pod:          withStatus(newPod(ns, "p", ""), corev1.PodStatus{Phase: corev1.PodPending}),
			wantWarnings: []string{"cluster: Pod shop/p has no IP address; flows cannot be attributed to it"},
		},
		"container ports default to TCP; only restartable init containers count": {
			pod: func() *corev1.Pod {
				p := newPod(ns, "p", "10.0.0.1")
				p.Spec.InitContainers = []corev1.Container{
					{Name: "setup", Ports: []corev1.ContainerPort{{ContainerPort: 1}}},
					{Name: "proxy", RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 15000}}},
				}
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 80}}
				return p
			}(),
			wantIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
			wantPorts: []ContainerPort{
				{Name: "admin", Port: 15000, Protocol: corev1.ProtocolTCP},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Port: 80, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := mustBuild(t, &Objects{Pods: []*corev1.Pod{tc.pod}})
			p := s.Pod(ns, tc.pod.Name)
			if diff := cmp.Diff(tc.wantIPs, p.IPs, cmpAddr); diff != "" {
				t.Errorf("IPs (-want +got):\n%s", diff)
			}
			if p.HostIP != tc.wantHostIP {
				t.Errorf("host IP = %v, want %v", p.HostIP, tc.wantHostIP)
			}
			if diff := cmp.Diff(tc.wantPorts, p.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, s.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildIndexes(t *testing.T) {
	host := newPod("kube-system", "agent", "10.0.0.11")
	host.Spec.HostNetwork = true
	host.Spec.NodeName = "node-a"
	host.Status.HostIP = "10.0.0.11"
	s := mustBuild(t, &Objects{
		Namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "store"}}}},
		Pods:       []*corev1.Pod{newPod("shop", "a", "10.0.0.1"), newPod("shop", "b", "10.0.0.1"), host},
		Services:   []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "db"}}},
	})
	if got := s.PodByIP(netip.MustParseAddr("10.0.0.1")); got == nil || got.Name != "b" {
		t.Errorf("PodByIP(10.0.0.1) = %v, want shop/b (the later pod)", got)
	}
	if got := s.PodByIP(netip.MustParseAddr("10.0.0.11")); got != nil {
		t.Errorf("PodByIP(host-network address) = %s, want none", got.Key())
	}
	if node, ok := s.NodeByIP(netip.MustParseAddr("10.0.0.11")); !ok || node != "node-a" {
		t.Errorf("NodeByIP = %q, %v; want node-a", node, ok)
	}
	wantNS := map[string]*Namespace{
		"shop":        {Name: "shop", Labels: labels.Set{"team": "store", corev1.LabelMetadataName: "shop"}},
		"data":        {Name: "data", Labels: labels.Set{corev1.LabelMetadataName: "data"}, Synthesized: true},
		"kube-system": {Name: "kube-system", Labels: labels.Set{corev1.LabelMetadataName: "kube-system"}, Synthesized: true},
	}
	if diff := cmp.Diff(wantNS, s.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	wantWarnings := []string{"pods shop/a and shop/b both have IP 10.0.0.1; flows to it are attributed to shop/b"}
	if diff := cmp.Diff(wantWarnings, s.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestBuildServicesAndPolicies(t *testing.T) {
	udp := corev1.ProtocolUDP
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "cart"},
			ClusterIPs: []string{"10.96.0.1", "fd00::1"},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "dns", Port: 53, Protocol: udp, TargetPort: intstr.FromString("dns")}},
		},
	}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Type: corev1.ServiceTypeClusterIP},
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "egress"},
		Spec: networkingv1.NetworkPolicySpec{
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(53))}}}},
		},
	}
	before := np.DeepCopy()
	s := mustBuild(t, &Objects{Services: []*corev1.Service{svc, headless}, NetworkPolicies: []*networkingv1.NetworkPolicy{np}})

	wantServices := []*Service{
		{Namespace: "shop", Name: "cart", Type: corev1.ServiceTypeClusterIP, Selector: labels.Set{"app": "cart"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
				{Name: "dns", Port: 53, Protocol: udp, TargetPort: intstr.FromString("dns")},
			},
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("fd00::1")},
			Origin:     "cluster"},
	}
	// Sorted by namespace/name: db before cart? No: "cart" < "db".
	wantServices = append(wantServices, &Service{Namespace: "shop", Name: "db", Type: corev1.ServiceTypeClusterIP, Origin: "cluster"})
	if diff := cmp.Diff(wantServices, s.Services, cmpAddr); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if got := s.Service("shop", "db"); got == nil {
		t.Error("Service(shop, db) not found")
	}

	tcp := corev1.ProtocolTCP
	wantSpec := networkingv1.NetworkPolicySpec{
		Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
			{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(53))}}}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
	}
	if diff := cmp.Diff(wantSpec, s.NetworkPolicies[0].Spec); diff != "" {
		t.Errorf("defaulted policy (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, np); diff != "" {
		t.Errorf("Build modified its input (-before +after):\n%s", diff)
	}
}

func TestBuildErrors(t *testing.T) {
	badNP := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "bad"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"11.0.0.0/16"}}}},
		}}},
	}
	badIntents := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.otterize.com/v2beta1", "kind": "ClientIntents",
		"metadata": map[string]any{"name": "ci", "namespace": "shop"},
		"spec":     map[string]any{"workload": map[string]any{"name": "c"}, "targets": []any{map[string]any{}}},
	}}
	o := &Objects{
		Pods:            []*corev1.Pod{newPod("shop", "p", "10.0.0.1"), newPod("shop", "p", "10.0.0.2")},
		NetworkPolicies: []*networkingv1.NetworkPolicy{badNP},
		ClientIntents:   []*unstructured.Unstructured{badIntents},
		Sources:         map[ObjectRef]Source{{Kind: "NetworkPolicy", Namespace: "shop", Name: "bad"}: {File: "np.yaml", Document: 3, Line: 40}},
	}
	s, err := Build(o)
	if s != nil {
		t.Error("Build returned a snapshot with an error")
	}
	want := []string{
		"cluster: ClientIntents shop/ci: spec.targets[0]: Invalid value: must specify exactly one of kubernetes, service, kafka, sql, aws, gcp, azure, internet",
		"cluster: Pod shop/p: duplicate object",
		"np.yaml: document 3 (line 40): NetworkPolicy shop/bad: spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: \"11.0.0.0/16\": must be a strict subset of `cidr`",
	}
	if diff := cmp.Diff(want, errorLines(t, err)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	var oe *ObjectError
	if !errors.As(err, &oe) {
		t.Error("errors.As(*ObjectError) failed")
	}
}
