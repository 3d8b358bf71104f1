package vllm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
)

const testGuardURI = testS3URI + ".guard-model/"

// guardBoot is the gateway with the guard model beside pip-installed vLLM,
// its weights under the model's prefix, as the EC2 stack renders it.
func guardBoot() Boot {
	b := guardrailBoot()
	b.Server.Decision.GPUMemoryUtilization = 0.75
	b.Guard = &GuardModel{
		Decision: sizing.ColocatedDecision{Model: "qwen3guard-gen-0.6b", MaxModelLen: 8192, GPUMemoryUtilization: 0.15, DType: "bfloat16"},
		Weights:  Weights{S3URI: testGuardURI},
		Port:     8002,
		MaxChars: 2500,
	}
	return b
}

func imageGuardBoot() Boot {
	b := guardBoot()
	b.Install.Image = testImage
	return b
}

func TestRenderGuard(t *testing.T) {
	ud := mustRender(t, guardBoot())
	for _, want := range []string{
		"GUARD_S3_URI=" + testGuardURI + "\n",
		// vllm.service starts after the guard's unit, which is active only
		// once the guard answers.
		"Wants=network-online.target " + InstallUnit + " " + GuardUnit + "\n",
		"After=network-online.target multi-user.target " + InstallUnit + " " + GuardUnit + "\n",
		"ExecStartPost=/usr/local/bin/deepseek-r1-cn-guard-wait\n",
		"systemctl enable " + InstallUnit + " vllm.service " + GuardUnit + "\n",
		// The gateway asks it, with the key it already holds.
		" -guard-endpoint http://127.0.0.1:8002/v1 -guard-model qwen3guard" +
			" -guard-api-key-file /run/deepseek-r1-cn-guardrail/api-key -guard-max-chars 2500\n",
		"exec /opt/deepseek-r1-cn/venv/bin/vllm serve /opt/deepseek-r1-cn/guard-model --served-model-name qwen3guard" +
			" --host 127.0.0.1 --port 8002 --dtype bfloat16 --max-model-len 8192 --gpu-memory-utilization 0.15" +
			" --max-num-seqs 8 --enforce-eager\n",
		"CUDA_VISIBLE_DEVICES=0",
	} {
		assert.Contains(t, ud, want)
	}
	guardUnit := heredoc(t, ud[strings.Index(ud, "cat >/etc/systemd/system/"+GuardUnit):], "UNIT")
	assert.Contains(t, guardUnit, "User=vllm\n")
	assert.Contains(t, guardUnit, "Restart=always\n")
	assert.NotContains(t, guardUnit, GuardUnit, "the guard does not wait for itself")
	assert.NotContains(t, ud, "--api-key", "keys go through files, never the command line")

	// Without the guard, nothing of it is rendered.
	plain := mustRender(t, guardrailBoot())
	for _, absent := range []string{"guard-model", GuardUnit, "-guard-endpoint", "GUARD_"} {
		assert.NotContains(t, plain, absent)
	}
}

// The image mode runs the guard on the first GPU only, under its own name.
func TestRenderGuardImage(t *testing.T) {
	bash := requireBash(t)
	ud := mustRender(t, imageGuardBoot())
	serve := heredoc(t, ud, "GUARDSERVE")
	at := strings.Index(serve, "\nexec ")
	require.GreaterOrEqual(t, at, 0)
	shim := "/usr/bin/docker() { printf '%s\\n' \"$@\"; }\nreadlink() { echo /data/guard-model; }\n"
	out, err := execBash(bash, shim+serve[at+len("\nexec "):])
	require.NoError(t, err, out)
	words := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	assert.Equal(t, []string{"run", "--rm", "--name", "vllm-guard", "--gpus", "device=0", "--ipc=host", "--network", "host"}, words[:9])
	assert.Contains(t, words, "/data/guard-model:/model:ro")
	i := strings.Index(strings.Join(words, " "), "serve /model --served-model-name qwen3guard")
	assert.GreaterOrEqual(t, i, 0, "%q", words)
	assert.Contains(t, heredoc(t, ud, "GUARDPREPARE"), `docker pull "$IMAGE"`, "the guard may start first: it pulls the image too")
}

