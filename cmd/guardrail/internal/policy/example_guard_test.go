package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example policy documents a guardModel section in comments: once
// uncommented, it must parse, and give the defaults it claims.
func TestExampleGuardModelSection(t *testing.T) {
	b, err := os.ReadFile("../../policies/default/policy.yaml")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "# guardModel:")
	require.GreaterOrEqual(t, i, 0)
	var lines []string
	for _, l := range strings.Split(s[i:], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "# "))
	}
	p, err := Parse([]byte("name: t\n"+strings.Join(lines, "\n")), "")
	require.NoError(t, err)
	g := p.GuardModel
	require.NotNil(t, g)
	assert.Equal(t, DefaultGuardCategories(), g.Categories)
	assert.Equal(t, Directions{Input: ActionBlock, Output: ActionBlock}, g.Default)
	assert.Equal(t, "http://127.0.0.1:8002/v1", g.Endpoint)
}
