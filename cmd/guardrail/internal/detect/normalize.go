package detect

import (
	"unicode"
	"unicode/utf8"
)

// The normalizer: one definition of "the same text" that every detector
// uses, so that what a model reads through (invisible characters,
// full-width or mathematical letters, spaced-out letters, leetspeak) does
// not get past a detector that reads bytes.
//
// It makes two views of a text, each with a map from its bytes back to the
// original bytes, so that a finding in a view still masks the right bytes
// of the original:
//
//   - the base view (buildBase): invisible characters dropped (see
//     invisible), every rune folded to its NFKC form (compatFold). Case and
//     spacing are kept. The number, e-mail and key detectors and the custom
//     regexes run on it, so ＡＫＩＡ…, １３８ ００１３ ８０００ and
//     138\u200b00138000 are found like their plain forms.
//   - the phrase view (buildPhrase), made from the base view: accents
//     removed and lower-cased (searchFold, unicode.ToLower), Cyrillic and
//     Greek look-alikes folded to Latin, common leetspeak read as letters
//     inside words that have letters (sh1t, $hit, @ss), whitespace runs
//     collapsed (up to maxSpaceRun runes become one space, a longer run one
//     line break, which no phrase contains), a hyphen between two words
//     read as a space, separators dropped between
//     two CJK characters (傻 逼, 如*何*制*造) and inside a run of three or
//     more single letters or digits (f u c k, f.u.c.k, f_u_c_k). Word lists,
//     topics and the prompt-attack rules match on it.
//
// Both views are "stable" up to a point when the text may still grow (a
// stream): a later delta can change how the end of the text normalizes (a
// space run grows into a break, a lone letter becomes a spelled-out word),
// but never what comes before that point. The streaming scanner uses the
// stable points (see partial.go).

// maxSpaceRun is the longest whitespace run that still joins the words of
// a phrase; a longer run becomes a line break.
const maxSpaceRun = 4

// maxSepRun is the most separator runes (spaces and joiners) that are
// dropped between two CJK characters or two spelled-out letters.
const maxSepRun = 3

// view is a normalized copy of a text. start[i] and end[i] are where the
// original rune that produced byte i begins and ends; a span [i, j) of the
// view maps to [start[i], end[j-1]) of the original.
type view struct {
	text    string
	start   []int32
	end     []int32
	ident   bool // text is the original itself: start and end are implicit
	origLen int
}

// origStart is the original offset of view offset i (0 <= i <= len).
func (v *view) origStart(i int) int {
	if v.ident || i >= len(v.text) {
		if i >= len(v.text) {
			return v.origLen
		}
		return i
	}
	return int(v.start[i])
}

// span maps the view span [i, j), j > i, to the original.
func (v *view) span(i, j int) (int, int) {
	if v.ident {
		return i, j
	}
	return int(v.start[i]), int(v.end[j-1])
}

// buildBase makes the base view of s in v, reusing v's slices.
func buildBase(v *view, buf []byte, s string) []byte {
	v.origLen = len(s)
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		v.text, v.ident = s, true
		v.start, v.end = v.start[:0], v.end[:0]
		return buf
	}
	v.ident = false
	b, st, en := buf[:0], v.start[:0], v.end[:0]
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b, st, en = append(b, c), append(st, int32(i)), append(en, int32(i+1))
			i++
			continue
		}
		// CJK Unified Ideographs U+4E00..U+9FFF (lead bytes E4 B8..E9):
		// the bulk of Chinese text; NFKC-stable and visible.
		if c >= 0xE4 && c <= 0xE9 && i+2 < len(s) && s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 && (c != 0xE4 || s[i+1] >= 0xB8) {
			b = append(b, c, s[i+1], s[i+2])
			st = append(st, int32(i), int32(i), int32(i))
			en = append(en, int32(i+3), int32(i+3), int32(i+3))
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// An invalid byte stays as it is; nothing valid matches it.
			b, st, en = append(b, c), append(st, int32(i)), append(en, int32(i+1))
		case invisible(r):
		default:
			if m, ok := compatFold(r); ok {
				for _, mr := range m {
					if invisible(mr) {
						continue // NFKC of U+00A8 is a space and a combining mark
					}
					n := len(b)
					b = utf8.AppendRune(b, mr)
					for range len(b) - n {
						st, en = append(st, int32(i)), append(en, int32(i+size))
					}
				}
			} else {
				b = append(b, s[i:i+size]...)
				for range size {
					st, en = append(st, int32(i)), append(en, int32(i+size))
				}
			}
		}
		i += size
	}
	v.text, v.start, v.end = string(b), st, en
	return b
}

