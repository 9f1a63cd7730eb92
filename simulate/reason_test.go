package simulate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// TestReasonMemo: an allowed verdict is explained once per shared verdict, and the memo
// never hands one verdict's explanation to another.
func TestReasonMemo(t *testing.T) {
	rules := func(names ...string) []evaluator.RuleRef {
		var out []evaluator.RuleRef
		for _, n := range names {
			out = append(out, evaluator.RuleRef{Policy: evaluator.PolicyRef{Namespace: "shop", Name: n}})
		}
		return out
	}
	shared := rules("allow-cart")
	other := rules("allow-cart", "allow-all")
	p := &cluster.Pod{Namespace: "shop", Name: "frontend-1"}
	conn := evaluator.Connection{Src: evaluator.Endpoint{Kind: evaluator.Pod, Pod: p}, Dst: evaluator.Endpoint{Kind: evaluator.External}, Protocol: "TCP", Port: 443}
	allowed := func(in []evaluator.RuleRef) evaluator.Verdict {
		return evaluator.Verdict{Allowed: true, Egress: evaluator.Direction{Allowed: true},
			Ingress: evaluator.Direction{Allowed: true, Isolated: []evaluator.PolicyRef{{Namespace: "shop", Name: "x"}}, AllowedBy: in}}
	}
	denied := evaluator.Verdict{Egress: evaluator.Direction{Isolated: []evaluator.PolicyRef{{Namespace: "shop", Name: "deny"}}}, Ingress: evaluator.Direction{Allowed: true}}
	cases := map[string][]evaluator.Verdict{
		"one shared verdict":                  {allowed(shared), allowed(shared)},
		"two verdicts with different rules":   {allowed(shared), allowed(other), allowed(shared)},
		"a prefix of a shared slice":          {allowed(other), allowed(other[:1])},
		"not isolated and own-node exemption": {allowed(nil), {Allowed: true, Egress: evaluator.Direction{Allowed: true}, Ingress: evaluator.Direction{Allowed: true, Exempt: evaluator.ExemptOwnNode}}},
		"denied verdicts name the connection": {denied, denied},
	}
	for name, vs := range cases {
		t.Run(name, func(t *testing.T) {
			m := reasonMemo{}
			for i, v := range vs {
				if diff := cmp.Diff(v.ReasonFor(conn), m.reason(v, conn)); diff != "" {
					t.Errorf("verdict %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}
