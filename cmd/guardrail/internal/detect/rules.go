package detect

import (
	"slices"
	"sort"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// isBreak reports whether a clause break starts at text[i]: , . ; ! ? a
// line break, or the ideographic full stop 。 (the full-width forms of the
// others are ASCII in the phrase view). Rule parts must not be separated
// by one unless the rule says so: "不要理会那些谣言，官方的规定是什么" is
// not "ignore the rules".
func isBreak(text string, i int) bool {
	switch text[i] {
	case ',', '.', ';', '!', '?', '\n':
		return true
	case 0xE3:
		return i+2 < len(text) && text[i+1] == 0x80 && text[i+2] == 0x82
	}
	return false
}

// evalRules evaluates the prompt-attack rules on the concept hits.
// open is where a match that is not settled yet may start: a rule whose
// next part may start there, or whose "unless" window reaches there, is
// not settled either.
func (e *Engine) evalRules(sc *scratch, si int, final bool, open int, h *holds, out []guard.Finding) []guard.Finding {
	pv := &sc.pv
	text := pv.text
	act := e.attAct[si]
	hs := sc.concepts
	slices.SortFunc(hs, func(a, b hit) int {
		ca, cb := e.owners[a.owner].concept, e.owners[b.owner].concept
		switch {
		case ca != cb:
			return int(ca) - int(cb)
		case a.start != b.start:
			return int(a.start) - int(b.start)
		default:
			return int(a.end) - int(b.end)
		}
	})
	// Hits of concept c are hs[from[c]:from[c+1]].
	n := len(e.attack.concepts)
	sc.from = slices.Grow(sc.from[:0], n+1)[:n+1]
	clear(sc.from)
	for _, x := range hs {
		sc.from[e.owners[x.owner].concept+1]++
	}
	for c := 1; c <= n; c++ {
		sc.from[c] += sc.from[c-1]
	}
	of := func(c int32) []hit { return hs[sc.from[c]:sc.from[c+1]] }
	// breaks[i]: clause breaks in text[:i].
	sc.breaks = slices.Grow(sc.breaks[:0], len(text)+1)[:len(text)+1]
	sc.breaks[0] = 0
	for i := 0; i < len(text); i++ {
		sc.breaks[i+1] = sc.breaks[i]
		if isBreak(text, i) {
			sc.breaks[i+1]++
		}
	}
	br := sc.breaks
	hold := func(start int32) { h.add(pv.origStart(int(start)), strong(act)) }
	for ri := range e.attack.rules {
		r := &e.attack.rules[ri]
		c := chainer{r: r, of: of, br: br, open: open, final: final}
		c.memo = sc.memo[:0]
		for _, p := range r.parts {
			c.base = append(c.base, len(c.memo))
			c.memo = append(c.memo, make([]chainResult, len(of(p)))...)
		}
		lastEnd := int32(-1)
		for i, h1 := range of(r.parts[0]) {
			if h1.start < lastEnd {
				continue
			}
			res := c.at(0, i)
			if res.pending && (!res.found || int(res.end) >= open) {
				hold(h1.start) // a part may still come
				continue
			}
			if !res.found {
				continue
			}
			end := res.end
			if len(r.unless) > 0 {
				lo, hi := int(h1.start)-r.near, int(end)+r.near
				cancelled := false
				for _, u := range r.unless {
					for _, x := range of(u) {
						if int(x.end) > lo && int(x.start) < hi {
							cancelled = true
							break
						}
					}
				}
				if cancelled {
					continue
				}
				if !final && hi > open {
					hold(h1.start) // an "unless" word may still come
					continue
				}
			}
			start, fend := pv.span(int(h1.start), int(end))
			out = append(out, guard.Finding{Policy: guard.PolicyPromptAttack, Type: policy.PromptAttackType, Action: act.Guard(), Start: start, End: fend})
			lastEnd = end
		}
		sc.memo = c.memo
	}
	return out
}

// chainResult is what completing a rule after one of its hits gives: the
// earliest end of a completion, and whether a part could still come (it
// would start at open or later) along some path.
type chainResult struct {
	end      int32
	found    bool
	pending  bool
	computed bool
}

// chainer completes one rule's parts, each starting within the gap after
// the previous one ends, with no clause break between unless the rule
// allows it. Results are memoized per (part, hit), so a rule costs
// O(hits x candidates within a gap) however the hits repeat.
type chainer struct {
	r     *compiledRule
	of    func(int32) []hit
	br    []int32
	open  int
	final bool
	memo  []chainResult
	base  []int // memo index of part k's first hit
}

// at completes the rule after hit i of part k.
func (c *chainer) at(k, i int) chainResult {
	m := &c.memo[c.base[k]+i]
	if m.computed {
		return *m
	}
	hs := c.of(c.r.parts[k])
	cur := hs[i]
	var res chainResult
	if k == len(c.r.parts)-1 {
		res = chainResult{end: cur.end, found: true}
	} else {
		next := c.of(c.r.parts[k+1])
		j := sort.Search(len(next), func(j int) bool { return next[j].start >= cur.end })
		for ; j < len(next); j++ {
			hk := next[j]
			if int(hk.start-cur.end) > c.r.gap || !c.r.crossBreaks && c.br[hk.start] != c.br[cur.end] {
				break
			}
			sub := c.at(k+1, j)
			res.pending = res.pending || sub.pending
			if sub.found && (!res.found || sub.end < res.end) {
				res.end, res.found = sub.end, true
			}
		}
		if !c.final && int(cur.end)+c.r.gap >= c.open && (c.r.crossBreaks || c.br[c.open] == c.br[cur.end]) {
			res.pending = true
		}
	}
	res.computed = true
	*m = res
	return res
}

// span is the longest a match of any rule can be in the phrase view: the
// longest term of each part plus the gaps.
func (t *compiledAttack) span() int {
	longest := make([]int, len(t.concepts))
	for ci, c := range t.concepts {
		for _, x := range c.phrases {
			longest[ci] = max(longest[ci], len(normalizePattern(x)))
		}
	}
	out := 0
	for _, r := range t.rules {
		n := 0
		for k, p := range r.parts {
			n += longest[p] + 9 // an inflection
			if k > 0 {
				n += r.gap
			}
		}
		out = max(out, n)
	}
	return out
}

func (t *compiledAttack) maxNear() int {
	n := 0
	for _, r := range t.rules {
		if len(r.unless) > 0 {
			n = max(n, r.near)
		}
	}
	return n
}