// Rune classes of the phrase view.
const (
	clsOther uint8 = iota
	clsSpace
	clsJoin // a separator that may be dropped: * . - _ / \ | ~ + ^ = # ` ' " · •
	clsWord // letters and digits other than CJK
	clsCJK  // Han, kana, Hangul, Bopomofo: written without spaces
	clsLeet // @ $ ! before leetspeak is resolved
)

// item is one rune of the phrase view before separators are dropped,
// with the span of the base-view rune it came from.
type item struct {
	r     rune
	cls   uint8
	bs    int32 // base-view span
	be    int32
	out   int32 // offset in the phrase view, -1 if dropped
	token int32 // for clsWord items: length in runes of its word token
}

// phraseView is the phrase view with what matching needs beyond the text.
type phraseView struct {
	view
	// soft are the view offsets, in increasing order, where a dropped
	// separator joined two spelled-out letters: word boundaries for
	// matching, although the letters touch.
	soft []int32
	// cut is the stable part of the view when the text may still grow:
	// view[:cut] is final, and cutOrig is where it ends in the original.
	cut     int
	cutOrig int
}

func classify(r rune) uint8 {
	switch {
	case r < utf8.RuneSelf:
		return asciiClass[r]
	case unicode.IsSpace(r) || r == 0x2800: // U+2800 BRAILLE PATTERN BLANK renders as a space
		return clsSpace
	case r == '·' || r == '•' || r == '‧' || r == '・' || r == '∙':
		return clsJoin
	case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo):
		return clsCJK
	case unicode.IsLetter(r) || unicode.IsDigit(r):
		return clsWord
	default:
		return clsOther
	}
}

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			t[c] = clsWord
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			t[c] = clsSpace
		case c == '@' || c == '$' || c == '!':
			t[c] = clsLeet
		}
	}
	for _, c := range "*.-_/\\|~+^=#`'\"" {
		t[c] = clsJoin
	}
	return t
}()

// leet maps digits read as letters inside a word that has letters.
var leet = [10]rune{0: 'o', 1: 'i', 3: 'e', 4: 'a', 5: 's', 7: 't'}

func isASCIILetter(r rune) bool { return r >= 'a' && r <= 'z' }

// buildPhrase makes the phrase view of the base view b in pv. final says
// the text is complete; otherwise pv.cut is set to the stable part.
func buildPhrase(pv *phraseView, items []item, out []byte, b *view, final bool) ([]item, []byte) {
	items = items[:0]
	s := b.text
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		add := func(r rune) {
			r = unicode.ToLower(r)
			if h, ok := homoglyphs[r]; ok {
				r = h
			}
			items = append(items, item{r: r, cls: classify(r), bs: int32(i), be: int32(i + size)})
		}
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			items = append(items, item{r: r, cls: asciiClass[r], bs: int32(i), be: int32(i + 1)})
		case r >= 0x4E00 && r <= 0x9FFF:
			items = append(items, item{r: r, cls: clsCJK, bs: int32(i), be: int32(i + size)})
		default:
			if m, ok := searchFold(r); ok {
				for _, mr := range m {
					add(mr)
				}
			} else {
				add(r)
			}
		}
		i += size
	}
	resolveLeet(items)
	markTokens(items)
	dropSeparators(items)
	cut := len(items)
	if !final {
		cut = stableItems(items)
	}
	return items, emitPhrase(pv, items, out, b, cut)
}

