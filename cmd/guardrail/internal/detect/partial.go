package detect

import (
	"sort"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// Streaming: a text that may still grow (the latest window of a streamed
// answer) is scanned like a whole one, and every detector also says where
// a match that more text could still create, extend or cancel may start:
//
//   - the normalizer's unstable tail (a trailing word, separators, a
//     spelled-out chain: normalize.go's cut);
//   - the automaton's open prefix at that cut: the longest suffix of the
//     stable text that begins some phrase;
//   - a phrase match whose end boundary or inflection is not known yet;
//   - a prompt-attack rule whose next part may still come within its gap,
//     or whose "unless" window reaches past the cut;
//   - a topic keyword that a keyword still to come may pair with;
//   - a trailing run of digits and separators, of e-mail characters, of
//     key characters; a card or first-generation ID number waiting for a
//     context word after it;
//   - a custom regex's literal near the end (or, without one, its
//     maxLength).
//
// The earliest of these is Settled: every finding that starts before it is
// final. The earliest of those that belong to BLOCK or ANONYMIZE entries is
// Release: the text before it can be sent, as nothing that could still
// change it or block it starts there. Ordinary prose releases all but its
// last word; a stream holds more only while something could still become a
// match.

// holds collects the starts of unsettled matches in original offsets.
type holds struct {
	any    int
	strong int
}

func (h *holds) add(pos int, st bool) {
	if h == nil {
		return
	}
	if pos < h.any {
		h.any = pos
	}
	if st && pos < h.strong {
		h.strong = pos
	}
}

// scratch is the per-scan memory, pooled.
type scratch struct {
	bv       view
	base     []byte
	pv       phraseView
	items    []item
	phrase   []byte
	hits     []hit
	exc      []hit
	kw       []hit
	concepts []hit
	from     []int32
	breaks   []int32
	memo     []chainResult
}

// reset drops the references to the last text, keeping the memory.
func (sc *scratch) reset() {
	sc.bv.text, sc.pv.text = "", ""
}

// ScanPartial implements guard.StreamChecker.
func (e *Engine) ScanPartial(src guard.Source, text string) guard.Partial {
	si, ok := srcIndex(src)
	if !ok || text == "" {
		return guard.Partial{Settled: len(text), Release: len(text), Keep: len(text)}
	}
	sc := e.pool.Get().(*scratch)
	defer e.putScratch(sc)
	h := holds{any: len(text), strong: len(text)}
	all := e.scan(sc, si, text, false, &h)
	settled, release := h.any, h.strong
	fs := all[:0]
	for _, f := range all {
		// Before Release no BLOCK or ANONYMIZE match can still appear or
		// change, so those findings are final there too.
		if f.Start < settled || f.Start < release && (f.Action == guard.ActionBlock || f.Action == guard.ActionAnonymize) {
			fs = append(fs, f)
		}
	}
	if len(fs) > 0 {
		fs = resolve(fs)
	} else {
		fs = nil
	}
	keep := settled
	keep = min(keep, sc.bv.origStart(max(0, sc.bv.index(settled)-e.baseLookbehind())))
	if e.anyPhrase[si] {
		keep = min(keep, sc.pv.origStart(max(0, sc.pv.index(settled)-e.lookPhrase)))
	}
	return guard.Partial{Findings: fs, Settled: settled, Release: max(release, settled), Keep: keep}
}

// baseLookbehind is how much of the base view before the unsettled part
// the number, e-mail and regex detectors look back at: context words, the
// start of an e-mail address, a regex match.
func (e *Engine) baseLookbehind() int {
	n := max(ctxBefore+8, maxEmailLen+boundaryContext, 2*maxMobileLen)
	for _, r := range e.regexes {
		n = max(n, r.max+boundaryContext)
	}
	return n + 16
}

// index is the first offset of the view whose source starts at or after
// orig.
func (v *view) index(orig int) int {
	if v.ident {
		return min(orig, len(v.text))
	}
	return sort.Search(len(v.start), func(i int) bool { return int(v.start[i]) >= orig })
}
