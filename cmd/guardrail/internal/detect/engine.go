// Package detect is the guardrail's policy engine: it implements
// guard.Checker and guard.StreamChecker for a validated policy.Policy.
//
// Everything is compiled once in New. A Scan normalizes the text once
// (normalize.go: a base view for numbers, e-mail, keys and custom regexes,
// a phrase view for words, topics and prompt attacks, both mapped back to
// the original bytes), runs the hand-written number scanners over the base
// view, each custom regex over it (skipped when the literal every match
// starts with is absent), and one Aho-Corasick automaton with every word,
// topic phrase, exception and prompt-attack term over the phrase view;
// prompt-attack rules and keyword co-occurrence are then evaluated on the
// automaton's hits. ScanPartial does the same on a text that may still
// grow and says which part of it is settled (partial.go).
//
// An Engine is immutable after New and safe for concurrent use.
package detect

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// Indexes of the built-in detectors in Engine.pii, in policy.PIITypes order.
const (
	piiResidentID = iota
	piiMobile
	piiBankCard
	piiEmail
	piiIPv4
	piiAWSKey
	numPII
)

var piiMaxLen = [numPII]int{maxResidentIDLen, maxMobileLen, maxBankCardLen, maxEmailLen, maxIPv4Len, maxAWSKeyLen}

// cooccurrenceWindow is how close, in bytes of the phrase view, the
// keywords of a topic with minKeywords > 1 must be: about 40 Chinese
// characters or 20 English words, a sentence or two. Keywords further apart
// are not about the same thing ("invest" in one paragraph, "buy" in the
// next), and a bounded window keeps the streaming verdict equal to the
// whole-text one.
const cooccurrenceWindow = 120

// Engine implements guard.Checker and guard.StreamChecker.
type Engine struct {
	pol     *policy.Policy
	pii     [numPII][2]policy.Action // per detector, per source index
	piiType [numPII]string
	regexes []compiledRegex

	ac      *acMatcher // nil when the policy has no phrases
	pats    []phrase   // per automaton pattern id
	owners  []owner    // owners of pattern i: owners[pats[i].ownerLo:pats[i].ownerHi]
	topics  []topicState
	attack  *compiledAttack // nil when prompt attack detection is off
	attAct  [2]policy.Action
	targets []string // exception targets: "policy\x00type"

	anyPhrase    [2]bool
	strongPhrase [2]bool
	// open[si] and openStrong[si] give, per automaton state, how far back
	// a match still open there may start, over the patterns enabled for
	// source si, and over those whose action changes the text.
	open       [2][]int32
	openStrong [2][]int32
	holdback   [2]int
	// lookPhrase is how much of the phrase view before the unsettled part
	// a streaming scan must keep: the context the phrase detectors look
	// back at (baseLookbehind is the same for the base view).
	lookPhrase int

	pool sync.Pool // *scratch, so that a Scan allocates little but its result
}

type compiledRegex struct {
	name string
	re   *regexp.Regexp
	act  [2]policy.Action
	max  int // maxLength
	// literal is a string every match starts with, or "": a text without
	// it is skipped. Go's regexp skips ahead to a literal prefix by
	// itself, but not past a leading \b or ^; it then tries every
	// position.
	literal string
}

// requiredLiteral returns the literal every match of pattern starts with,
// after any leading zero-width assertions, or "" when there is none (or it
// is case-insensitive).
func requiredLiteral(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	for {
		switch re.Op {
		case syntax.OpCapture:
			re = re.Sub[0]
			continue
		case syntax.OpLiteral:
			if re.Flags&syntax.FoldCase != 0 {
				return ""
			}
			return string(re.Rune)
		case syntax.OpConcat:
			var first *syntax.Regexp
			for _, sub := range re.Sub {
				if op := sub.Op; op != syntax.OpWordBoundary && op != syntax.OpNoWordBoundary &&
					op != syntax.OpBeginLine && op != syntax.OpBeginText {
					first = sub
					break
				}
			}
			if first == nil { // only assertions
				return ""
			}
			re = first
			continue
		}
		return ""
	}
}

// phrase is one distinct normalized phrase in the automaton. Several policy
// entries may share it (a word in two lists, a keyword that is also a word).
type phrase struct {
	boundaryStart bool // starts with a word rune: needs a boundary before
	boundaryEnd   bool // ends with one: needs a boundary (or an ending) after
	suffixes      bool // ends with a Latin letter: -s, -es, -ed, -ing, -er, -ers may follow
	maxOrig       int  // longest original text (without invisible characters) that normalizes to it
	ownerLo       int32
	ownerHi       int32
}

