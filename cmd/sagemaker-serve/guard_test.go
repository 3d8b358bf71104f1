package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guardModelEnv is the guardrail with a guard model, as the stack sets it,
// the main fake vLLM ready at once and the guard ready at once when
// guardReady.
func guardModelEnv(t *testing.T, guardReady bool) map[string]string {
	t.Helper()
	env := guardrailEnv()
	env["GUARD_MODEL_DIR"] = t.TempDir()
	env["GUARD_GPU_MEMORY_UTILIZATION"] = "0.1"
	if guardReady {
		env[envFakeGuardRdy] = "1"
	}
	return env
}

// portArg is the value of --port in a command line.
func portArg(t *testing.T, args []string) string {
	t.Helper()
	i := slices.Index(args, "--port")
	require.Positive(t, i, "no --port in %q", args)
	require.Less(t, i+1, len(args))
	return args[i+1]
}

// firstStart is the time (Unix nanoseconds) of the first start the fake at
// path (starts, guard/starts) recorded.
func (in *instance) firstStart(path string) int64 {
	in.t.Helper()
	b, err := os.ReadFile(filepath.Join(in.dir, path))
	require.NoError(in.t, err)
	ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	require.NoError(in.t, err)
	return ns
}

// TestGuardStartsFirst: with GUARD_MODEL_DIR the guard vLLM is started with
// its own command line and key, and the main vLLM only once the guard
// answers /health; /ping waits for both.
func TestGuardStartsFirst(t *testing.T) {
	env := guardModelEnv(t, false)
	env["SM_VLLM_DTYPE"] = "float16"
	in := start(t, env)
	g := in.guardArgv()
	assert.Equal(t, []string{"serve", env["GUARD_MODEL_DIR"], "--host", "127.0.0.1", "--port", portArg(t, g.Args),
		"--served-model-name", "qwen3guard", "--max-model-len", "8192", "--gpu-memory-utilization", "0.1",
		"--dtype", "float16", "--enforce-eager", "--max-num-seqs", "8"}, g.Args,
		"the guard's own arguments, none of the SM_VLLM_* flags, the main model's dtype")
	guardKey := g.Env["VLLM_API_KEY"]
	assert.Len(t, guardKey, 64, "a random 256-bit key")
	assert.NotContains(t, strings.Join(g.Args, " "), guardKey)
	for _, k := range []string{"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK"} {
		assert.Equal(t, "1", g.Env[k], "offline as the main vLLM: %s", k)
	}
	assert.NotContains(t, g.Env, envVLLMCommand)

	// The guard loads: the main vLLM is not started meanwhile, however long
	// it takes (here 25 health intervals), and /ping is 503.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		require.False(t, in.started("argv.json"), "the main vLLM started before the guard was healthy")
		assert.Equal(t, http.StatusServiceUnavailable, in.pingCode())
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, 1, in.guardStarts())

	in.guardFile("ready", "")
	m := in.argv()
	in.waitHealthy()
	assert.Greater(t, in.firstStart("starts"), in.firstStart("guard/starts"), "the guard was started first")
	assert.NotEqual(t, portArg(t, g.Args), portArg(t, m.Args), "ports of their own")
	assert.NotEqual(t, strings.TrimPrefix(in.base, "http://127.0.0.1:"), portArg(t, g.Args))
	assert.NotEqual(t, guardKey, m.Env["VLLM_API_KEY"], "keys of their own")
	assert.NotContains(t, m.Args, "qwen3guard")
	assert.Contains(t, in.stderr.String(), "the guard model's vLLM is ready")
	assert.Contains(t, in.stdout.String(), "fake guard: stdout line", "the guard's output is the container's")
	assert.Contains(t, in.stderr.String(), "mapping=default")
}

// TestGuardCommandLine: GUARD_* decide the guard's flags; its dtype is the
// main vLLM's unless GUARD_DTYPE says otherwise.
func TestGuardCommandLine(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want map[string]string // flag -> value
	}{
		{name: "defaults", env: map[string]string{},
			want: map[string]string{"--max-model-len": "8192", "--gpu-memory-utilization": "0.1", "--dtype": "auto"}},
		{name: "the main vLLM's dtype", env: map[string]string{"SM_VLLM_DTYPE": "bfloat16"},
			want: map[string]string{"--dtype": "bfloat16"}},
		{name: "its own", env: map[string]string{"SM_VLLM_DTYPE": "bfloat16", "GUARD_DTYPE": "half",
			"GUARD_MAX_MODEL_LEN": "4096", "GUARD_GPU_MEMORY_UTILIZATION": "0.075"},
			want: map[string]string{"--dtype": "half", "--max-model-len": "4096", "--gpu-memory-utilization": "0.075"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := guardModelEnv(t, true)
			for k, v := range tt.env {
				env[k] = v
			}
			in := start(t, env)
			in.waitHealthy()
			args := in.guardArgv().Args
			for flag, v := range tt.want {
				i := slices.Index(args, flag)
				require.Positive(t, i, flag)
				assert.Equal(t, v, args[i+1], flag)
			}
		})
	}
}

