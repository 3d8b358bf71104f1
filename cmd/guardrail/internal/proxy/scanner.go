package proxy

import (
	"unicode/utf8"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// window is the streaming scanner for one growing text: one field (content
// or reasoning) of one choice. It is a sliding window over the text:
//
//	buf = [ context | pending ]
//	       ^ already released, kept so that detectors see what precedes
//	         the pending text (a digit before a phone number, a word
//	         boundary); at most holdback bytes
//	                  ^ not yet released
//
// Each push appends a delta, scans the whole window, and releases the
// pending text up to a boundary that keeps the last holdback bytes back:
// any match that could still grow with the next delta lies in those bytes,
// because no match is longer than the holdback. A match that straddles the
// boundary moves it back to the match's start, so a value is released
// whole and masked, or not yet at all. The boundary never splits a UTF-8
// sequence, so every released delta is valid text. The delay this adds is
// bounded by holdback bytes, and the work per delta by the window size.
type window struct {
	buf      string
	released int // bytes of buf already released
	holdback int
}

// release is what one push lets through.
type release struct {
	text string // to send now (masked unless observing); may be empty
	// findings settled by this push: those wholly or partly inside the
	// released text, or the BLOCK findings that stop the stream. Their
	// offsets are relative to the window and only good for counting.
	findings []guard.Finding
	block    bool
}

// push appends text and releases what can safely be released; final
// releases everything (end of this text). With mask false the window only
// observes (async mode): it still scans with the same overlap and reports
// findings, but does not build masked text.
func (w *window) push(c safeChecker, text string, final, mask bool) (release, error) {
	w.buf += text
	pending := len(w.buf) - w.released
	if pending == 0 || (mask && !final && pending <= w.holdback) {
		// Nothing could be released yet: skip the scan. A BLOCK in these
		// bytes is found when they are scanned, before any is released.
		// An observing window scans every delta: its text is already out,
		// and the sooner a violation is seen the sooner the stream is cut.
		return release{}, nil
	}
	fs, err := c.scan(guard.Output, w.buf)
	if err != nil {
		return release{}, err
	}
	var r release
	for _, f := range fs {
		if f.Action == guard.ActionBlock && f.End > w.released {
			r.block = true
			r.findings = append(r.findings, f)
		}
	}
	if r.block {
		return r, nil
	}
	boundary := len(w.buf)
	if !final {
		boundary -= w.holdback
		// Findings are sorted by Start; moving the boundary back can make
		// an earlier finding straddle it, hence the loop.
		for moved := true; moved; {
			moved = false
			for _, f := range fs {
				if f.Start < boundary && f.End > boundary {
					boundary, moved = f.Start, true
				}
			}
		}
		for boundary > w.released && boundary < len(w.buf) && !utf8.RuneStart(w.buf[boundary]) {
			boundary--
		}
	}
	if boundary <= w.released {
		return r, nil
	}
	seg := w.buf[w.released:boundary]
	var local []guard.Finding
	anonymize := false
	for _, f := range fs {
		if f.End <= w.released || f.Start >= boundary {
			continue // already counted, or not yet released
		}
		r.findings = append(r.findings, f)
		// Offsets relative to seg. A finding that began in the context
		// (possible only if the engine's holdback is too small) is clipped:
		// its unreleased remainder is masked rather than leaked.
		f.Start = max(f.Start, w.released) - w.released
		f.End = min(f.End, boundary) - w.released
		local = append(local, f)
		anonymize = anonymize || f.Action == guard.ActionAnonymize
	}
	if mask && anonymize {
		// Mask a prefix of the scanned text with the findings that lie in
		// it: the findings were made with the right-hand context in view,
		// which a fresh scan of the prefix alone would lack.
		seg, err = c.mask(seg, local)
		if err != nil {
			return release{}, err
		}
	}
	r.text = seg
	w.released = boundary
	w.trim()
	return r, nil
}

// trim drops released text beyond the context the detectors need.
func (w *window) trim() {
	cut := w.released - w.holdback
	if cut <= 0 {
		return
	}
	for cut > 0 && cut < len(w.buf) && !utf8.RuneStart(w.buf[cut]) {
		cut--
	}
	// A substring shares the old backing array until the next push
	// allocates a new one, so this does not copy.
	w.buf = w.buf[cut:]
	w.released -= cut
}

// pending returns the unreleased text without checking it and marks it
// released: only for fail-open, when the engine has failed.
func (w *window) pending() string {
	p := w.buf[w.released:]
	w.released = len(w.buf)
	w.trim()
	return p
}

// hasPending reports whether some text has not been released yet.
func (w *window) hasPending() bool { return w.released < len(w.buf) }
