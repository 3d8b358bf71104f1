package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

// The command line the EC2 instance runs the gateway with
// (components/vllm, Boot.GatewayArgs) is one this gateway accepts, and
// means what the instance intends: a flag renamed on either side fails here.
func TestEC2GatewayCommandLine(t *testing.T) {
	b := vllm.Boot{
		Guardrail: &vllm.Guardrail{Listen: "0.0.0.0:8000", Upstream: "http://127.0.0.1:8001"},
		Guard: &vllm.GuardModel{Decision: sizing.ColocatedDecision{MaxModelLen: sizing.GuardMaxModelLen},
			Port: 8002, MaxChars: sizing.GuardMaxChars},
	}
	c, err := parseFlags(b.GatewayArgs(), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:8000", c.listen)
	assert.Equal(t, "http://127.0.0.1:8001", c.upstream)
	assert.Equal(t, "http://127.0.0.1:8002/v1", c.guardEndpoint)
	assert.Equal(t, vllm.GuardServedModelName, c.guardModel)
	assert.Equal(t, "/run/deepseek-r1-cn-guardrail/api-key", c.guardKeyFile)
	assert.Equal(t, sizing.GuardMaxChars, c.guardMaxChars)

	b.Guard = nil
	c, err = parseFlags(b.GatewayArgs(), io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.guardEndpoint)
}