// TestGuardNeverHealthy: a guard that does not become healthy in time, or
// exits while loading, ends the container with a message naming it, and
// the main vLLM is never started.
func TestGuardNeverHealthy(t *testing.T) {
	tests := []struct {
		name     string
		exit     string // written to the guard's exit file once it runs
		wantMsgs []string
	}{
		{name: "never healthy", wantMsgs: []string{"the guard model's vLLM (GUARD_MODEL_DIR=", "did not answer /health with 200 within 400ms",
			"stopping the container rather than serve without the guard model the deployer asked for"}},
		{name: "exits while loading", exit: "3", wantMsgs: []string{"exited before it answered /health (exit status 3)",
			"stopping the container rather than serve without the guard model"}},
		{name: "killed while loading", exit: "kill", wantMsgs: []string{"exited before it answered /health (killed by signal 9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions
			o.guardStartTimeout = 400 * time.Millisecond
			if tt.exit != "" {
				o.guardStartTimeout = 30 * time.Second
			}
			in := startWith(t, guardModelEnv(t, false), o)
			in.guardArgv()
			if tt.exit != "" {
				in.guardFile("exit", tt.exit)
			}
			assert.Equal(t, exitFailure, in.wait(30*time.Second))
			for _, m := range tt.wantMsgs {
				assert.Contains(t, in.stderr.String(), m)
			}
			assert.False(t, in.started("argv.json"), "the main vLLM was not started")
			assert.Equal(t, 1, in.guardStarts(), "no restart before the main vLLM runs")
			if tt.exit == "" {
				assert.Contains(t, in.stdout.String(), "fake guard: got SIGTERM", "the guard is stopped, not left behind")
			}
			_, err := http.Get(in.base + "/ping")
			assert.Error(t, err, "nothing listens any more")
		})
	}
}

// TestGuardRestarted: a guard that dies after start is restarted, with the
// same command line, without touching the main vLLM; /ping is 503 until the
// new one is healthy, and the model step fails closed meanwhile (the test
// policy's failMode), never letting a prompt through unchecked.
func TestGuardRestarted(t *testing.T) {
	for _, exit := range []string{"3", "kill", "0"} {
		t.Run("exit "+exit, func(t *testing.T) {
			in := start(t, guardModelEnv(t, false))
			first := in.guardArgv()
			in.guardFile("ready", "")
			in.waitHealthy()
			mainBefore := in.argv()

			// The next guard will load until told it is ready.
			require.NoError(t, os.Remove(filepath.Join(in.guardDir(), "ready")))
			in.guardFile("exit", exit)
			require.Eventually(t, func() bool { return in.guardStarts() == 2 }, 30*time.Second, 10*time.Millisecond,
				"the guard was not restarted\nstderr:\n%s", in.stderr)
			assert.Contains(t, in.stderr.String(), "the guard model's vLLM exited: restarting it")
			second := in.guardArgv()
			assert.NotEqual(t, first.Pid, second.Pid)
			assert.Equal(t, first.Args, second.Args, "the same port and flags")
			assert.Equal(t, first.Env["VLLM_API_KEY"], second.Env["VLLM_API_KEY"], "the key the gateway has")

			for range 5 {
				assert.Equal(t, http.StatusServiceUnavailable, in.pingCode(), "unhealthy while the guard loads")
				time.Sleep(20 * time.Millisecond)
			}
			resp := in.post(`{"messages":[{"role":"user","content":"hello"}]}`)
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, "guardrail_unavailable", readJSON(t, resp)["error"].(map[string]any)["code"])
			assert.Zero(t, in.calls(), "an unchecked prompt never reaches vLLM")

			in.guardFile("ready", "")
			in.waitHealthy()
			assert.Eventually(t, func() bool { return strings.Contains(in.stderr.String(), "the guard model's vLLM is ready again") },
				30*time.Second, 10*time.Millisecond)
			assert.Equal(t, mainBefore.Pid, in.argv().Pid, "the main vLLM is untouched")
			assert.Equal(t, 1, in.lines("starts"))
			resp = in.post(`{"messages":[{"role":"user","content":"hello"}]}`)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			content, _, _ := choice0(readJSON(t, resp))
			assert.Equal(t, "You said: hello", content)
		})
	}
}

