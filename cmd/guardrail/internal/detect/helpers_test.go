package detect

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

const examplePolicy = "../../policies/default/policy.yaml"

// newEngine builds an engine from policy YAML; relative word files resolve
// against dir.
func newEngine(t testing.TB, yaml, dir string) *Engine {
	t.Helper()
	p, err := policy.Parse([]byte(yaml), dir)
	require.NoError(t, err)
	e, err := New(p)
	require.NoError(t, err)
	return e
}

func exampleEngine(t testing.TB) *Engine {
	t.Helper()
	p, err := policy.Load(examplePolicy)
	require.NoError(t, err)
	e, err := New(p)
	require.NoError(t, err)
	return e
}

// piiEngine enables one built-in type, ANONYMIZE in both directions.
func piiEngine(t testing.TB, typ policy.PIIType) *Engine {
	return newEngine(t, "sensitiveInformation:\n  piiEntities:\n    - {type: "+string(typ)+", action: ANONYMIZE}\n", "")
}

// matched returns the matched substrings of the input scan, in order.
func matched(e *Engine, text string) []string {
	var out []string
	for _, f := range e.Scan(guard.Input, text) {
		out = append(out, text[f.Start:f.End])
	}
	return out
}

type span struct {
	Type       string
	Start, End int
}

func spans(findings []guard.Finding) []span {
	var out []span
	for _, f := range findings {
		out = append(out, span{f.Type, f.Start, f.End})
	}
	return out
}
