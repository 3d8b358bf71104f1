package detect

import (
	"slices"
	"strings"
)

// acMatcher is an Aho-Corasick automaton over bytes. It finds every
// occurrence of every pattern in one pass, whatever the number of patterns,
// which is what a 10,000-word list needs; one regexp alternation of 10,000
// words would be far slower and far larger.
//
// It works on bytes of UTF-8 rather than on runes: a pattern is valid UTF-8,
// so it can only match at rune boundaries of the text (a pattern never
// starts with a continuation byte), and bytes keep the transition tables
// small and the inner loop free of decoding.
//
// Transitions are stored sparsely (sorted edge lists, compressed-row
// layout) with failure links, because a dense 256-entry table per state
// would take about 100 MB for 10,000 Chinese words; only the root, where
// the scan spends most of its time, has a dense table.
type acMatcher struct {
	root      [256]int32 // root transitions; 0 means stay at the root
	edgeStart []int32    // edges of state s are edgeStart[s]..edgeStart[s+1]
	labels    []byte     // edge labels, sorted within a state
	next      []int32    // edge targets
	fail      []int32    // failure link: longest proper suffix that is a trie state
	pattern   []int32    // pattern ending exactly at the state, or -1
	dict      []int32    // nearest state on the failure chain with a pattern, or -1
	patLen    []int32    // length of each pattern in bytes
	depth     []int32    // depth of each state: the length of the prefix it stands for
}

// newACMatcher builds the automaton. Patterns must be non-empty and
// distinct; the pattern id reported by scan is the index in patterns.
//
// The trie is built from the patterns in sorted order: a pattern then
// shares its path with the previous one up to their common prefix, so no
// child lookup is needed, and every state's children are created in
// increasing label order, so the edges come out already sorted. This keeps
// start-up with the ~17,000 prompt-attack phrases (or a 100,000-word list)
// to a few allocations.
func newACMatcher(patterns []string) *acMatcher {
	order := make([]int32, len(patterns))
	total := 0
	for i, p := range patterns {
		order[i] = int32(i)
		total += len(p)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(patterns[a], patterns[b]) })

	type edge struct {
		parent int32
		label  byte
		child  int32
	}
	edges := make([]edge, 0, total)
	pattern := make([]int32, 1, total+1)
	pattern[0] = -1
	depth := make([]int32, 1, total+1)
	path := []int32{0} // path[d]: the state at depth d on the previous pattern's path
	prev := ""
	for _, id := range order {
		p := patterns[id]
		l := 0
		for l < len(prev) && l < len(p) && prev[l] == p[l] {
			l++
		}
		// Sorted and distinct: p is not a prefix of prev, so l < len(p).
		path = path[:l+1]
		s := path[l]
		for i := l; i < len(p); i++ {
			child := int32(len(pattern))
			edges = append(edges, edge{s, p[i], child})
			pattern = append(pattern, -1)
			depth = append(depth, int32(i+1))
			path = append(path, child)
			s = child
		}
		pattern[s] = id
		prev = p
	}
	n := len(pattern)

	m := &acMatcher{patLen: make([]int32, len(patterns)), pattern: pattern, depth: depth}
	for id, p := range patterns {
		m.patLen[id] = int32(len(p))
	}
	// Compressed-row edges: a stable counting sort by parent keeps each
	// state's labels in the sorted order they were created in.
	m.edgeStart = make([]int32, n+1)
	for _, e := range edges {
		m.edgeStart[e.parent+1]++
	}
	for s := 0; s < n; s++ {
		m.edgeStart[s+1] += m.edgeStart[s]
	}
	m.labels = make([]byte, len(edges))
	m.next = make([]int32, len(edges))
	fill := slices.Clone(m.edgeStart[:n])
	for _, e := range edges {
		j := fill[e.parent]
		fill[e.parent]++
		m.labels[j] = e.label
		m.next[j] = e.child
		if e.parent == 0 {
			m.root[e.label] = e.child
		}
	}

	// Failure and dictionary links, breadth first so that a state's
	// failure target (which is shallower) is always done before it.
	m.fail = make([]int32, n)
	m.dict = make([]int32, n)
	m.dict[0] = -1
	queue := make([]int32, 0, n)
	for j := m.edgeStart[0]; j < m.edgeStart[1]; j++ {
		kid := m.next[j]
		m.dict[kid] = -1
		queue = append(queue, kid)
	}
	for head := 0; head < len(queue); head++ {
		u := queue[head]
		for j := m.edgeStart[u]; j < m.edgeStart[u+1]; j++ {
			c, v := m.labels[j], m.next[j]
			f := m.fail[u]
			for {
				if t, ok := m.child(f, c); ok {
					m.fail[v] = t
					break
				}
				if f == 0 {
					m.fail[v] = 0
					break
				}
				f = m.fail[f]
			}
			if fv := m.fail[v]; m.pattern[fv] >= 0 {
				m.dict[v] = fv
			} else {
				m.dict[v] = m.dict[fv]
			}
			queue = append(queue, v)
		}
	}
	return m
}

