package proxy

import (
	"testing"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/detect"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// BenchmarkWindow streams a 300-token answer (3 runes a token) through a
// sync window with the example policy: the gateway's per-answer cost.
func BenchmarkWindow(b *testing.B) {
	p, err := policy.Load("../../policies/default/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	e, err := detect.New(p)
	if err != nil {
		b.Fatal(err)
	}
	text := fakevllm.Lorem(300, 3)
	var pieces []string
	for i := 0; i < len(text); i += 3 {
		pieces = append(pieces, text[i:min(i+3, len(text))])
	}
	sc := safeChecker{c: e}
	b.ReportAllocs()
	for b.Loop() {
		w := window{holdback: e.Holdback(guard.Output)}
		for i, piece := range pieces {
			if _, err := w.push(sc, piece, i == len(pieces)-1, true); err != nil {
				b.Fatal(err)
			}
		}
	}
}
