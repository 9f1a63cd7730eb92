package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

// applyResult says what an apply pass changed.
type applyResult struct {
	Names []string // every desired policy, sorted
	Hash  string
	// Created were missing and never applied before; Restored were applied before and
	// found deleted; Corrected existed but had drifted; Pruned were stale and deleted.
	Created, Restored, Corrected, Pruned []string
}

func (a applyResult) changed() bool {
	return len(a.Created)+len(a.Restored)+len(a.Corrected)+len(a.Pruned) > 0
}

// conflictError reports desired policy names taken by policies shadowgate does not manage.
type conflictError struct{ names []string }

func (e *conflictError) Error() string {
	return "NetworkPolicies " + strings.Join(e.names, ", ") + " exist and are not managed by this rollout; shadowgate never touches them"
}

// ownedBy reports whether p is one of nsr's: it carries the managed-by label and an owner
// reference to the rollout (by name: a rollout deleted and created again still owns what
// the old one left behind).
func ownedBy(p *networkingv1.NetworkPolicy, nsr *v1alpha1.NamespaceRollout) bool {
	if !isManaged(p) {
		return false
	}
	for _, o := range p.OwnerReferences {
		if o.Kind == "NamespaceRollout" && o.Name == nsr.Name && strings.HasPrefix(o.APIVersion, v1alpha1.GroupVersion.Group+"/") {
			return true
		}
	}
	return false
}

// hashPolicies identifies a compiled set.
func hashPolicies(ps []*networkingv1.NetworkPolicy) string {
	h := sha256.New()
	for _, p := range ps {
		b, _ := json.Marshal(struct {
			Name        string
			Labels      map[string]string
			Annotations map[string]string
			Spec        networkingv1.NetworkPolicySpec
		}{p.Name, p.Labels, p.Annotations, p.Spec})
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// managedPolicies lists nsr's policies in its namespace.
func managedPolicies(ctx context.Context, r client.Reader, nsr *v1alpha1.NamespaceRollout) (map[string]*networkingv1.NetworkPolicy, error) {
	var list networkingv1.NetworkPolicyList
	if err := r.List(ctx, &list, client.InNamespace(nsr.Spec.Namespace)); err != nil {
		return nil, fmt.Errorf("list NetworkPolicies in %s: %w", nsr.Spec.Namespace, err)
	}
	out := map[string]*networkingv1.NetworkPolicy{}
	for i := range list.Items {
		if p := &list.Items[i]; ownedBy(p, nsr) {
			out[p.Name] = p
		}
	}
	return out, nil
}

// applyPolicies makes the namespace's policies equal desired: each desired policy is
// server-side applied with the shadowgate field manager (forcing ownership of its fields
// back from anyone who edited them) unless the live copy already matches, allow policies
// before the default deny so that no instant blocks what the set admits, and managed
// policies no longer desired are deleted last. Policies shadowgate does not manage are
// never written: a desired name taken by one is a conflictError and nothing is applied.
// previously lists the names applied before, to tell a restored deletion from a new policy.
//
// Reads go through r, which should not be a cache: a policy applied a moment ago and not
// yet in a cache would otherwise read as deleted by hand and be reported as drift.
func applyPolicies(ctx context.Context, c client.Client, r client.Reader, nsr *v1alpha1.NamespaceRollout, desired []*networkingv1.NetworkPolicy, previously []string) (applyResult, error) {
	res := applyResult{Hash: hashPolicies(desired)}
	var all networkingv1.NetworkPolicyList
	if err := r.List(ctx, &all, client.InNamespace(nsr.Spec.Namespace)); err != nil {
		return res, fmt.Errorf("list NetworkPolicies in %s: %w", nsr.Spec.Namespace, err)
	}
	live := map[string]*networkingv1.NetworkPolicy{}
	var conflicts []string
	want := map[string]bool{}
	for _, p := range desired {
		want[p.Name] = true
	}
	for i := range all.Items {
		p := &all.Items[i]
		live[p.Name] = p
		if want[p.Name] && !ownedBy(p, nsr) {
			conflicts = append(conflicts, p.Name)
		}
	}
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return res, &conflictError{names: conflicts}
	}
	before := map[string]bool{}
	for _, n := range previously {
		before[n] = true
	}

	ordered := append([]*networkingv1.NetworkPolicy(nil), desired...)
	sort.SliceStable(ordered, func(i, j int) bool {
		// Allow policies first, the default deny last.
		return ordered[i].Name != compile.DefaultDenyName && ordered[j].Name == compile.DefaultDenyName
	})
	owner := ownerRef(nsr)
	for _, p := range ordered {
		res.Names = append(res.Names, p.Name)
		want := p.DeepCopy()
		want.OwnerReferences = []metav1.OwnerReference{owner}
		cur, exists := live[p.Name]
		if exists && upToDate(cur, want) {
			continue
		}
		if err := serverSideApply(ctx, c, want); err != nil {
			return res, err
		}
		switch {
		case exists:
			res.Corrected = append(res.Corrected, p.Name)
		case before[p.Name]:
			res.Restored = append(res.Restored, p.Name)
		default:
			res.Created = append(res.Created, p.Name)
		}
	}
	sort.Strings(res.Names)

	for name, p := range live {
		if want[name] || !ownedBy(p, nsr) {
			continue
		}
		if err := c.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
			return res, fmt.Errorf("delete stale NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err)
		}
		res.Pruned = append(res.Pruned, name)
	}
	sort.Strings(res.Pruned)
	return res, nil
}

// removePolicies deletes every policy nsr manages in its namespace, the default deny
// first so that no instant blocks more than before. It returns the names deleted.
func removePolicies(ctx context.Context, c client.Client, r client.Reader, nsr *v1alpha1.NamespaceRollout) ([]string, error) {
	owned, err := managedPolicies(ctx, r, nsr)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(owned))
	for n := range owned {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == compile.DefaultDenyName) != (names[j] == compile.DefaultDenyName) {
			return names[i] == compile.DefaultDenyName
		}
		return names[i] < names[j]
	})
	var deleted []string
	for _, n := range names {
		p := owned[n]
		if err := c.Delete(ctx, p, client.Preconditions{UID: &p.UID}); err != nil && !apierrors.IsNotFound(err) {
			return deleted, fmt.Errorf("delete NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err)
		}
		deleted = append(deleted, n)
	}
	return deleted, nil
}