// The guard's prepare copies its weights exactly to their own directory,
// with its own copy of the key; the model's copy leaves them out.
func TestPrepareGuard(t *testing.T) {
	s, ud := prepared(t, guardBoot())
	out, code := s.run(ud, "GUARDPREPARE")
	require.Equal(t, 0, code, out)
	dir := s.root + "/opt/deepseek-r1-cn/data/guard-model"
	assert.Contains(t, s.calls(), "aws s3 sync "+testGuardURI+" "+dir+" --region cn-northwest-1 --only-show-errors --delete")
	link, err := os.Readlink(s.path("/opt/deepseek-r1-cn/guard-model"))
	require.NoError(t, err)
	assert.Equal(t, dir, link)
	assert.Equal(t, "the-api-key\n", s.read("/run/deepseek-r1-cn/guard-api-key"))

	out, code = s.run(ud, "PREPARE")
	require.Equal(t, 0, code, out)
	assert.Contains(t, s.calls(), "aws s3 sync "+testS3URI+" "+s.root+"/opt/deepseek-r1-cn/data/model"+
		" --region cn-northwest-1 --only-show-errors --delete --exclude .guard-model/*")
}

// Weights without config.json (nothing staged) fail the guard's start with
// what to do; the install check comes first, as for vLLM.
func TestPrepareGuardFailures(t *testing.T) {
	ud := mustRender(t, guardBoot())
	s := newSandbox(t)
	s.settings(ud)
	out, code := s.run(ud, "GUARDPREPARE")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "vLLM is not installed yet")

	s, ud = prepared(t, guardBoot(), "S3_FILES=model.safetensors")
	out, code = s.run(ud, "GUARDPREPARE")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "no config.json in the guard model's weights from "+testGuardURI+": stage Qwen3Guard-Gen-0.6B there")
}

// The wait succeeds as soon as the guard answers, and gives up (failing the
// unit, which restarts it) when it never does.
func TestGuardWait(t *testing.T) {
	for _, tc := range []struct {
		name     string
		curl     string
		wantCode int
		sleeps   int
	}{
		{"answers on the third try", `n=$(grep -c '^curl ' "$SANDBOX/calls.log"); [ "$n" -ge 3 ]`, 0, 2},
		{"never answers", `exit 7`, 1, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ud := prepared(t, guardBoot())
			writeStub(t, s, "curl", "#!/bin/bash\necho \"curl $*\" >>\"$SANDBOX/calls.log\"\n"+tc.curl+"\n")
			// 30 minutes of tries, run here as 12 (each is two processes).
			seq := fmt.Sprintf("$(seq %d)", guardHealthWaitTries)
			require.Contains(t, ud, seq)
			ud = strings.Replace(ud, seq, "$(seq 12)", 1)
			out, code := s.run(ud, "GUARDWAIT")
			assert.Equal(t, tc.wantCode, code, out)
			assert.Len(t, s.callsOf("sleep"), tc.sleeps)
			assert.Contains(t, s.callsOf("curl")[0], "http://127.0.0.1:8002/health")
			if tc.wantCode != 0 {
				assert.Contains(t, out, "see journalctl -u "+GuardUnit)
			}
		})
	}
}

