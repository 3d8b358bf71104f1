package proxy

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardtest"
)

// feed pushes the pieces through a fresh window and returns what was
// released, piece by piece, and whether it blocked.
func feed(t *testing.T, c guard.Checker, pieces []string) (out []string, findings int, blocked bool) {
	t.Helper()
	sc := safeChecker{c: c}
	w := window{holdback: c.Holdback(guard.Output)}
	for i, p := range pieces {
		r, err := w.push(sc, p, i == len(pieces)-1, true)
		require.NoError(t, err)
		findings += len(r.findings)
		if r.block {
			return out, findings, true
		}
		if r.text != "" {
			out = append(out, r.text)
		}
	}
	return out, findings, false
}

const phone = "13812345678"

// TestWindowMasksSplitPhone splits a text around a phone number at every
// possible position into two and into three pieces: the number must come
// out masked, whole, and no digit of it may leak in any release.
func TestWindowMasksSplitPhone(t *testing.T) {
	texts := []string{
		"call " + phone + " now",
		phone,
		"电话" + phone + "，谢谢",
		strings.Repeat("padding ", 10) + phone + strings.Repeat(" tail", 10),
	}
	c := guardtest.New()
	for _, text := range texts {
		want := strings.Replace(text, phone, "{CN_MOBILE}", 1)
		check := func(t *testing.T, pieces []string) {
			out, n, blocked := feed(t, c, pieces)
			require.False(t, blocked)
			joined := strings.Join(out, "")
			require.Equal(t, want, joined, "pieces %q", pieces)
			assert.Equal(t, 1, n, "the number is counted once")
			for _, o := range out {
				assert.True(t, utf8.ValidString(o), "release %q splits a rune", o)
				assert.NotContains(t, o, "1381", "release %q leaks the number", o)
			}
		}
		// Split points are rune boundaries: upstream deltas are JSON strings,
		// hence whole runes.
		var cuts []int
		for i := range text {
			cuts = append(cuts, i)
		}
		cuts = append(cuts, len(text))
		t.Run("two/"+text, func(t *testing.T) {
			for _, i := range cuts {
				check(t, []string{text[:i], text[i:]})
			}
		})
		t.Run("three/"+text, func(t *testing.T) {
			for a, i := range cuts {
				for _, j := range cuts[a:] {
					check(t, []string{text[:i], text[i:j], text[j:]})
				}
			}
		})
	}
}

// TestWindowTokenByToken streams byte-sized and token-sized pieces and
// checks the bound on what is held back.
func TestWindowTokenByToken(t *testing.T) {
	c := guardtest.New()
	hb := c.Holdback(guard.Output)
	text := "first " + phone + " then 13900001111 and 139000011112 (twelve digits, not a phone) end"
	want := "first {CN_MOBILE} then {CN_MOBILE} and 139000011112 (twelve digits, not a phone) end"
	for _, size := range []int{1, 2, 3, 4, 7, 16} {
		t.Run("size"+strconv.Itoa(size), func(t *testing.T) {
			sc := safeChecker{c: c}
			w := window{holdback: hb}
			var got strings.Builder
			fed := 0
			for i := 0; i < len(text); i += size {
				end := min(i+size, len(text))
				r, err := w.push(sc, text[i:end], end == len(text), true)
				require.NoError(t, err)
				require.False(t, r.block)
				got.WriteString(r.text)
				fed = end
				if end < len(text) {
					// Held back: at most the holdback, plus a match that
					// straddles the boundary (at most holdback long).
					held := len(w.buf) - w.released
					assert.LessOrEqual(t, held, 2*hb, "after %d bytes", fed)
				}
			}
			assert.Equal(t, want, got.String())
		})
	}
}

// TestWindowBlocksBeforeReleasingTheWord moves a blocked word through
// every position relative to the release boundary: not one byte of it may
// be released before the block.
func TestWindowBlocksBeforeReleasingTheWord(t *testing.T) {
	c := guardtest.New()
	hb := c.Holdback(guard.Output)
	for pad := 0; pad <= 2*hb+3; pad++ {
		text := strings.Repeat("a fine text ", 8)[:pad] + " the forbidden word and more text after it"
		wordAt := strings.Index(text, "forbidden")
		for size := 1; size <= 12; size++ {
			sc := safeChecker{c: c}
			w := window{holdback: hb}
			var got strings.Builder
			blocked := false
			for i := 0; i < len(text) && !blocked; i += size {
				end := min(i+size, len(text))
				r, err := w.push(sc, text[i:end], end == len(text), true)
				require.NoError(t, err)
				got.WriteString(r.text)
				blocked = r.block
			}
			assert.True(t, blocked, "pad %d size %d", pad, size)
			assert.LessOrEqual(t, got.Len(), wordAt, "pad %d size %d: released %q", pad, size, got.String())
			assert.True(t, strings.HasPrefix(text, got.String()))
		}
	}
}

func TestWindowObserveOnly(t *testing.T) {
	c := guardtest.New()
	sc := safeChecker{c: c}
	w := window{holdback: c.Holdback(guard.Output)}
	n := 0
	for _, p := range []string{"call 138", "1234", "5678 now, then some more text to move on"} {
		r, err := w.push(sc, p, false, false)
		require.NoError(t, err)
		n += len(r.findings)
		assert.NotContains(t, r.text, "{CN_MOBILE}", "observing never masks")
	}
	r, err := w.push(sc, "", true, false)
	require.NoError(t, err)
	n += len(r.findings)
	assert.Equal(t, 1, n)
}

func TestWindowZeroHoldbackReleasesAtOnce(t *testing.T) {
	sc := safeChecker{c: zeroHoldback{guardtest.New()}}
	w := window{}
	r, err := w.push(sc, "héllo", false, true)
	require.NoError(t, err)
	assert.Equal(t, "héllo", r.text)
}

type zeroHoldback struct{ *guardtest.Fake }

func (zeroHoldback) Holdback(guard.Source) int { return 0 }

func TestWindowEngineFailure(t *testing.T) {
	f := guardtest.New()
	f.PanicOnCue = "boom"
	sc := safeChecker{c: f}
	w := window{holdback: f.Holdback(guard.Output)}
	_, err := w.push(sc, "this text goes boom at some point, long enough to scan", false, true)
	assert.ErrorIs(t, err, errCheck)
}

func TestStripThink(t *testing.T) {
	tests := []struct {
		in, want string
		changed  bool
	}{
		{in: "<think>\nplan</think>\n\nanswer", want: "answer", changed: true},
		{in: "plan only, bare close</think>answer", want: "answer", changed: true},
		{in: "  <think>cut off by max_tokens", want: "", changed: true},
		{in: "no reasoning at all", want: "no reasoning at all", changed: false},
	}
	for _, tt := range tests {
		got, changed := stripThink(tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		assert.Equal(t, tt.changed, changed, tt.in)
	}
}

func TestThinkFilterStreamed(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		want   string
	}{
		{name: "bare close split", pieces: []string{"reason", "ing </th", "ink>\n", "\nThe ", "answer"}, want: "The answer"},
		{name: "open and close", pieces: []string{"<think>", "x", "</think>", "A"}, want: "A"},
		{name: "no reasoning", pieces: []string{"just ", "an answer"}, want: "just an answer"},
		{name: "unclosed", pieces: []string{"<think>", "never ends"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f thinkFilter
			var got strings.Builder
			for _, p := range tt.pieces {
				got.WriteString(f.feed(p))
			}
			got.WriteString(f.end())
			assert.Equal(t, tt.want, got.String())
		})
	}
}