// child is the goto function of a trie state, without failure links.
func (m *acMatcher) child(s int32, c byte) (int32, bool) {
	if s == 0 {
		t := m.root[c]
		return t, t != 0
	}
	lo, hi := m.edgeStart[s], m.edgeStart[s+1]
	if hi-lo <= 8 {
		for j := lo; j < hi; j++ {
			if l := m.labels[j]; l >= c {
				if l == c {
					return m.next[j], true
				}
				break
			}
		}
		return 0, false
	}
	for lo < hi { // binary search for wide states (the first bytes of Chinese words)
		mid := int32(uint32(lo+hi) >> 1)
		switch l := m.labels[mid]; {
		case l < c:
			lo = mid + 1
		case l > c:
			hi = mid
		default:
			return m.next[mid], true
		}
	}
	return 0, false
}

// scan calls emit for every occurrence of every pattern in text, in order
// of end position (and, for one end, longest pattern first), with the
// pattern id and the end offset (exclusive). It returns the automaton
// state after text[:cut] (0 <= cut <= len(text)): what of the patterns is
// still open there.
func (m *acMatcher) scan(text string, cut int, emit func(id int32, end int)) (atCut int32) {
	s := int32(0)
	for i := 0; i < len(text); i++ {
		if i == cut {
			atCut = s
		}
		c := text[i]
		for {
			if s == 0 {
				s = m.root[c]
				break
			}
			if t, ok := m.child(s, c); ok {
				s = t
				break
			}
			s = m.fail[s]
		}
		o := s
		if m.pattern[o] < 0 {
			o = m.dict[o]
		}
		for o > 0 {
			emit(m.pattern[o], i+1)
			o = m.dict[o]
		}
	}
	if cut >= len(text) {
		atCut = s
	}
	return atCut
}

// openDepths returns, for every state, the length of the longest suffix
// of the input read so far that is a prefix of a pattern for which keep is
// true: how far back a match of such a pattern that is still open may
// start. The trie is walked breadth first, so a state's failure target is
// done before it.
func (m *acMatcher) openDepths(keep func(id int32) bool) []int32 {
	n := len(m.pattern)
	// live[s]: some pattern in the subtree of s is kept.
	live := make([]bool, n)
	order := make([]int32, 0, n)
	order = append(order, 0)
	for head := 0; head < len(order); head++ {
		u := order[head]
		for j := m.edgeStart[u]; j < m.edgeStart[u+1]; j++ {
			order = append(order, m.next[j])
		}
	}
	// In reverse breadth-first order, every state comes after all of its
	// descendants.
	for k := len(order) - 1; k >= 0; k-- {
		u := order[k]
		if p := m.pattern[u]; p >= 0 && keep(p) {
			live[u] = true
			continue
		}
		for j := m.edgeStart[u]; j < m.edgeStart[u+1]; j++ {
			if live[m.next[j]] {
				live[u] = true
				break
			}
		}
	}
	out := make([]int32, n)
	for _, u := range order {
		switch {
		case u == 0:
			out[u] = 0
		case live[u]:
			out[u] = m.depth[u]
		default:
			out[u] = out[m.fail[u]]
		}
	}
	return out
}
