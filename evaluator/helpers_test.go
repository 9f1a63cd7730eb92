package evaluator

// setCacheLimit replaces the verdict cache with an empty one bounded to n entries.
func (e *Engine) setCacheLimit(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cacheLimit = n
	e.publishLocked(true)
}

// cacheLen counts the cached verdicts.
func (e *Engine) cacheLen() int { return e.cur.Load().cache.len() }

// refEvaluator judges through the resolved path: Resolve both ends, then EvaluateRef.
type refEvaluator struct{ e *Engine }

func (r refEvaluator) Evaluate(c Connection) Verdict {
	src, dst := r.e.Resolve(c.Src), r.e.Resolve(c.Dst)
	return *r.e.EvaluateRef(&src, &dst, c.Protocol, c.Port)
}

// refConn is a connection resolved once, to be judged later, possibly by another engine.
type refConn struct {
	src, dst Ref
	c        Connection
}

func resolveConn(e *Engine, c Connection) refConn {
	return refConn{src: e.Resolve(c.Src), dst: e.Resolve(c.Dst), c: c}
}

func (rc *refConn) eval(e *Engine) Verdict {
	return *e.EvaluateRef(&rc.src, &rc.dst, rc.c.Protocol, rc.c.Port)
}
