package vllm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
)

// imageGuardrailBoot runs the mirrored image behind the guardrail.
func imageGuardrailBoot() Boot {
	b := guardrailBoot()
	b.Install.Image = testImage
	return b
}

// dockerCalls runs the serve script of image mode with docker stubbed and
// returns what docker was asked, one call per element, words split by bash.
func dockerCalls(t *testing.T, userData string) [][]string {
	t.Helper()
	s := newSandbox(t)
	// docker prints each argument on a line of its own, calls separated.
	stub := "#!/bin/bash\n{ printf '%s\\n' \"$@\"; echo '--'; } >>\"$SANDBOX/docker.log\"\n"
	writeStub(t, s, "docker", stub)
	writeStub(t, s, "readlink", "#!/bin/bash\necho /data/model\n")
	require.NoError(t, writeFile(s.path("/run/deepseek-r1-cn/api-key"), "k\n"))
	out, code := s.run(userData, "SERVE")
	require.Equal(t, 0, code, out)
	var calls [][]string
	var cur []string
	for _, w := range strings.Split(strings.TrimSuffix(s.read("docker.log"), "\n"), "\n") {
		if w == "--" {
			calls = append(calls, cur)
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	return calls
}

// Behind the guardrail vLLM binds the host's loopback, so the container must
// share the host's network: with the bridge network and -p, vLLM's
// 127.0.0.1 inside the container was unreachable.
func TestServeImageBehindGuardrail(t *testing.T) {
	calls := dockerCalls(t, mustRender(t, imageGuardrailBoot()))
	require.Len(t, calls, 2)
	assert.Equal(t, []string{"rm", "-f", "vllm"}, calls[0], "a leftover container goes first")
	run := calls[1]
	require.Equal(t, "run", run[0])
	assert.Contains(t, run, "--network")
	assert.Equal(t, "host", run[indexOf(run, "--network")+1])
	assert.NotContains(t, run, "-p", "ports are not published: the host's network is the container's")
	assert.NotContains(t, run, "--publish")
	serve := run[indexOf(run, "serve")+1:]
	assert.Equal(t, "127.0.0.1", flagValue(serve, "--host"))
	assert.Equal(t, "8001", flagValue(serve, "--port"))
	// The gateway's upstream is that address.
	assert.Contains(t, mustRender(t, imageGuardrailBoot()), "-upstream http://127.0.0.1:8001 ")
}

func TestServeImageWithoutGuardrail(t *testing.T) {
	calls := dockerCalls(t, mustRender(t, imageBoot()))
	require.Len(t, calls, 2)
	assert.Equal(t, []string{"rm", "-f", "vllm"}, calls[0])
	run := calls[1]
	assert.Equal(t, "host", run[indexOf(run, "--network")+1])
	assert.NotContains(t, run, "-p")
	serve := run[indexOf(run, "serve")+1:]
	assert.Equal(t, "0.0.0.0", flagValue(serve, "--host"))
	assert.Equal(t, "8000", flagValue(serve, "--port"))
	assert.Equal(t, "/data/model:/model:ro", run[indexOf(run, "-v")+1])
}

func indexOf(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}

// t4Server serves the 1.5B model on a g4dn.xlarge (T4, compute capability 7.5).
func t4Server(t *testing.T) Server {
	t.Helper()
	m, err := sizing.LookupModel("deepseek-r1-distill-qwen-1.5b")
	require.NoError(t, err)
	it, err := sizing.LookupInstanceType("g4dn.xlarge")
	require.NoError(t, err)
	d, err := sizing.Decide(m, it, sizing.Options{})
	require.NoError(t, err)
	return Server{ServedModelName: m.Key, Host: "0.0.0.0", Port: 8000, Decision: d, Version: ver(0, 11, 0)}
}

// On a T4 the server sets the attention backend, in both install modes; on
// an A10G it leaves vLLM's FlashAttention default.
func TestServeAttentionBackend(t *testing.T) {
	bash := requireBash(t)
	t4 := pipBoot()
	t4.Server = t4Server(t)
	t4Image := t4
	t4Image.Install.Image = testImage

	pip := heredoc(t, mustRender(t, t4), "SERVE")
	assert.Contains(t, pip, "DO_NOT_TRACK=1 VLLM_ATTENTION_BACKEND=TRITON_ATTN_VLLM_V1\n")
	// The export is what vLLM sees.
	out, err := runShim(bash, pip, "/opt/deepseek-r1-cn/venv/bin/vllm() { echo \"$VLLM_ATTENTION_BACKEND\"; }\n")
	require.NoError(t, err, out)
	assert.Equal(t, "TRITON_ATTN_VLLM_V1\n", out)

	image := mustRender(t, t4Image)
	assert.Contains(t, heredoc(t, image, "SERVE"), "-e DO_NOT_TRACK -e VLLM_ATTENTION_BACKEND \\\n")
	run := dockerCalls(t, image)[1]
	assert.Equal(t, "VLLM_ATTENTION_BACKEND", run[indexOf(run, "DO_NOT_TRACK")+2])

	a10g := mustRender(t, pipBoot())
	assert.NotContains(t, a10g, "VLLM_ATTENTION_BACKEND")

	t.Run("override", func(t *testing.T) {
		b := t4
		b.Server.AttentionBackend = AttentionAuto
		assert.NotContains(t, mustRender(t, b), "VLLM_ATTENTION_BACKEND")
		b.Server.AttentionBackend = "XFORMERS"
		assert.Contains(t, mustRender(t, b), " VLLM_ATTENTION_BACKEND=XFORMERS\n")
	})
}

// runShim runs the exec line of a serve script after shim, which replaces
// the commands it execs.
func runShim(bash, serve, shim string) (string, error) {
	script := strings.Replace(serve, "VLLM_API_KEY=\"$(cat /run/deepseek-r1-cn/api-key)\"", "VLLM_API_KEY=k", 1)
	script = strings.Replace(script, "\nexec ", "\n"+shim, 1)
	out, err := execBash(bash, script)
	return out, err
}