// TestGuardRestartWaitsForVLLM: a guard that dies while the main vLLM is
// still loading is restarted only once the main vLLM is healthy, so that
// the two never profile the GPU's memory at once.
func TestGuardRestartWaitsForVLLM(t *testing.T) {
	env := guardModelEnv(t, true)
	delete(env, envFakeReady) // the main vLLM loads until told
	in := start(t, env)
	in.argv()
	in.guardFile("exit", "3")
	require.Eventually(t, func() bool { return strings.Contains(in.stderr.String(), "the guard model's vLLM exited") },
		30*time.Second, 10*time.Millisecond)
	// Ten times the longest backoff: no restart while vLLM loads.
	time.Sleep(10 * testOptions.guardBackoffMax)
	assert.Equal(t, 1, in.guardStarts(), "restarted while the main vLLM was loading")
	assert.Contains(t, in.stderr.String(), "restarting the guard model's vLLM once the main vLLM is ready")

	in.fakeFile("ready", "")
	require.Eventually(t, func() bool { return in.guardStarts() == 2 }, 30*time.Second, 10*time.Millisecond)
	in.waitHealthy()
	assert.Equal(t, 1, in.lines("starts"), "the main vLLM is untouched")
}

// TestGuardClassifies: the gateway asks the guard model (answering in
// Qwen3Guard-Gen's format) about the prompt, then the answer; an Unsafe
// verdict blocks as the default mapping says, a Safe one passes.
func TestGuardClassifies(t *testing.T) {
	in := start(t, guardModelEnv(t, true))
	in.waitHealthy()
	tests := []struct {
		name        string
		body        string
		stream      bool
		wantCalls   int // requests that reached vLLM
		wantGuard   int // requests that reached the guard
		wantContent string
		wantFinish  string
		wantPolicy  string
	}{
		{name: "safe prompt and answer pass", body: `{"messages":[{"role":"user","content":"hello"}]}`,
			wantCalls: 1, wantGuard: 2, wantContent: "You said: hello", wantFinish: "stop"},
		{name: "a jailbreak never reaches vLLM", body: `{"messages":[{"role":"user","content":"hello jailbreak-test"}]}`,
			wantGuard: 1, wantContent: "BLOCKED INPUT", wantFinish: "content_filter", wantPolicy: "contentPolicy/PROMPT_ATTACK"},
		{name: "a jailbreak, streamed", body: `{"messages":[{"role":"user","content":"hello jailbreak-test"}],"stream":true}`, stream: true,
			wantGuard: 1, wantContent: "BLOCKED INPUT", wantFinish: "content_filter", wantPolicy: "contentPolicy/PROMPT_ATTACK"},
		{name: "a jailbreak, completions", body: `{"prompt":"jailbreak-test"}`,
			wantGuard: 1, wantContent: "BLOCKED INPUT", wantFinish: "content_filter", wantPolicy: "contentPolicy/PROMPT_ATTACK"},
		{name: "a violent answer is replaced", body: `{"messages":[{"role":"user","content":"say violent-test"}]}`,
			wantCalls: 1, wantGuard: 2, wantContent: "BLOCKED OUTPUT", wantFinish: "content_filter", wantPolicy: "contentPolicy/VIOLENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls, guardCalls := in.calls(), in.guardCalls()
			resp := in.post(tt.body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			content, finish, g := answer(t, resp, tt.stream)
			policies, _ := g["policies"].([]any)
			assert.Equal(t, tt.wantContent, content)
			assert.Equal(t, tt.wantFinish, finish)
			if tt.wantPolicy == "" {
				assert.Empty(t, policies)
			} else {
				assert.Contains(t, policies, tt.wantPolicy)
			}
			assert.Equal(t, calls+tt.wantCalls, in.calls(), "requests that reached vLLM")
			assert.Equal(t, guardCalls+tt.wantGuard, in.guardCalls(), "requests that reached the guard model")
		})
	}
	assert.Contains(t, in.stdout.String(), "contentPolicy/PROMPT_ATTACK", "the audit log records the guard's findings")
}

// TestGuardMaxChars: GUARD_MAX_CHARS is how many runes of a message reach
// the guard model (the end of a prompt).
func TestGuardMaxChars(t *testing.T) {
	env := guardModelEnv(t, true)
	env["GUARD_MAX_CHARS"] = "100"
	in := start(t, env)
	in.waitHealthy()
	prompt := strings.Repeat("很长的问题", 100) + "END" // 503 runes
	body, _ := json.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": prompt}}})
	resp := in.post(string(body))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()
	b, err := os.ReadFile(filepath.Join(in.guardDir(), "texts"))
	require.NoError(t, err)
	var first []string
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &first))
	require.Len(t, first, 1, "the prompt alone")
	assert.Equal(t, 100, utf8.RuneCountInString(first[0]))
	assert.True(t, strings.HasSuffix(first[0], "END"), "a long prompt keeps its end")
}