// A guard that exits while starting fails the wait at once, not after 30
// minutes: systemd keeps the unit activating (and vllm.service waiting) for
// as long as ExecStartPost runs.
func TestGuardWaitStopsWhenTheGuardExits(t *testing.T) {
	s, ud := prepared(t, guardBoot())
	writeStub(t, s, "curl", "#!/bin/bash\necho \"curl $*\" >>\"$SANDBOX/calls.log\"\nexit 7\n")
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	out, code := s.run(ud, "GUARDWAIT", fmt.Sprintf("MAINPID=%d", gone.Process.Pid))
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "the guard model's vLLM exited while starting")
	assert.Len(t, s.callsOf("curl"), 1)
	assert.Empty(t, s.callsOf("sleep"))

	// A live MAINPID keeps it waiting.
	s, ud = prepared(t, guardBoot())
	writeStub(t, s, "curl", "#!/bin/bash\necho \"curl $*\" >>\"$SANDBOX/calls.log\"\nn=$(grep -c '^curl ' \"$SANDBOX/calls.log\"); [ \"$n\" -ge 3 ]\n")
	out, code = s.run(ud, "GUARDWAIT", fmt.Sprintf("MAINPID=%d", os.Getpid()))
	assert.Equal(t, 0, code, out)
	assert.Len(t, s.callsOf("sleep"), 2)
}

func TestValidateGuard(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Boot)
		want string
	}{
		{"no gateway", func(b *Boot) { b.Guardrail = nil; b.Server.Host = "0.0.0.0" }, "needs the guardrail gateway"},
		{"shares above 0.90", func(b *Boot) { b.Server.Decision.GPUMemoryUtilization = 0.80 }, "must add up to at most 0.90"},
		{"vLLM's port", func(b *Boot) { b.Guard.Port = 8001 }, "not vLLM's 8001"},
		{"no weights", func(b *Boot) { b.Guard.Weights = Weights{} }, "exactly one of the guard model's S3 URI and ModelScope id"},
		{"not a prefix", func(b *Boot) { b.Guard.Weights.S3URI = "s3://b/guard" }, "is not an s3:// prefix ending in /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := guardBoot()
			tc.edit(&b)
			_, err := b.Render()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Before 0.10.1 vLLM logged every request with its prompt unless told not
// to: the guard sees every prompt and answer, so it is told.
func TestGuardArgsRequestLogging(t *testing.T) {
	g := guardBoot().Guard
	assert.Contains(t, g.Args("/m", ver(0, 9, 2)), "--disable-log-requests")
	assert.NotContains(t, g.Args("/m", ver(0, 11, 0)), "--disable-log-requests")
}

// ModelScope weights for the guard too, when the model's come from there.
func TestRenderGuardModelScope(t *testing.T) {
	b := guardBoot()
	b.Weights = Weights{ModelScopeID: testMSID, ModelScopeRevision: "master"}
	b.Guard.Weights = Weights{ModelScopeID: "Qwen/Qwen3Guard-Gen-0.6B", ModelScopeRevision: "master"}
	ud := mustRender(t, b)
	assert.Contains(t, ud, "GUARD_MODELSCOPE_ID=Qwen/Qwen3Guard-Gen-0.6B\n")
	s, ud := prepared(t, b)
	writeStub(t, s, "modelscope", "")
	_, _ = s.run(ud, "GUARDPREPARE")
	assert.NotContains(t, strings.Join(s.callsOf("aws"), "\n"), "s3 sync")
}

// With telemetry, the guard's output reaches vLLM's log group, marked.
func TestGuardLogsWithTelemetry(t *testing.T) {
	ud := mustRender(t, withTelemetry(guardBoot()))
	serve := heredoc(t, ud, "GUARDSERVE")
	assert.Contains(t, serve, "exec > >(sed -u 's/^/guard: /' | tee -a /var/log/deepseek-r1-cn/vllm.log) 2>&1\n")
	s, ud := prepared(t, withTelemetry(guardBoot()))
	out, code := s.run(ud, "GUARDPREPARE")
	require.Equal(t, 0, code, out)
	assert.FileExists(t, s.path("/var/log/deepseek-r1-cn/vllm.log"), "the guard may start first: it makes the file")
	assert.NotContains(t, heredoc(t, mustRender(t, guardBoot()), "GUARDSERVE"), "tee", "not without telemetry")
}
