package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The command runs on the corpus and prints every table, rules only and
// with a simulated guard model.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	c := config{policyPath: "../policies/default/policy.yaml", corpusDir: "corpus", split: "all", numbers: 50}
	require.NoError(t, run(c, &out))
	for _, want := range []string{"## Split `dev`", "## Split `heldout`", "| PII type |", "## Numbers that are not PII", "| **all attacks and look-alikes** | MEDIUM | no |"} {
		assert.Contains(t, out.String(), want)
	}
	out.Reset()
	c.guard = "fake:recall=0.9,fpr=0.02"
	require.NoError(t, run(c, &out))
	assert.Contains(t, out.String(), "SIMULATED")
	assert.Contains(t, out.String(), "| **all attacks and look-alikes** | MEDIUM | yes |")
}

// Invisible characters and full-width forms never let a caught attack or
// a found PII value through: the evasion columns are all zero.
func TestNoEvasion(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(config{policyPath: "../policies/default/policy.yaml", corpusDir: "corpus", split: "all", numbers: 10}, &out))
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "| ") && strings.Contains(line, "%") && !strings.HasPrefix(line, "| random") {
			cols := strings.Split(line, "|")
			if strings.Contains(line, "| LOW |") || strings.Contains(line, "| MEDIUM |") || strings.Contains(line, "| HIGH |") {
				assert.True(t, strings.HasPrefix(strings.TrimSpace(cols[6]), "0.0%") || strings.TrimSpace(cols[6]) == "–", line)
			}
		}
	}
}

func TestSimulatedGuardIsDeterministic(t *testing.T) {
	s, err := newSimulated("recall=0.5,fpr=0")
	require.NoError(t, err)
	a, _ := s.classify(context.Background(), item{Label: "attack", Text: "x"})
	b, _ := s.classify(context.Background(), item{Label: "attack", Text: "x"})
	assert.Equal(t, a, b)
	h, _ := s.classify(context.Background(), item{Label: "harmless", Text: "x"})
	assert.False(t, h, "fpr 0 never blocks a harmless text")
	_, err = newSimulated("recall=2")
	assert.Error(t, err)
}
