package detect

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// Word lists, topics and prompt-attack terms share one Aho-Corasick
// automaton over the phrase view (normalize.go). A Latin phrase matches
// whole words: the rune before it and the rune after it must not be word
// runes, except at a soft boundary (inside a spelled-out word), and except
// that an inflection may follow a phrase that ends with a letter: -s, -es,
// -ed, -ing, -er, -ers ("fucks", "fucking", "bombs"). Chinese phrases match
// anywhere.
//
// An exception (words.lists[].exceptions, topics.denied[].exceptions) is a
// phrase that contains a match of its entry without being one: "基金会"
// for the keyword "基金", "bomb shelter" for "bomb". A match of an entry
// that lies inside a match of one of its exceptions is dropped.

// suffixes are the inflections a phrase ending with a Latin letter may
// carry (see isSuffix).
var suffixes = []string{"s", "es", "ed", "ing", "er", "ers"}

// starVariants spells a single Latin word of four or more letters with one
// or two of its inner letters starred, as people write to get past a word
// filter ("f*ck", "f**k", "motherf*cker"). Only word lists get them.
func starVariants(norm string) []string {
	if len(norm) < 4 || len(norm) > 24 {
		return nil
	}
	for i := 0; i < len(norm); i++ {
		if !isASCIILetter(rune(norm[i])) {
			return nil
		}
	}
	var out []string
	for i := 1; i < len(norm)-1; i++ {
		out = append(out, norm[:i]+"*"+norm[i+1:])
		if i < len(norm)-2 {
			out = append(out, norm[:i]+"**"+norm[i+2:])
		}
	}
	return out
}

// maxOrigBytes bounds how many original bytes (invisible characters
// aside) can normalize to r: a space stands for a run of up to maxSpaceRun
// spaces of 3 bytes (U+3000), any other rune may come from a 3-byte
// full-width or compatibility form, and 4-byte runes stay 4 bytes.
func maxOrigBytes(r rune) int {
	if r == ' ' {
		return maxSpaceRun * 3
	}
	return max(3, utf8.RuneLen(r))
}

