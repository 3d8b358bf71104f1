package proxy

import (
	"fmt"
	"unicode/utf8"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// maxWindow bounds what one window holds: a text that cannot be settled
// within a mebibyte (a run of a million invisible characters, or a
// checker that never settles) is an engine failure, for the fail mode to
// handle, rather than a window that grows and is rescanned without end.
const maxWindow = 1 << 20

// window is the streaming scanner for one growing text: one field (content
// or reasoning) of one choice. It is a sliding window over the text:
//
//	buf = [ context | pending ]
//	       ^ already released, kept so that detectors see what precedes
//	         the pending text (context words, a word boundary, the first
//	         keyword of a pair)
//	                  ^ not yet released
//
// Each push appends a delta and scans the window. With a checker that
// implements guard.StreamChecker (the policy engine), the scan says which
// part of the window is settled: findings that start there are final, and
// the text up to Release can go out, because nothing that could still
// become a BLOCK or ANONYMIZE match starts before it. Ordinary text is
// therefore released as soon as its last word is complete, while a number,
// an open phrase or a rule waiting for its next part is held until more
// text or the end settles it, so that the verdict does not depend on where
// the upstream's chunks fall. With a plain guard.Checker the window holds
// back the last Holdback bytes instead.
//
// A match that straddles the release point moves it back to the match's
// start, so a value is released whole and masked, or not yet at all; the
// point never splits a UTF-8 sequence, so every released delta is valid
// text. Findings are counted once, when they settle.
type window struct {
	buf      string
	released int // bytes of buf already released
	counted  int // findings that start before this offset of buf have been counted
	holdback int // for a plain Checker
	// json, when set, says the text is JSON (tool call arguments): masks
	// keep it JSON, and this tracks where the released text stands.
	json *jsonLex
}

// release is what one push lets through.
type release struct {
	text string // to send now (masked unless observing); may be empty
	// findings settled by this push, or the BLOCK findings that stop the
	// stream. Their offsets are relative to the window and only good for
	// counting.
	findings []guard.Finding
	block    bool
}

// push appends text and releases what can safely be released; final
// releases everything (end of this text). With mask false the window only
// observes (async mode): it still scans and reports findings as they
// settle, but does not build masked text.
func (w *window) push(c safeChecker, text string, final, mask bool) (release, error) {
	w.buf += text
	if len(w.buf) == w.released && (!final || w.counted >= len(w.buf)) {
		return release{}, nil
	}
	if len(w.buf)-w.released > maxWindow {
		return release{}, fmt.Errorf("%w: %d bytes of a stream could not be settled", errCheck, len(w.buf)-w.released)
	}
	if !c.streams() && mask && !final && len(w.buf)-w.released <= w.holdback {
		// A plain checker cannot release anything yet: skip the scan. A
		// BLOCK in these bytes is found when they are scanned, before
		// any is released. An observing window scans every delta: its
		// text is already out, and the sooner a violation is seen the
		// sooner the stream is cut.
		return release{}, nil
	}
	p, err := c.partial(guard.Output, w.buf, final, w.holdback)
	if err != nil {
		return release{}, err
	}
	var r release
	for _, f := range p.Findings {
		if f.Action == guard.ActionBlock && (f.End > w.released || f.Start >= w.counted) {
			r.block = true
			r.findings = append(r.findings, f)
		}
	}
	if r.block {
		return r, nil
	}
	for _, f := range p.Findings {
		if f.Start >= w.counted && f.Start < p.Settled {
			r.findings = append(r.findings, f)
		}
	}
	w.counted = max(w.counted, p.Settled)
	boundary := p.Release
	// Findings are sorted by Start; moving the boundary back can make an
	// earlier finding straddle it, hence the loop.
	for moved := true; moved; {
		moved = false
		for _, f := range p.Findings {
			if f.Action == guard.ActionAnonymize && f.Start < boundary && f.End > boundary {
				boundary, moved = f.Start, true
			}
		}
	}
	for boundary > w.released && boundary < len(w.buf) && !utf8.RuneStart(w.buf[boundary]) {
		boundary--
	}
	if boundary > w.released {
		seg := w.buf[w.released:boundary]
		var local []guard.Finding
		anonymize := false
		for _, f := range p.Findings {
			if f.Action != guard.ActionAnonymize || f.End <= w.released || f.Start >= boundary {
				continue
			}
			// Offsets relative to seg. A finding that began in the
			// context (possible only with a checker that settles too
			// early) is clipped: its unreleased remainder is masked
			// rather than leaked.
			f.Start = max(f.Start, w.released) - w.released
			f.End = min(f.End, boundary) - w.released
			local = append(local, f)
			anonymize = true
		}
		switch {
		case w.json != nil && mask:
			seg = maskJSONFrom(w.json, seg, local)
		case mask && anonymize:
			// Mask a prefix of the scanned text with the findings that
			// lie in it: the findings were made with the right-hand
			// context in view, which a fresh scan of the prefix alone
			// would lack.
			seg, err = c.mask(seg, local)
			if err != nil {
				return release{}, err
			}
		}
		r.text = seg
		w.released = boundary
	}
	keep := p.Keep
	if !c.streams() {
		keep = w.released - w.holdback // what a plain checker's matches can reach back
	}
	w.trim(keep)
	return r, nil
}

// trim drops text before keep (what the checker still needs) that is
// released and counted.
func (w *window) trim(keep int) {
	cut := min(keep, w.released, w.counted)
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
	w.counted -= cut
}

// pending returns the unreleased text without checking it and marks it
// released: only for fail-open, when the engine has failed.
func (w *window) pending() string {
	p := w.buf[w.released:]
	w.released = len(w.buf)
	w.counted = len(w.buf)
	w.trim(w.released - w.holdback)
	return p
}

// hasPending reports whether some text has not been released yet.
func (w *window) hasPending() bool { return w.released < len(w.buf) }