// resolveLeet reads leetspeak inside runs of ASCII letters, digits and
// @$! that contain at least one letter: 0134 57 are o i e a s t, @ is a,
// $ is s, and ! is i when a letter follows it ("sh!t", but "fuck!" keeps
// its exclamation mark). Runs without letters (2024, $100) are left
// alone.
func resolveLeet(items []item) {
	for i := 0; i < len(items); {
		j, letters := i, false
		for j < len(items) {
			it := &items[j]
			if it.r >= utf8.RuneSelf || it.cls != clsWord && it.cls != clsLeet {
				break
			}
			letters = letters || isASCIILetter(it.r)
			j++
		}
		if j == i {
			i++
			continue
		}
		if letters {
			for k := i; k < j; k++ {
				it := &items[k]
				switch r := it.r; {
				case r >= '0' && r <= '9':
					if l := leet[r-'0']; l != 0 {
						it.r = l
					}
				case r == '@':
					it.r, it.cls = 'a', clsWord
				case r == '$':
					it.r, it.cls = 's', clsWord
				case r == '!':
					if k+1 < j && (isASCIILetter(items[k+1].r) || items[k+1].r == '@' || items[k+1].r == '$') {
						it.r, it.cls = 'i', clsWord
					}
				}
			}
		}
		for k := i; k < j; k++ {
			if items[k].cls == clsLeet {
				items[k].cls = clsOther
			}
		}
		i = j
	}
}

// markTokens records on every word item the length of its word token.
func markTokens(items []item) {
	for i := 0; i < len(items); {
		if items[i].cls != clsWord {
			i++
			continue
		}
		j := i
		for j < len(items) && items[j].cls == clsWord {
			j++
		}
		for k := i; k < j; k++ {
			items[k].token = int32(j - i)
		}
		i = j
	}
}

// sepRun returns the end of the run of separators (spaces and joiners)
// starting at i, and whether it is short enough to be dropped.
func sepRun(items []item, i int) (int, bool) {
	j := i
	for j < len(items) && (items[j].cls == clsSpace || items[j].cls == clsJoin) {
		j++
	}
	return j, j-i <= maxSepRun
}

// dropSeparators marks (out = -1) the separators that are dropped: between
// two CJK characters, and between the single letters of a spelled-out
// word of three or more. Other items get out = 0 (kept).
func dropSeparators(items []item) {
	for i := range items {
		items[i].out = 0
	}
	for i := 0; i < len(items); i++ {
		it := items[i]
		switch {
		case it.cls == clsCJK:
			j, short := sepRun(items, i+1)
			if j > i+1 && short && j < len(items) && items[j].cls == clsCJK {
				for k := i + 1; k < j; k++ {
					items[k].out = -1
				}
			}
		case it.cls == clsWord && it.token == 1:
			// A chain: single-letter tokens joined by short separator runs.
			n, k, last := 1, i, i
			for {
				j, short := sepRun(items, k+1)
				if j == k+1 || !short || j >= len(items) || items[j].cls != clsWord || items[j].token != 1 {
					break
				}
				n, k, last = n+1, j, j
			}
			if n >= 3 {
				for k := i + 1; k < last; k++ {
					if items[k].cls != clsWord {
						items[k].out = -1
					}
				}
			}
			i = last
		}
	}
}

// stableItems returns how many leading items normalize the same whatever
// follows them: the trailing separators, the word before them, and, when
// that word is a single letter, the spelled-out chain it may belong to,
// are not.
func stableItems(items []item) int {
	p := len(items)
	for p > 0 && (items[p-1].cls == clsSpace || items[p-1].cls == clsJoin || items[p-1].cls == clsOther && (items[p-1].r == '!' || items[p-1].r == '@' || items[p-1].r == '$')) {
		p--
	}
	if p < len(items) && p > 0 && items[p-1].cls == clsCJK {
		return p // the separators after a CJK character may be dropped or not
	}
	q := p
	for q > 0 && items[q-1].cls == clsWord {
		q--
	}
	if q == p {
		return p
	}
	// The leetspeak run the word is in: "$0" reads as "so" once a letter
	// follows.
	for q > 0 && items[q-1].r < utf8.RuneSelf && (asciiClass[items[q-1].r] == clsWord || items[q-1].r == '@' || items[q-1].r == '$' || items[q-1].r == '!') {
		q--
	}
	if p-q == 1 {
		// A lone letter: walk back over the chain it may join.
		for {
			k := q - 1
			for k >= 0 && q-k <= maxSepRun && (items[k].cls == clsSpace || items[k].cls == clsJoin) {
				k--
			}
			if k < 0 || k == q-1 || items[k].cls != clsWord || items[k].token != 1 || (k > 0 && items[k-1].cls == clsWord) {
				break
			}
			q = k
		}
	}
	return q
}

