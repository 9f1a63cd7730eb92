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
