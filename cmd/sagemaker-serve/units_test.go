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

func TestReservePort(t *testing.T) {
	ln, p, err := reservePort(portRange{}, 0)
	require.NoError(t, err)
	assert.Positive(t, p)
	// Reserved: the port stays taken until the listener is closed, so a
	// second reservation gets another one.
	ln2, p2, err := reservePort(portRange{}, 0)
	require.NoError(t, err)
	assert.NotEqual(t, p, p2)
	require.NoError(t, ln.Close())
	require.NoError(t, ln2.Close())

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
		ln, got, err := reservePort(portRange{b - 1, b + 1}, b+1)
		if err != nil {
			t.Skipf("port %d is taken by something else: %v", b-1, err)
		}
		assert.Equal(t, b-1, got)
		// While it is held, the range has nothing else to give.
		_, _, err = reservePort(portRange{b - 1, b + 1}, b+1)
		assert.ErrorContains(t, err, "no free port for vLLM in SAGEMAKER_SAFE_PORT_RANGE")
		require.NoError(t, ln.Close())
	}
	_, _, err = reservePort(portRange{b, b}, 0)
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

// TestReaper: as PID 1, the entry point reaps every child, orphans
// included, and hands each vLLM its own status, with two vLLMs (the model's
// and the guard's) running at once. Two fake vLLMs exit with 5 and 6 after
// an "orphan" (any other child) has exited; each waiter gets its own status
// and the other child is gone from the process table. No test in this
// package runs in parallel, so no other child is about.
func TestReaper(t *testing.T) {
	r := startReaper(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer r.stop()

	orphan := exec.Command(os.Args[0]) // no "serve": the fake exits with 64 at once
	orphan.Env = append(os.Environ(), envFake+"=1", envFakeDir+"="+t.TempDir())
	require.NoError(t, orphan.Start())

	fake := func(code string) *exec.Cmd {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(dir+"/exit", []byte(code), 0o600))
		cmd := exec.Command(os.Args[0], "serve", "--host", "127.0.0.1", "--port", "0")
		cmd.Env = append(os.Environ(), envFake+"=1", envFakeDir+"="+dir)
		return cmd
	}
	first, err := r.start(fake("5"))
	require.NoError(t, err)
	second, err := r.start(fake("6"))
	require.NoError(t, err)
	for _, w := range []struct {
		ch   <-chan syscall.WaitStatus
		code int
	}{{first, 5}, {second, 6}} {
		select {
		case ws := <-w.ch:
			assert.Equal(t, w.code, ws.ExitStatus())
		case <-time.After(30 * time.Second):
			t.Fatalf("no status for the child that exits with %d", w.code)
		}
	}
	// Reaped, it is gone from /proc; a zombie would still be there.
	require.Eventually(t, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(orphan.Process.Pid))
		return errors.Is(err, os.ErrNotExist)
	}, 10*time.Second, 10*time.Millisecond, "the other child was reaped too")
}
