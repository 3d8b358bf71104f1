package policy

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// unbounded is matchBounds' maximum for patterns with *, + or {n,}.
const unbounded = -1

// saturate keeps length arithmetic on pathological repeats ({1000}{1000}
// is refused by the compiler, but nested alternations still multiply) far
// from overflow; anything this long is treated as unbounded anyway.
const saturate = 1 << 30

// matchBounds returns the shortest and longest match of re in bytes of
// UTF-8 text; max is unbounded for open repetitions. The minimum finds
// patterns that can match the empty string; the maximum checks maxLength.
func matchBounds(re *syntax.Regexp) (min, max int) {
	switch re.Op {
	case syntax.OpNoMatch:
		return saturate, 0
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0, 0
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			lo, hi := runeBytes(r, re.Flags&syntax.FoldCase != 0)
			min, max = add(min, lo), add(max, hi)
		}
		return min, max
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return saturate, 0
		}
		lo, hi := re.Rune[0], re.Rune[len(re.Rune)-1]
		min = utf8.RuneLen(lo)
		// An invalid byte in the text decodes as U+FFFD with width 1, so
		// a class holding U+FFFD can match a single byte.
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= utf8.RuneError && utf8.RuneError <= re.Rune[i+1] {
				min = 1
			}
		}
		return min, runeLen(hi)
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return 1, utf8.UTFMax
	case syntax.OpCapture:
		return matchBounds(re.Sub[0])
	case syntax.OpStar:
		_, smax := matchBounds(re.Sub[0])
		if smax == 0 {
			return 0, 0
		}
		return 0, unbounded
	case syntax.OpPlus:
		smin, smax := matchBounds(re.Sub[0])
		if smax == 0 {
			return smin, 0
		}
		return smin, unbounded
	case syntax.OpQuest:
		_, smax := matchBounds(re.Sub[0])
		return 0, smax
	case syntax.OpRepeat:
		smin, smax := matchBounds(re.Sub[0])
		min = mul(re.Min, smin)
		switch {
		case smax == 0:
			max = 0
		case re.Max == -1 || smax == unbounded:
			max = unbounded
		default:
			max = mul(re.Max, smax)
		}
		return min, max
	case syntax.OpConcat:
		for _, s := range re.Sub {
			smin, smax := matchBounds(s)
			min = add(min, smin)
			if max != unbounded {
				if smax == unbounded {
					max = unbounded
				} else {
					max = add(max, smax)
				}
			}
		}
		return min, max
	case syntax.OpAlternate:
		min = saturate
		for _, s := range re.Sub {
			smin, smax := matchBounds(s)
			if smin < min {
				min = smin
			}
			if max != unbounded && (smax == unbounded || smax > max) {
				max = smax
			}
		}
		return min, max
	default:
		// Unknown future operators: assume the worst on both ends, which
		// refuses the pattern as possibly empty rather than guessing.
		return 0, unbounded
	}
}

// runeBytes is the UTF-8 length range of r, over its case-fold orbit when
// the literal is case-insensitive: (?i)k also matches the Kelvin sign, 3
// bytes.
func runeBytes(r rune, fold bool) (lo, hi int) {
	lo, hi = runeLen(r), runeLen(r)
	if !fold {
		return lo, hi
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		n := runeLen(f)
		if n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	return lo, hi
}

func runeLen(r rune) int {
	if n := utf8.RuneLen(r); n > 0 {
		return n
	}
	return utf8.UTFMax // surrogates and out-of-range runes cannot be literals; be generous
}

func add(a, b int) int {
	if a+b > saturate {
		return saturate
	}
	return a + b
}

func mul(a, b int) int {
	if a != 0 && b > saturate/a {
		return saturate
	}
	return a * b
}