func serverSideApply(ctx context.Context, c client.Client, p *networkingv1.NetworkPolicy) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		return fmt.Errorf("encode NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"))
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	// Apply leaves alone the fields a configuration does not mention, even when another
	// manager set them: an empty list must be said explicitly for shadowgate to own it,
	// or rules someone added by hand (to the default deny, say) would stay.
	for _, f := range []string{"ingress", "egress", "policyTypes"} {
		if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", f); !ok {
			if err := unstructured.SetNestedSlice(u.Object, []any{}, "spec", f); err != nil {
				return err
			}
		}
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply NetworkPolicy %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// upToDate reports whether live carries everything shadowgate applies in want: the
// labels, annotations and owner reference, and the same spec once the API server's
// defaults are filled in on both sides. Fields other managers added (an extra label) are
// theirs and do not count as drift.
func upToDate(live, want *networkingv1.NetworkPolicy) bool {
	for k, v := range want.Labels {
		if live.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if live.Annotations[k] != v {
			return false
		}
	}
	hasOwner := false
	for _, o := range live.OwnerReferences {
		if o.UID == want.OwnerReferences[0].UID {
			hasOwner = true
		}
	}
	return hasOwner && equality.Semantic.DeepEqual(defaulted(live.Spec), defaulted(want.Spec))
}

// defaulted fills in what the API server defaults in a NetworkPolicySpec: policyTypes
// (Ingress, plus Egress when there are egress rules) and port protocol TCP.
func defaulted(s networkingv1.NetworkPolicySpec) networkingv1.NetworkPolicySpec {
	s = *s.DeepCopy()
	if len(s.PolicyTypes) == 0 {
		s.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(s.Egress) > 0 {
			s.PolicyTypes = append(s.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	tcp := corev1.ProtocolTCP
	fix := func(ports []networkingv1.NetworkPolicyPort) {
		for i := range ports {
			if ports[i].Protocol == nil {
				ports[i].Protocol = &tcp
			}
		}
	}
	for i := range s.Ingress {
		fix(s.Ingress[i].Ports)
	}
	for i := range s.Egress {
		fix(s.Egress[i].Ports)
	}
	return s
}
