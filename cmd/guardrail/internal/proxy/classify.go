package proxy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// classify runs the model step for src on a prompt, or on an answer with
// its prompt: it records the findings and the time taken, and reports
// whether the text is blocked, with the findings. The error (errCheck)
// is returned only in the closed classifier fail mode; in the open one the
// text passes and the failure is recorded.
func (s *Server) classify(ctx context.Context, src guard.Source, prompt, answer string, rec *record) (bool, error) {
	_, b, err := s.classifyFindings(ctx, src, prompt, answer, rec)
	return b, err
}

func (s *Server) classifyFindings(ctx context.Context, src guard.Source, prompt, answer string, rec *record) ([]guard.Finding, bool, error) {
	c := s.opts.Classifier
	if c == nil || !c.Enabled(src) {
		return nil, false, nil
	}
	text := prompt
	if src == guard.Output {
		text = answer
	}
	if strings.TrimSpace(text) == "" {
		return nil, false, nil
	}
	start := time.Now()
	fs, err := safeClassify(ctx, c, src, prompt, answer)
	took := time.Since(start)
	rec.classifier += took
	outcome := "passed"
	v := judge(fs)
	switch {
	case err != nil:
		outcome = "error"
	case v.block:
		outcome = "blocked"
	}
	s.metrics.classifier.WithLabelValues(string(src), outcome).Observe(took.Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("%w: %v", errClientGone, ctx.Err())
		}
		if s.opts.ClassifierFailMode == FailOpen {
			rec.failOpen = append(rec.failOpen, src)
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("%w: guard model: %v", errCheck, err)
	}
	rec.add(src, fs, !v.block)
	if v.block {
		rec.blocked = src
	}
	return fs, v.block, nil
}

func safeClassify(ctx context.Context, c guard.Classifier, src guard.Source, prompt, answer string) (fs []guard.Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			fs, err = nil, fmt.Errorf("classifier panicked: %v", p)
		}
	}()
	return c.Classify(ctx, src, prompt, answer)
}

// promptText is what the model reads of a request, for the guard model:
// its texts in order.
func (req *request) promptText() string {
	var b strings.Builder
	for _, sl := range req.slots {
		if sl.text == "" || sl.kind == slotScanOnly {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(sl.text)
	}
	return b.String()
}