// buildPhrases collects every word, topic phrase, exception and
// prompt-attack term into one automaton.
func (e *Engine) buildPhrases(p *policy.Policy) error {
	ids := map[string]int32{}
	var texts []string
	type ownedBy struct {
		id int32
		o  owner
	}
	var pairs []ownedBy
	add := func(norm string, o owner) {
		if norm == "" {
			return
		}
		id, ok := ids[norm]
		if !ok {
			id = int32(len(texts))
			ids[norm] = id
			texts = append(texts, norm)
		}
		pairs = append(pairs, ownedBy{id, o})
	}
	target := func(pol guard.Policy, typ string, exceptions []string) int32 {
		if len(exceptions) == 0 {
			return -1
		}
		e.targets = append(e.targets, string(pol)+"\x00"+typ)
		return int32(len(e.targets) - 1)
	}
	for _, l := range p.Words.Lists {
		act := both(l.Actions)
		if !enabled(act) {
			continue
		}
		t := target(guard.PolicyWords, l.Name, l.Exceptions)
		o := owner{kind: ownWord, pol: guard.PolicyWords, typ: l.Name, act: act, target: t}
		for _, w := range l.Words {
			norm := normalizePattern(w)
			add(norm, o)
			for _, v := range starVariants(norm) {
				add(v, o)
			}
		}
		for _, x := range l.Exceptions {
			add(normalizePattern(x), owner{kind: ownException, target: t, pol: guard.PolicyWords, typ: l.Name, act: act})
		}
	}
	for ti, topic := range p.Topics.Denied {
		act := both(topic.Actions)
		e.topics = append(e.topics, topicState{name: topic.Name, minKeywords: topic.MinKeywords, act: act})
		if !enabled(act) {
			continue
		}
		t := target(guard.PolicyTopics, topic.Name, topic.Exceptions)
		for _, x := range topic.Examples {
			add(normalizePattern(x), owner{kind: ownTopicExample, pol: guard.PolicyTopics, typ: topic.Name, act: act, target: t})
		}
		if len(topic.Keywords) > policy.MaxTopicKeywords {
			return fmt.Errorf("detect: topic %s: %d keywords, at most %d", topic.Name, len(topic.Keywords), policy.MaxTopicKeywords)
		}
		// Keywords that normalize alike ("Buy", "buy") are one keyword:
		// otherwise a single "buy" would count twice towards minKeywords.
		distinct := map[string]int32{}
		for _, x := range topic.Keywords {
			norm := normalizePattern(x)
			k, ok := distinct[norm]
			if !ok {
				k = int32(len(distinct))
				distinct[norm] = k
			}
			add(norm, owner{kind: ownTopicKeyword, topic: int32(ti), keyword: k, pol: guard.PolicyTopics, typ: topic.Name, act: act, target: t})
		}
		if topic.MinKeywords > 1 && topic.MinKeywords > len(distinct) {
			return fmt.Errorf("detect: topic %s: minKeywords is %d, but only %d keywords are distinct once normalized", topic.Name, topic.MinKeywords, len(distinct))
		}
		for _, x := range topic.Exceptions {
			add(normalizePattern(x), owner{kind: ownException, target: t, pol: guard.PolicyTopics, typ: topic.Name, act: act})
		}
	}
	if pa := p.PromptAttack; pa.Enabled && enabled(both(pa.Actions)) {
		table, err := promptAttackTable(pa.Strength)
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		e.attack, e.attAct = table, both(pa.Actions)
		for ci, c := range table.concepts {
			for _, x := range c.phrases {
				add(normalizePattern(x), owner{kind: ownConcept, concept: int32(ci), pol: guard.PolicyPromptAttack, typ: policy.PromptAttackType, act: e.attAct, target: -1})
			}
		}
	}
	if len(texts) == 0 {
		return nil
	}
	e.ac = newACMatcher(texts)
	// Group the owners by phrase, keeping policy order within a phrase
	// (a stable counting sort).
	e.pats = make([]phrase, len(texts))
	for _, pr := range pairs {
		e.pats[pr.id].ownerHi++
	}
	next := int32(0)
	for id := range e.pats {
		n := e.pats[id].ownerHi
		e.pats[id].ownerLo, e.pats[id].ownerHi = next, next
		next += n
	}
	e.owners = make([]owner, len(pairs))
	for _, pr := range pairs {
		ph := &e.pats[pr.id]
		e.owners[ph.ownerHi] = pr.o
		ph.ownerHi++
	}
	maxPat := 0
	for id, text := range texts {
		first, _ := utf8.DecodeRuneInString(text)
		last, _ := utf8.DecodeLastRuneInString(text)
		ph := &e.pats[id]
		ph.boundaryStart, ph.boundaryEnd = isWordRune(first), isWordRune(last)
		ph.suffixes = isASCIILetter(last)
		for _, r := range text {
			ph.maxOrig += maxOrigBytes(r)
		}
		ph.maxOrig += 9 // an inflection of up to three full-width letters
		maxPat = max(maxPat, len(text))
	}
	for si := range 2 {
		enabledFor := func(id int32) bool {
			ph := &e.pats[id]
			for _, o := range e.owners[ph.ownerLo:ph.ownerHi] {
				if o.act[si].Enabled() {
					return true
				}
			}
			return false
		}
		strongFor := func(id int32) bool {
			ph := &e.pats[id]
			for _, o := range e.owners[ph.ownerLo:ph.ownerHi] {
				if strong(o.act[si]) {
					return true
				}
			}
			return false
		}
		for id := range texts {
			e.anyPhrase[si] = e.anyPhrase[si] || enabledFor(int32(id))
			e.strongPhrase[si] = e.strongPhrase[si] || strongFor(int32(id))
		}
		e.open[si] = e.ac.openDepths(enabledFor)
		e.openStrong[si] = e.ac.openDepths(strongFor)
	}
	// What a streaming scan keeps before its unsettled part: the longest
	// phrase with an inflection, a co-occurrence window twice over (a
	// completion is new when the window before it was not complete), and
	// the longest prompt-attack rule with its "unless" context.
	e.lookPhrase = max(maxPat+8, 2*cooccurrenceWindow+maxPat) + 16
	if e.attack != nil {
		e.attack.maxSpan = e.attack.span()
		e.lookPhrase = max(e.lookPhrase, e.attack.maxSpan+e.attack.maxNear()+16)
	}
	return nil
}