// emitPhrase writes the kept items, collapsing whitespace runs, into pv
// and records soft boundaries; cut (an item index) becomes pv.cut.
func emitPhrase(pv *phraseView, items []item, out []byte, b *view, cut int) []byte {
	out = out[:0]
	st, en, soft := pv.start[:0], pv.end[:0], pv.soft[:0]
	pv.cut, pv.cutOrig = -1, b.origLen
	emit := func(r rune, bs, be int32) {
		os, oe := b.span(int(bs), int(be))
		n := len(out)
		out = utf8.AppendRune(out, r)
		for range len(out) - n {
			st, en = append(st, int32(os)), append(en, int32(oe))
		}
	}
	prevDropped := false
	for i := 0; i < len(items); {
		if i == cut {
			pv.cut, pv.cutOrig = len(out), b.origStart(int(items[i].bs))
		}
		it := &items[i]
		if it.out < 0 {
			prevDropped = true
			i++
			continue
		}
		it.out = int32(len(out))
		if it.cls == clsSpace {
			j := i
			for j < len(items) && items[j].cls == clsSpace && items[j].out >= 0 && (j == i || j != cut) {
				items[j].out = int32(len(out))
				j++
			}
			r := ' '
			if j-i > maxSpaceRun {
				r = '\n'
			}
			emit(r, it.bs, items[j-1].be)
			prevDropped = false
			i = j
			continue
		}
		if prevDropped && it.cls == clsWord && i > 0 {
			soft = append(soft, int32(len(out)))
		}
		prevDropped = false
		r := it.r
		if r == '-' && i > 0 && i+1 < len(items) && items[i-1].cls == clsWord && items[i+1].cls == clsWord {
			r = ' ' // "money-laundering" is the phrase "money laundering"
		}
		emit(r, it.bs, it.be)
		i++
	}
	if pv.cut < 0 {
		pv.cut = len(out)
	}
	pv.text, pv.start, pv.end, pv.soft = string(out), st, en, soft
	pv.ident, pv.origLen = false, b.origLen
	return out
}

// isSoft reports whether off is a soft boundary of pv.
func (pv *phraseView) isSoft(off int) bool {
	lo, hi := 0, len(pv.soft)
	for lo < hi {
		m := (lo + hi) / 2
		switch s := int(pv.soft[m]); {
		case s < off:
			lo = m + 1
		case s > off:
			hi = m
		default:
			return true
		}
	}
	return false
}

// normalizePattern is the phrase view of a word, topic phrase or attack
// term from the policy: whitespace inside collapses to one space (a
// pattern never contains a break) and surrounding whitespace is dropped.
func normalizePattern(s string) string {
	var b view
	buildBase(&b, nil, s)
	var pv phraseView
	buildPhrase(&pv, nil, nil, &b, true)
	t := []byte(pv.text)
	start, end := 0, len(t)
	for start < end && (t[start] == ' ' || t[start] == '\n') {
		start++
	}
	for end > start && (t[end-1] == ' ' || t[end-1] == '\n') {
		end--
	}
	t = t[start:end]
	for i, c := range t {
		if c == '\n' {
			t[i] = ' '
		}
	}
	return string(t)
}

// isWordRune reports whether r continues a word for the boundary check of
// phrases that start or end with a letter or digit: letters and digits of
// any script but CJK (Chinese is written without spaces, so Chinese
// phrases match anywhere), and underscore, so that "ass" matches neither
// "class" nor "ass_1".
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiClass[r] == clsWord || r == '_'
	}
	return classify(r) == clsWord
}