type ownerKind uint8

const (
	ownWord ownerKind = iota
	ownTopicExample
	ownTopicKeyword
	ownConcept
	ownException
)

// owner is a policy entry a phrase belongs to, with what a finding needs.
type owner struct {
	kind    ownerKind
	topic   int32 // topic index, for keywords
	keyword int32 // keyword index within its topic
	concept int32 // concept index, for prompt-attack terms
	target  int32 // for exceptions and the entries they apply to: index in Engine.targets, or -1
	pol     guard.Policy
	typ     string
	act     [2]policy.Action
}

// topicState is what co-occurrence matching needs to know of a topic.
type topicState struct {
	name        string
	minKeywords int
	act         [2]policy.Action
}

func srcIndex(src guard.Source) (int, bool) {
	switch src {
	case guard.Input:
		return 0, true
	case guard.Output:
		return 1, true
	default:
		return 0, false
	}
}

func both(d policy.Directions) [2]policy.Action { return [2]policy.Action{d.Input, d.Output} }

func enabled(a [2]policy.Action) bool { return a[0].Enabled() || a[1].Enabled() }

// strong reports whether a finding with action a changes what passes (so
// that streaming must not release text a match of it could still cover).
func strong(a policy.Action) bool { return a == policy.ActionBlock || a == policy.ActionAnonymize }

// New compiles p. p should come from policy.Load or policy.Parse; New
// still refuses what it cannot run (a missing or empty-matching regex), so
// that a hand-built policy fails here and not at the first request.
func New(p *policy.Policy) (*Engine, error) {
	if p == nil {
		return nil, errors.New("detect: nil policy")
	}
	e := &Engine{pol: p}
	e.pool.New = func() any { return new(scratch) }
	for k := range e.pii {
		e.pii[k] = [2]policy.Action{policy.ActionOff, policy.ActionOff}
		e.piiType[k] = string(policy.PIITypes[k])
	}
	for _, ent := range p.SensitiveInformation.PIIEntities {
		k := slices.Index(policy.PIITypes, ent.Type)
		if k < 0 {
			return nil, fmt.Errorf("detect: unknown PII type %q", ent.Type)
		}
		e.pii[k] = both(ent.Actions)
	}
	for _, r := range p.SensitiveInformation.Regexes {
		re := r.Compiled
		if re == nil {
			var err error
			if re, err = regexp.Compile(r.Pattern); err != nil {
				return nil, fmt.Errorf("detect: regex %s: %w", r.Name, err)
			}
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("detect: regex %s: pattern %q matches the empty string", r.Name, r.Pattern)
		}
		maxLen := r.MaxLength
		if maxLen <= 0 {
			maxLen = policy.DefaultRegexMaxLength
		}
		if enabled(both(r.Actions)) {
			e.regexes = append(e.regexes, compiledRegex{name: r.Name, re: re, act: both(r.Actions), max: maxLen, literal: requiredLiteral(r.Pattern)})
		}
	}
	if err := e.buildPhrases(p); err != nil {
		return nil, err
	}
	e.computeHoldback(p)
	return e, nil
}

// computeHoldback sizes Holdback per source: the longest match an enabled
// detector can produce, in bytes of the original text when it has no
// invisible characters, plus the boundary context it looks at. The
// streaming scanner of the gateway uses ScanPartial instead; Holdback is
// the bound for a scanner that only has Checker.
func (e *Engine) computeHoldback(p *policy.Policy) {
	for si := range e.holdback {
		longest := 0
		for k := range e.pii {
			if e.pii[k][si].Enabled() {
				longest = max(longest, piiMaxLen[k])
			}
		}
		for _, r := range e.regexes {
			if r.act[si].Enabled() {
				longest = max(longest, r.max)
			}
		}
		if e.anyPhrase[si] {
			for id := range e.pats {
				ph := &e.pats[id]
				for _, o := range e.owners[ph.ownerLo:ph.ownerHi] {
					if o.act[si].Enabled() && o.kind != ownConcept && o.kind != ownException {
						longest = max(longest, ph.maxOrig)
						break
					}
				}
			}
			if e.attack != nil && e.attAct[si].Enabled() {
				longest = max(longest, 3*e.attack.maxSpan)
			}
		}
		if longest > 0 {
			e.holdback[si] = longest + boundaryContext
		}
	}
}