// hit is a match of one owner in the phrase view.
type hit struct {
	owner      int32
	start, end int32
}

// isSuffix reports whether s is an inflection of a word ending with last:
// one of suffixes, or d and r after a final e ("ignored", "user").
func isSuffix(s string, last byte) bool {
	return slices.Contains(suffixes, s) || last == 'e' && (s == "d" || s == "r" || s == "rs")
}

// scanPhrases runs the automaton over the phrase view and turns its
// matches into findings, keyword co-occurrences and prompt-attack rule
// matches.
func (e *Engine) scanPhrases(sc *scratch, si int, final bool, h *holds, out []guard.Finding) []guard.Finding {
	pv := &sc.pv
	sc.items, sc.phrase = buildPhrase(pv, sc.items, sc.phrase, &sc.bv, final)
	text := pv.text
	cut := pv.cut
	if !final {
		h.add(pv.cutOrig, e.strongPhrase[si])
	}
	// open is where a match that is not settled yet may start in the
	// phrase view: rules and co-occurrences waiting for a next part look
	// at it.
	open := len(text)
	if !final {
		open = cut
	}
	holdOwners := func(ph *phrase, start int) {
		open = min(open, start)
		st, any := false, false
		for _, o := range e.owners[ph.ownerLo:ph.ownerHi] {
			act := o.act[si]
			any = any || act.Enabled()
			st = st || strong(act)
		}
		if any {
			h.add(pv.origStart(start), st)
		}
	}
	sc.hits = sc.hits[:0]
	atCut := e.ac.scan(text, cut, func(id int32, end int) {
		if end > cut {
			return // in the unstable tail: not settled, and held by the cut
		}
		ph := &e.pats[id]
		start := end - int(e.ac.patLen[id])
		if ph.boundaryStart && start > 0 && !pv.isSoft(start) {
			if r, _ := utf8.DecodeLastRuneInString(text[:start]); isWordRune(r) {
				return
			}
		}
		mend := end
		if ph.boundaryEnd && end < len(text) && !pv.isSoft(end) {
			if r, _ := utf8.DecodeRuneInString(text[end:]); isWordRune(r) {
				if !ph.suffixes {
					return
				}
				f := end
				for f < len(text) {
					r, size := utf8.DecodeRuneInString(text[f:])
					if !isWordRune(r) || f > end && pv.isSoft(f) {
						break
					}
					f += size
				}
				if !final && f >= cut {
					holdOwners(ph, start) // the word may still end as an inflection
					return
				}
				if !isSuffix(text[end:f], text[end-1]) {
					return
				}
				mend = f
			}
		}
		for k := ph.ownerLo; k < ph.ownerHi; k++ {
			if e.owners[k].act[si].Enabled() {
				sc.hits = append(sc.hits, hit{owner: k, start: int32(start), end: int32(mend)})
			}
		}
	})
	if !final {
		if d := e.open[si][atCut]; d > 0 {
			open = min(open, cut-int(d))
			h.add(pv.origStart(cut-int(d)), false)
		}
		if d := e.openStrong[si][atCut]; d > 0 {
			h.add(pv.origStart(cut-int(d)), true)
		}
	}
	if len(sc.hits) == 0 {
		return out
	}
	e.dropExceptions(sc)
	sc.kw, sc.concepts = sc.kw[:0], sc.concepts[:0]
	for _, ht := range sc.hits {
		o := &e.owners[ht.owner]
		switch {
		case o.kind == ownException:
		case o.kind == ownConcept:
			sc.concepts = append(sc.concepts, ht)
		case o.kind == ownTopicKeyword && e.topics[o.topic].minKeywords > 1:
			sc.kw = append(sc.kw, ht)
		default:
			start, end := pv.span(int(ht.start), int(ht.end))
			out = append(out, guard.Finding{Policy: o.pol, Type: o.typ, Action: o.act[si].Guard(), Start: start, End: end})
		}
	}
	if len(sc.kw) > 0 {
		out = e.cooccurrence(sc, si, final, open, h, out)
	}
	if len(sc.concepts) > 0 {
		out = e.evalRules(sc, si, final, open, h, out)
	}
	return out
}