// TestGuardWithPolicySection: a policy with a guardModel section keeps its
// mapping (here: violent answers only reported); the container's endpoint,
// served name and key replace the section's.
func TestGuardWithPolicySection(t *testing.T) {
	env := guardModelEnv(t, true)
	env["GUARDRAIL_POLICY"] = "testdata/policy-guardmodel.yaml"
	in := start(t, env)
	in.waitHealthy()
	assert.Contains(t, in.stderr.String(), `mapping="the policy's guardModel section"`)
	resp := in.post(`{"messages":[{"role":"user","content":"say violent-test"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	content, _, _ := choice0(readJSON(t, resp))
	assert.Equal(t, "You said: say violent-test", content)
	assert.Equal(t, 2, in.guardCalls(), "the guard model was asked, at the container's endpoint")

	resp = in.post(`{"messages":[{"role":"user","content":"jailbreak-test"}]}`)
	content, _, _ = choice0(readJSON(t, resp))
	assert.Equal(t, "BLOCKED INPUT", content, "the section leaves Jailbreak to the default")

	// Without GUARD_MODEL_DIR the section is not used, and the log says so.
	env = guardrailEnv()
	env["GUARDRAIL_POLICY"] = "testdata/policy-guardmodel.yaml"
	off := start(t, env)
	off.waitHealthy()
	assert.Contains(t, off.stderr.String(), "the policy has a guardModel section, but GUARD_MODEL_DIR is not set")
	assert.False(t, off.started("guard/argv.json"))
}

// TestGuardStopsWithTheContainer: when the main vLLM exits the container
// ends with its status and stops the guard; on SIGTERM both are stopped.
func TestGuardStopsWithTheContainer(t *testing.T) {
	t.Run("main vLLM exits", func(t *testing.T) {
		in := start(t, guardModelEnv(t, true))
		in.waitHealthy()
		guardPid := in.guardArgv().Pid
		in.fakeFile("exit", "3")
		assert.Equal(t, 3, in.wait(30*time.Second))
		assert.Contains(t, in.stdout.String(), "fake guard: got SIGTERM")
		_, err := os.Stat("/proc/" + strconv.Itoa(guardPid))
		assert.ErrorIs(t, err, os.ErrNotExist, "no guard left behind")
		assert.Equal(t, 1, in.guardStarts(), "not restarted while the container ends")
	})
	t.Run("SIGTERM", func(t *testing.T) {
		in := start(t, guardModelEnv(t, true))
		in.waitHealthy()
		guardPid := in.guardArgv().Pid
		in.cancel()
		assert.Equal(t, 0, in.wait(30*time.Second))
		assert.Contains(t, in.stdout.String(), "fake vllm: got SIGTERM")
		assert.Contains(t, in.stdout.String(), "fake guard: got SIGTERM")
		assert.Contains(t, in.stderr.String(), "the guard model's vLLM stopped")
		_, err := os.Stat("/proc/" + strconv.Itoa(guardPid))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("SIGTERM while the guard loads", func(t *testing.T) {
		in := start(t, guardModelEnv(t, false))
		in.guardArgv()
		in.cancel()
		assert.Equal(t, 0, in.wait(30*time.Second))
		assert.Contains(t, in.stdout.String(), "fake guard: got SIGTERM")
		assert.False(t, in.started("argv.json"))
	})
}

// The guard runs on the container's first GPU only, the one its share of
// memory was taken from; the main vLLM keeps them all.
func TestGuardEnvFirstGPU(t *testing.T) {
	for _, tc := range []struct {
		visible, want string
	}{{"", "0"}, {"2,3", "2"}, {"GPU-a1b2,GPU-c3d4", "GPU-a1b2"}} {
		environ := []string{"PATH=/usr/bin"}
		if tc.visible != "" {
			environ = append(environ, "CUDA_VISIBLE_DEVICES="+tc.visible)
		}
		got, _ := env(guardChildEnv(environ, "k")).get("CUDA_VISIBLE_DEVICES")
		assert.Equal(t, tc.want, got, "CUDA_VISIBLE_DEVICES=%q", tc.visible)
		main, ok := env(childEnv(environ, "k")).get("CUDA_VISIBLE_DEVICES")
		assert.Equal(t, tc.visible != "", ok)
		assert.Equal(t, tc.visible, main)
	}
}