// Policy returns the policy the engine was built from.
func (e *Engine) Policy() *policy.Policy { return e.pol }

// Holdback implements guard.Checker.
func (e *Engine) Holdback(src guard.Source) int {
	si, ok := srcIndex(src)
	if !ok {
		return 0
	}
	return e.holdback[si]
}

// BlockedMessage implements guard.Checker.
func (e *Engine) BlockedMessage(src guard.Source) string { return e.pol.BlockedMessages.For(src) }

// Scan implements guard.Checker. Findings are ordered by Start, then
// longest first; ANONYMIZE findings never overlap (of two that would, the
// earlier start wins, then the longer); BLOCK and NONE findings may overlap
// anything. An unknown source has no findings.
func (e *Engine) Scan(src guard.Source, text string) []guard.Finding {
	si, ok := srcIndex(src)
	if !ok || text == "" {
		return nil
	}
	sc := e.pool.Get().(*scratch)
	defer e.putScratch(sc)
	out := e.scan(sc, si, text, true, nil)
	if len(out) == 0 {
		return nil
	}
	return resolve(out)
}

func (e *Engine) putScratch(sc *scratch) {
	if cap(sc.base) <= 1<<20 && cap(sc.phrase) <= 1<<20 { // do not pin the memory of one huge request
		sc.reset()
		e.pool.Put(sc)
	}
}

// scan runs every detector on text for source si. With final false the
// text may still grow, and h collects where unsettled matches start.
func (e *Engine) scan(sc *scratch, si int, text string, final bool, h *holds) []guard.Finding {
	var out []guard.Finding
	sc.base = buildBase(&sc.bv, sc.base, text)
	out = e.scanPII(sc, si, final, h, out)
	out = e.scanRegexes(sc, si, final, h, out)
	if e.anyPhrase[si] {
		out = e.scanPhrases(sc, si, final, h, out)
	}
	return out
}

// scanRegexes runs the custom regexes on the base view.
func (e *Engine) scanRegexes(sc *scratch, si int, final bool, h *holds, out []guard.Finding) []guard.Finding {
	b := &sc.bv
	s := b.text
	for _, r := range e.regexes {
		act := r.act[si]
		if !act.Enabled() {
			continue
		}
		if !final {
			h.add(b.origStart(regexOpen(s, r)), strong(act))
		}
		if r.literal != "" && !strings.Contains(s, r.literal) {
			continue
		}
		for _, m := range r.re.FindAllStringIndex(s, -1) {
			if m[1] > m[0] {
				start, end := b.span(m[0], m[1])
				out = append(out, guard.Finding{Policy: guard.PolicySensitiveInformation, Type: r.name, Action: act.Guard(), Start: start, End: end})
			}
		}
	}
	return out
}

// regexOpen returns where a match of r that more text could still create
// or change may start in s: the first place in the last maxLength (+
// boundary context) bytes where its literal occurs or a prefix of it ends
// the text, or, without a literal, the start of those bytes.
func regexOpen(s string, r compiledRegex) int {
	from := max(0, len(s)-r.max-boundaryContext)
	if r.literal == "" {
		return from
	}
	if i := strings.Index(s[from:], r.literal); i >= 0 {
		return from + i
	}
	for k := min(len(r.literal)-1, len(s)); k > 0; k-- {
		if strings.HasSuffix(s, r.literal[:k]) {
			return len(s) - k
		}
	}
	return len(s)
}