// dropExceptions removes from sc.hits the matches that lie inside a match
// of an exception of the same entry.
func (e *Engine) dropExceptions(sc *scratch) {
	sc.exc = sc.exc[:0]
	for _, ht := range sc.hits {
		if e.owners[ht.owner].kind == ownException {
			sc.exc = append(sc.exc, ht)
		}
	}
	if len(sc.exc) == 0 {
		return
	}
	w := 0
	for _, ht := range sc.hits {
		o := &e.owners[ht.owner]
		if o.kind != ownException && o.target >= 0 && slices.ContainsFunc(sc.exc, func(x hit) bool {
			return e.owners[x.owner].target == o.target && x.start <= ht.start && ht.end <= x.end
		}) {
			continue
		}
		sc.hits[w] = ht
		w++
	}
	sc.hits = sc.hits[:w]
}

// cooccurrence reports a topic with minKeywords > 1 where that many
// different keywords occur within cooccurrenceWindow bytes of the phrase
// view: a finding from the first of them to the one that completes the
// set, each time the set becomes complete (not again for every further
// keyword while it stays complete). The decision at a keyword depends only
// on the keywords at most two windows before it, which the streaming
// scanner keeps.
func (e *Engine) cooccurrence(sc *scratch, si int, final bool, open int, h *holds, out []guard.Finding) []guard.Finding {
	pv := &sc.pv
	kw := sc.kw
	slices.SortStableFunc(kw, func(a, b hit) int {
		if c := int(e.owners[a.owner].topic) - int(e.owners[b.owner].topic); c != 0 {
			return c
		}
		return int(a.end) - int(b.end)
	})
	for i := 0; i < len(kw); {
		t := e.owners[kw[i].owner].topic
		j := i
		for j < len(kw) && e.owners[kw[j].owner].topic == t {
			j++
		}
		topic := &e.topics[t]
		hs := kw[i:j]
		complete := func(k int) (bool, int32) {
			var seen uint64
			start := hs[k].start
			for m := k; m >= 0; m-- {
				if int(hs[k].end-hs[m].start) > cooccurrenceWindow {
					continue
				}
				seen |= 1 << uint(e.owners[hs[m].owner].keyword)
				start = min(start, hs[m].start)
			}
			n := 0
			for ; seen != 0; seen &= seen - 1 {
				n++
			}
			return n >= topic.minKeywords, start
		}
		prev := false
		for k := range hs {
			ok, start := complete(k)
			if ok && !prev {
				s, en := pv.span(int(start), int(hs[k].end))
				out = append(out, guard.Finding{Policy: guard.PolicyTopics, Type: topic.name, Action: topic.act[si].Guard(), Start: s, End: en})
			}
			prev = ok
		}
		if !final {
			// A keyword still to come (it starts at open or later) may
			// complete a set with the ones in the window before it.
			for _, x := range hs {
				if open-int(x.start) < cooccurrenceWindow {
					h.add(pv.origStart(int(x.start)), strong(topic.act[si]))
					break
				}
			}
		}
		i = j
	}
	return out
}
