package evaluator

import (
	"sort"

	networkingv1 "k8s.io/api/networking/v1"
)

// refOf names a policy.
func refOf(p *networkingv1.NetworkPolicy) PolicyRef {
	return PolicyRef{Namespace: p.Namespace, Name: p.Name}
}

// dedupe returns the policies both evaluators judge with: nil entries dropped and, when
// the same namespace/name appears more than once, only the last occurrence kept, sorted
// by namespace/name.
//
// Two policies with one name are the caller's bug (Validate reports it), but the
// evaluators must still be deterministic. Keeping the last one is what applying the
// inputs in order to an API server would leave behind, and it lets a caller append
// compiled policies after the snapshot's to replace them.
func dedupe(policies []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
	last := make(map[PolicyRef]*networkingv1.NetworkPolicy, len(policies))
	for _, p := range policies {
		if p != nil {
			last[refOf(p)] = p
		}
	}
	out := make([]*networkingv1.NetworkPolicy, 0, len(last))
	for _, p := range last {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return lessRef(refOf(out[i]), refOf(out[j])) })
	return out
}

func lessRef(a, b PolicyRef) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func lessRule(a, b RuleRef) bool {
	if a.Policy != b.Policy {
		return lessRef(a.Policy, b.Policy)
	}
	return a.Index < b.Index
}
