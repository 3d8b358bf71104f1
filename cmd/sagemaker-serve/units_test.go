package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantRoute string
		wantBody  string // empty: unchanged
		wantErr   string
	}{
		{name: "chat", body: `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, wantRoute: routeChat},
		{name: "completions", body: `{"model":"m","prompt":"hi"}`, wantRoute: routeCompletions},
		{name: "completions, token ids (the gateway decides)", body: `{"model":"m","prompt":[1,2]}`, wantRoute: routeCompletions},
		{name: "model added when missing", body: `{"messages":[{"role":"user","content":"<b>&"}],"stream":true}`, wantRoute: routeChat,
			wantBody: `{"messages":[{"role":"user","content":"<b>&"}],"model":"deepseek-r1","stream":true}`},
		{name: "model added when null", body: `{"model": null, "prompt":"x"}`, wantRoute: routeCompletions,
			wantBody: `{"model":"deepseek-r1","prompt":"x"}`},
		{name: "whitespace around the object", body: " \n{\"prompt\":\"x\",\"model\":\"m\"}\n", wantRoute: routeCompletions},
		{name: "not JSON", body: `prompt=hi`, wantErr: "must be a JSON object"},
		{name: "string", body: `"hi"`, wantErr: "must be a JSON object"},
		{name: "empty", body: ``, wantErr: "must be a JSON object"},
		{name: "trailing garbage", body: `{"prompt":"x"} {}`, wantErr: "must be a JSON object"},
		{name: "neither", body: `{"input":"x"}`, wantErr: `neither "messages"`},
		{name: "both", body: `{"messages":[],"prompt":"x"}`, wantErr: `both "messages" and "prompt"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route, out, err := classify([]byte(tt.body), "deepseek-r1")
			if tt.wantErr != "" {
				require.ErrorIs(t, err, errBadBody)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantRoute, route)
			if tt.wantBody == "" {
				assert.Equal(t, tt.body, string(out), "forwarded byte for byte")
				return
			}
			assert.Equal(t, tt.wantBody, string(out))
			assert.True(t, json.Valid(out))
		})
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "HF_HUB_OFFLINE=0", "VLLM_API_KEY=from-outside", "VLLM_COMMAND=x", "SM_VLLM_DTYPE=half",
		"VLLM_NO_USAGE_STATS=0"}, "k")
	assert.Equal(t, []string{"PATH=/bin", "SM_VLLM_DTYPE=half", "HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1",
		"TRANSFORMERS_OFFLINE=1", "VLLM_NO_USAGE_STATS=1", "DO_NOT_TRACK=1", "VLLM_API_KEY=k"}, got)
}

func TestPickPort(t *testing.T) {
	p, err := pickPort(portRange{}, 0)
	require.NoError(t, err)
	assert.Positive(t, p)

	// A range of three ports, one busy and one the entry point's own: the
	// third is the only answer.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	b := busy.Addr().(*net.TCPAddr).Port
	if b < 2 || b > 65534 {
		t.Skip("no room around the busy port")
	}
	for range 5 {
		got, err := pickPort(portRange{b - 1, b + 1}, b+1)
		if err != nil {
			t.Skipf("port %d is taken by something else: %v", b-1, err)
		}
		assert.Equal(t, b-1, got)
	}
	_, err = pickPort(portRange{b, b}, 0)
	assert.ErrorContains(t, err, "no free port for vLLM in SAGEMAKER_SAFE_PORT_RANGE "+strconv.Itoa(b)+"-"+strconv.Itoa(b))
}

func TestExitState(t *testing.T) {
	tests := []struct {
		state    exitState
		wantCode int
		wantText string
	}{
		{exitState{code: 0}, 0, "exit status 0"},
		{exitState{code: 3}, 3, "exit status 3"},
		{exitState{signaled: true, signal: syscall.SIGKILL}, 137, "killed by signal 9 (killed)"},
		{exitState{signaled: true, signal: syscall.SIGSEGV}, 139, "killed by signal 11 (segmentation fault)"},
		{exitState{err: errors.New("boom")}, 1, "unknown (boom)"},
	}
	for _, tt := range tests {
		t.Run(tt.wantText, func(t *testing.T) {
			assert.Equal(t, tt.wantCode, tt.state.exitCode())
			assert.Equal(t, tt.wantText, tt.state.String())
		})
	}
}

// TestReapUntil: as PID 1, the entry point reaps every child, orphans
// included, and still gets vLLM's own status. A fake vLLM exits with 5
// after an "orphan" (any other child) has exited; reapUntil returns 5 and
// the other child is gone from the process table. No test in this package
// runs in parallel, so no other child is about.
func TestReapUntil(t *testing.T) {
	dir := t.TempDir()
	env := append(os.Environ(), envFake+"=1", envFakeDir+"="+dir)
	orphan := exec.Command(os.Args[0]) // no "serve": the fake exits with 64 at once
	orphan.Env = env
	require.NoError(t, orphan.Start())
	// Let it become a zombie before vLLM starts.
	require.Eventually(t, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(orphan.Process.Pid) + "/stat")
		return err == nil && strings.Contains(string(b), ") Z ")
	}, 10*time.Second, 5*time.Millisecond)

	mainDir := t.TempDir()
	require.NoError(t, os.WriteFile(mainDir+"/exit", []byte("5"), 0o600))
	vllm := exec.Command(os.Args[0], "serve", "--host", "127.0.0.1", "--port", "0")
	vllm.Env = append(os.Environ(), envFake+"=1", envFakeDir+"="+mainDir)
	require.NoError(t, vllm.Start())

	ws, err := reapUntil(vllm.Process.Pid, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	assert.Equal(t, 5, ws.ExitStatus())

	var ows syscall.WaitStatus
	_, err = syscall.Wait4(orphan.Process.Pid, &ows, syscall.WNOHANG, nil)
	assert.ErrorIs(t, err, syscall.ECHILD, "the other child was reaped too")
}
