package detect

import (
	"sort"
	"unicode"
)

//go:generate go run gen_fold.go

// compatFold returns NFKC(r) when it differs from r: full-width ２ is 2,
// 𝐟 is f, ① is 1, ⼀ (a Kangxi radical) is 一, ﬁ is fi. The table comes from
// golang.org/x/text/unicode/norm (gen_fold.go); NFKC per rune rather than
// per string is enough here, because the detectors only care about what a
// rune stands for, not about canonical composition across runes.
func compatFold(r rune) (string, bool) {
	return lookup(compatKeys[:], compatIdx[:], compatVals, r)
}

// searchFold returns r decomposed, without combining marks and
// lower-cased, when that differs from unicode.ToLower(r): é is e, Å is a.
func searchFold(r rune) (string, bool) {
	return lookup(searchKeys[:], searchIdx[:], searchVals, r)
}

func lookup(keys []rune, idx []uint16, vals string, r rune) (string, bool) {
	i := sort.Search(len(keys), func(i int) bool { return keys[i] >= r })
	if i < len(keys) && keys[i] == r {
		return vals[idx[i]:idx[i+1]], true
	}
	return "", false
}

// invisible reports whether the normalizer drops r: format characters
// (Cf: U+200B..U+200F, U+2060..U+2064, U+FEFF, the soft hyphen U+00AD,
// bidi controls, tag characters), the other default-ignorable code points
// (U+3164 HANGUL FILLER, U+115F, U+FFA0, ...), variation selectors and
// combining marks (Mn, Me). A reader does not see them, or sees them as
// part of the letter before; a model reads straight through them. Dropping
// combining marks also folds accents that a precomposed letter would have
// had (searchFold does the same for those), so "fück" reads as "fuck".
func invisible(r rune) bool {
	if r < 0xAD {
		return false
	}
	return unicode.In(r, unicode.Cf, unicode.Mn, unicode.Me, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// homoglyphs maps lower-case Cyrillic and Greek letters that look like
// Latin ones to those Latin letters ("fuсk" with a Cyrillic с). Text and
// patterns go through the same map, so a Russian or Greek word in a list
// still matches itself.
var homoglyphs = map[rune]rune{
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c',
	'т': 't', 'у': 'y', 'х': 'x', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd', 'ӏ': 'l', 'ԛ': 'q', 'ԝ': 'w',
	'α': 'a', 'β': 'b', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x',
}
