package detect

import (
	"unicode"
	"unicode/utf8"
)

// Word lists, topics and prompt-attack phrases are matched on a normalized
// copy of the text, so that "Ignore  ALL previous" and full-width
// "ｉｇｎｏｒｅ" match the phrase "ignore all previous":
//
//   - full-width ASCII forms (U+FF01..U+FF5E) become ASCII, as Chinese input
//     methods produce them;
//   - Latin letters are lower-cased (simple case mapping, Latin script only:
//     Chinese has no case, and lower-casing other scripts is not asked for);
//   - a run of up to maxSpaceRun whitespace characters becomes one space; a
//     longer run becomes a line break, which no phrase contains, so a phrase
//     never spans it. The cap keeps the original length of a match bounded,
//     which the streaming holdback relies on.
//
// Nothing is dropped, so the original spans of consecutive normalized runes
// tile the text, and one offset per normalized byte maps matches back.
const maxSpaceRun = 4

// maxOrigSpace is the most original bytes one normalized space stands for:
// maxSpaceRun runes of at most 3 bytes (U+3000 IDEOGRAPHIC SPACE).
const maxOrigSpace = maxSpaceRun * 3

// normalizePattern normalizes a phrase from the policy. Whitespace inside a
// phrase always collapses to one space (a phrase may not contain a break),
// and surrounding whitespace is dropped.
func normalizePattern(s string) string {
	norm, _ := normalize(nil, nil, s)
	return string(trimPattern(norm))
}

// trimPattern finishes normalizePattern in place on normalized bytes.
func trimPattern(norm []byte) []byte {
	start, end := 0, len(norm)
	for start < end && (norm[start] == ' ' || norm[start] == '\n') {
		start++
	}
	for end > start && (norm[end-1] == ' ' || norm[end-1] == '\n') {
		end--
	}
	out := norm[start:end]
	for i, c := range out {
		if c == '\n' {
			out[i] = ' '
		}
	}
	return out
}

// normalize appends the normalized text to dst and, for every byte
// appended, the original offset of the rune it came from to off; off ends
// with len(s), so the original span of normalized [a, b) is [off[a], off[b]).
func normalize(dst []byte, off []int32, s string) ([]byte, []int32) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if asciiSpace[c] {
				dst, off, i = spaceRun(dst, off, s, i)
				continue
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			off = append(off, int32(i))
			i++
			continue
		}
		// Fast path for CJK Unified Ideographs (U+4E00..U+9FFF, lead bytes
		// E4..E9), the bulk of Chinese text: no case, no width variant, not
		// a space, so the three bytes are copied as they are.
		if c >= 0xE4 && c <= 0xE9 && i+2 < len(s) && s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 &&
			(c != 0xE4 || s[i+1] >= 0xB8) {
			dst = append(dst, c, s[i+1], s[i+2])
			off = append(off, int32(i), int32(i), int32(i))
			i += 3
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			// Invalid byte: keep it as it is; no phrase (valid UTF-8) can
			// match through it.
			dst = append(dst, c)
			off = append(off, int32(i))
			i++
			continue
		case unicode.IsSpace(r):
			dst, off, i = spaceRun(dst, off, s, i)
			continue
		default:
			r = foldRune(r)
		}
		n := len(dst)
		dst = utf8.AppendRune(dst, r)
		for k := n; k < len(dst); k++ {
			off = append(off, int32(i))
		}
		i += size
	}
	off = append(off, int32(len(s)))
	return dst, off
}

// spaceRun collapses the whitespace run starting at s[i].
func spaceRun(dst []byte, off []int32, s string, i int) ([]byte, []int32, int) {
	start, n := i, 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if !asciiSpace[c] {
				break
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += size
		}
		n++
	}
	b := byte(' ')
	if n > maxSpaceRun {
		b = '\n'
	}
	return append(dst, b), append(off, int32(start)), i
}

var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// foldRune maps one non-ASCII rune to its normalized form.
func foldRune(r rune) rune {
	if r >= 0xFF01 && r <= 0xFF5E { // FULLWIDTH EXCLAMATION MARK .. FULLWIDTH TILDE
		r -= 0xFF01 - 0x21
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	if unicode.Is(unicode.Latin, r) {
		return unicode.ToLower(r)
	}
	return r
}

// maxOrigBytes bounds how many original bytes can normalize to r: a space
// stands for a run of spaces, an ASCII character may come from its 3-byte
// full-width form (or the Kelvin sign for k), and lower-casing Latin keeps
// every letter within 3 bytes of UTF-8 except those already 4 bytes long.
func maxOrigBytes(r rune) int {
	if r == ' ' {
		return maxOrigSpace
	}
	if n := utf8.RuneLen(r); n > 3 {
		return n
	}
	return 3
}

// isWordRune reports whether r counts as part of a Latin word for the
// boundary check: ASCII letters, digits and underscore, Latin-script letters
// (é, ß) and combining marks (so "cafe" does not match decomposed "café").
// Chinese characters are not word runes: Chinese is written without spaces,
// so Chinese phrases match anywhere.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiWord[r]
	}
	return unicode.Is(unicode.Latin, r) || unicode.Is(unicode.Mn, r)
}

var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	t['_'] = true
	return t
}()
