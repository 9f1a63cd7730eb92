package simulate

import "github.com/shadowgate/shadowgate/evaluator"

// plainEvaluator hides an Engine behind the Evaluator interface, so the Simulator judges
// by Evaluate: no Refs, no verdict-address memos.
type plainEvaluator struct{ e evaluator.Evaluator }

func (p plainEvaluator) Evaluate(c evaluator.Connection) evaluator.Verdict { return p.e.Evaluate(c) }

// JudgeByEvaluate makes s judge every flow through Evaluate, the reference for the
// resolved-reference path.
func JudgeByEvaluate(s *Simulator) {
	s.current, s.enforce = plainEvaluator{s.current}, plainEvaluator{s.enforce}
}
