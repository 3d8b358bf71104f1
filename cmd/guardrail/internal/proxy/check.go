package proxy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// errCheck marks a failure of the policy engine: the fail mode decides
// what happens next.
var errCheck = errors.New("guardrail check failed")

// safeChecker wraps the engine so that a panic or an inconsistent answer
// (findings outside the text) becomes an error the fail mode handles,
// instead of taking the gateway down or slicing out of range.
type safeChecker struct {
	c guard.Checker
}

func (s safeChecker) scan(src guard.Source, text string) (fs []guard.Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			fs, err = nil, fmt.Errorf("%w: scan panicked: %v", errCheck, p)
		}
	}()
	fs = s.c.Scan(src, text)
	for _, f := range fs {
		if f.Start < 0 || f.End < f.Start || f.End > len(text) {
			return nil, fmt.Errorf("%w: finding %s/%s at [%d,%d) outside a text of %d bytes", errCheck, f.Policy, f.Type, f.Start, f.End, len(text))
		}
	}
	// The contract says ordered by Start; the holdback logic relies on it
	// only for efficiency, the masking relies on it for correctness.
	if !slices.IsSortedFunc(fs, byStart) {
		fs = slices.Clone(fs)
		slices.SortStableFunc(fs, byStart)
	}
	return fs, nil
}

func byStart(a, b guard.Finding) int { return a.Start - b.Start }

// streams reports whether the checker can settle a growing text itself.
func (s safeChecker) streams() bool {
	_, ok := s.c.(guard.StreamChecker)
	return ok
}

// partial scans a window of a stream. final says the text is complete:
// then everything is settled. A plain Checker settles and releases all but
// the last holdback bytes; a StreamChecker says itself what is settled.
func (s safeChecker) partial(src guard.Source, text string, final bool, holdback int) (p guard.Partial, err error) {
	sc, ok := s.c.(guard.StreamChecker)
	if final || !ok {
		fs, err := s.scan(src, text)
		if err != nil {
			return guard.Partial{}, err
		}
		n := len(text)
		if !final {
			n = max(0, n-holdback)
		}
		return guard.Partial{Findings: fs, Settled: n, Release: n, Keep: n}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			p, err = guard.Partial{}, fmt.Errorf("%w: scan panicked: %v", errCheck, r)
		}
	}()
	p = sc.ScanPartial(src, text)
	if !(0 <= p.Keep && p.Keep <= p.Settled && p.Settled <= p.Release && p.Release <= len(text)) {
		return guard.Partial{}, fmt.Errorf("%w: partial scan of %d bytes: keep %d, settled %d, release %d", errCheck, len(text), p.Keep, p.Settled, p.Release)
	}
	for _, f := range p.Findings {
		if f.Start < 0 || f.End < f.Start || f.End > len(text) {
			return guard.Partial{}, fmt.Errorf("%w: finding %s/%s at [%d,%d) outside a text of %d bytes", errCheck, f.Policy, f.Type, f.Start, f.End, len(text))
		}
	}
	if !slices.IsSortedFunc(p.Findings, byStart) {
		p.Findings = slices.Clone(p.Findings)
		slices.SortStableFunc(p.Findings, byStart)
	}
	return p, nil
}

func (s safeChecker) mask(text string, fs []guard.Finding) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = "", fmt.Errorf("%w: mask panicked: %v", errCheck, p)
		}
	}()
	return s.c.Mask(text, fs), nil
}

// blockedMessage never fails: a panicking engine still gets a message out.
func (s safeChecker) blockedMessage(src guard.Source) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = "Sorry, the model cannot answer this question."
		}
	}()
	return s.c.BlockedMessage(src)
}

func (s safeChecker) holdback(src guard.Source) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("%w: holdback panicked: %v", errCheck, p)
		}
	}()
	n = s.c.Holdback(src)
	if n < 0 {
		return 0, fmt.Errorf("%w: negative holdback %d", errCheck, n)
	}
	return n, nil
}

// verdict summarises the findings of one text.
type verdict struct {
	block     bool
	anonymize bool
}

func judge(fs []guard.Finding) verdict {
	var v verdict
	for _, f := range fs {
		switch f.Action {
		case guard.ActionBlock:
			v.block = true
		case guard.ActionAnonymize:
			v.anonymize = true
		}
	}
	return v
}