// scanPII runs the built-in detectors on the base view.
func (e *Engine) scanPII(sc *scratch, si int, final bool, h *holds, out []guard.Finding) []guard.Finding {
	b := &sc.bv
	s := b.text
	var act [numPII]policy.Action
	var lastEnd [numPII]int
	for k := range act {
		act[k] = e.pii[k][si]
	}
	// A detector's own matches never overlap: "+86 13800138000" is one
	// number, not also a bare one starting at "138".
	emit := func(k, start, end int) {
		if start < lastEnd[k] {
			return
		}
		lastEnd[k] = end
		os, oe := b.span(start, end)
		out = append(out, guard.Finding{Policy: guard.PolicySensitiveInformation, Type: e.piiType[k], Action: act[k].Guard(), Start: os, End: oe})
	}
	id, mob, card, ip := act[piiResidentID].Enabled(), act[piiMobile].Enabled(), act[piiBankCard].Enabled(), act[piiIPv4].Enabled()
	if id || mob || card || ip {
		for i := 0; i < len(s); i++ {
			if !isDigit(s[i]) || i > 0 && isAlnum(s[i-1]) {
				continue
			}
			if id {
				end, ok, pending := residentID(s, i, final)
				switch {
				case ok:
					emit(piiResidentID, i, end)
				case pending:
					h.add(b.origStart(i), strong(act[piiResidentID]))
				}
			}
			if mob {
				if start, end, ok := mobile(s, i); ok {
					emit(piiMobile, start, end)
				}
			}
			if card {
				end, ok, pending := bankCard(s, i, final)
				switch {
				case ok:
					emit(piiBankCard, i, end)
				case pending:
					h.add(b.origStart(i), strong(act[piiBankCard]))
				}
			}
			if ip {
				if end, ok := ipv4(s, i); ok {
					emit(piiIPv4, i, end)
				}
			}
			// The rest of this token cannot start a match.
			for i+1 < len(s) && isAlnum(s[i+1]) {
				i++
			}
		}
		if !final {
			st := strong(act[piiResidentID]) || strong(act[piiMobile]) || strong(act[piiBankCard]) || strong(act[piiIPv4])
			h.add(b.origStart(openNumber(s, 2*maxMobileLen)), st)
		}
	}
	if act[piiEmail].Enabled() {
		emails(s, func(start, end int) { emit(piiEmail, start, end) })
		if !final {
			h.add(b.origStart(openRun(s, maxEmailLen+boundaryContext, func(c byte) bool { return isLocalChar(c) || c == '@' })), strong(act[piiEmail]))
		}
	}
	if act[piiAWSKey].Enabled() {
		awsKeys(s, func(start, end int) { emit(piiAWSKey, start, end) })
		if !final {
			h.add(b.origStart(openRun(s, maxAWSKeyLen+1, isAlnum)), strong(act[piiAWSKey]))
		}
	}
	return out
}

func policyRank(p guard.Policy) int {
	switch p {
	case guard.PolicySensitiveInformation:
		return 0
	case guard.PolicyWords:
		return 1
	case guard.PolicyTopics:
		return 2
	default:
		return 3
	}
}

func compareFindings(a, b guard.Finding) int {
	switch {
	case a.Start != b.Start:
		return a.Start - b.Start
	case a.End != b.End:
		return b.End - a.End // longer first
	case a.Policy != b.Policy:
		return policyRank(a.Policy) - policyRank(b.Policy)
	case a.Type != b.Type:
		return strings.Compare(a.Type, b.Type)
	default:
		return strings.Compare(string(a.Action), string(b.Action))
	}
}

// resolve sorts findings, drops exact duplicates (a phrase in two roles of
// one topic) and ANONYMIZE findings that overlap an earlier kept one.
func resolve(out []guard.Finding) []guard.Finding {
	slices.SortFunc(out, compareFindings)
	w, anonEnd := 0, 0
	for _, f := range out {
		if w > 0 && out[w-1] == f {
			continue
		}
		if f.Action == guard.ActionAnonymize {
			if f.Start < anonEnd {
				continue
			}
			anonEnd = f.End
		}
		out[w] = f
		w++
	}
	return out[:w]
}

// Mask implements guard.Checker: every ANONYMIZE finding is replaced by
// {TYPE}. Findings that are out of range or overlap an earlier replaced one
// are skipped rather than trusted, so that a caller's mistake cannot panic
// the gateway or garble the text.
func (e *Engine) Mask(text string, findings []guard.Finding) string {
	if !slices.IsSortedFunc(findings, func(a, b guard.Finding) int { return a.Start - b.Start }) {
		findings = slices.Clone(findings)
		slices.SortStableFunc(findings, func(a, b guard.Finding) int { return a.Start - b.Start })
	}
	var b strings.Builder
	last := 0
	for _, f := range findings {
		if f.Action != guard.ActionAnonymize || f.Start < last || f.End <= f.Start || f.End > len(text) {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(text))
		}
		b.WriteString(text[last:f.Start])
		b.WriteByte('{')
		b.WriteString(f.Type)
		b.WriteByte('}')
		last = f.End
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

var (
	_ guard.Checker       = (*Engine)(nil)
	_ guard.StreamChecker = (*Engine)(nil)
)
