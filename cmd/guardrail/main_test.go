package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/gateway"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/proxy"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no upstream", args: []string{"-policy", "p.yaml"}, wantErr: "-upstream is required"},
		{name: "no policy", args: []string{"-upstream", "http://x"}, wantErr: "-policy is required"},
		{name: "stray argument", args: []string{"-upstream", "http://x", "-policy", "p", "extra"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
		{name: "ok", args: []string{"-upstream", "http://x", "-policy", "p", "-listen", ":9"}},
		{name: "guard max chars too small", args: []string{"-upstream", "http://x", "-policy", "p", "-guard-max-chars", "99"},
			wantErr: "-guard-max-chars 99: want 100..1048576"},
		{name: "guard max chars too large", args: []string{"-upstream", "http://x", "-policy", "p", "-guard-max-chars", "1048577"},
			wantErr: "-guard-max-chars 1048577"},
		{name: "guard max chars negative", args: []string{"-upstream", "http://x", "-policy", "p", "-guard-max-chars", "-1"},
			wantErr: "-guard-max-chars -1"},
		{name: "guard max chars in range", args: []string{"-upstream", "http://x", "-policy", "p", "-listen", ":9", "-guard-max-chars", "2500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, ":9", c.listen)
			assert.Equal(t, "-", c.auditLog)
		})
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keyFile, []byte("file-key-1\nfile-key-2\n"), 0o600))
	upFile := filepath.Join(dir, "up")
	require.NoError(t, os.WriteFile(upFile, []byte("up-from-file\n"), 0o600))
	env := map[string]string{"GUARDRAIL_API_KEYS": "env-a, env-b", "GUARDRAIL_UPSTREAM_API_KEY": "up-from-env"}
	getenv := func(k string) string { return env[k] }

	clients, up, err := keys(config{}, getenv)
	require.NoError(t, err)
	assert.Equal(t, []string{"env-a", "env-b"}, clients)
	assert.Equal(t, "up-from-env", up)

	clients, up, err = keys(config{apiKeysFile: keyFile, upstreamKeyFile: upFile}, getenv)
	require.NoError(t, err)
	assert.Equal(t, []string{"file-key-1", "file-key-2"}, clients, "the file wins over the environment")
	assert.Equal(t, "up-from-file", up)

	_, _, err = keys(config{}, func(string) string { return "" })
	assert.ErrorContains(t, err, "no client API keys")
	_, _, err = keys(config{apiKeysFile: filepath.Join(dir, "missing")}, getenv)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestOptionsFromPolicy(t *testing.T) {
	p := &policy.Policy{FailMode: policy.FailOpen, Streaming: policy.Streaming{Mode: policy.StreamAsync},
		Reasoning: policy.Reasoning{ScanReasoning: false, StripReasoning: true}}
	o := gateway.ProxyOptions(p)
	assert.Equal(t, proxy.FailOpen, o.FailMode)
	assert.Equal(t, proxy.StreamAsync, o.StreamMode)
	assert.True(t, o.SkipReasoningScan)
	assert.True(t, o.StripReasoning)
	assert.Contains(t, o.PIITypes, "CN_MOBILE")

	o = gateway.ProxyOptions(&policy.Policy{FailMode: policy.FailClosed, Streaming: policy.Streaming{Mode: policy.StreamSync}, Reasoning: policy.Reasoning{ScanReasoning: true}})
	assert.Equal(t, proxy.FailClosed, o.FailMode)
	assert.Equal(t, proxy.StreamSync, o.StreamMode)
	assert.False(t, o.SkipReasoningScan)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun starts the binary's run loop with the example policy in front
// of a fake vLLM, sends a request, and shuts it down as SIGTERM would.
func TestRun(t *testing.T) {
	up := &fakevllm.Server{APIKey: "up-key", Default: fakevllm.Reply{Content: "Call 13812345678."}}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrCh := make(chan net.Addr, 1)
	var stdout, stderr syncBuffer
	env := map[string]string{"GUARDRAIL_API_KEYS": "client-key", "GUARDRAIL_UPSTREAM_API_KEY": "up-key"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-upstream", upSrv.URL, "-policy", "policies/default/policy.yaml"},
			func(k string) string { return env[k] }, &stdout, &stderr, func(a net.Addr) { addrCh <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("run ended early: %v\n%s", err, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("not listening")
	}
	base := "http://" + addr.String()

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(`{"model":"deepseek-r1","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer client-key")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	msg := body["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	assert.Equal(t, "Call {CN_MOBILE}.", msg["content"])

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(m), "guardrail_requests_total")
	assert.Contains(t, string(m), "go_goroutines", "the runtime collectors are registered")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	assert.Contains(t, stdout.String(), `"outcome":"anonymized"`, "the audit log goes to stdout")
	assert.NotContains(t, stdout.String(), "13812345678")
	assert.Contains(t, stderr.String(), "shutting down")
}

func TestClassifierFromPolicyAndFlags(t *testing.T) {
	getenv := func(k string) string { return map[string]string{"GUARDRAIL_GUARD_API_KEY": "k1", "MY_KEY": "k2"}[k] }
	plain := &policy.Policy{FailMode: policy.FailClosed}
	k, gm, err := classifier(config{}, plain, getenv)
	require.NoError(t, err)
	assert.Nil(t, k, "no section, no flag: no model step")
	assert.Nil(t, gm)

	k, gm, err = classifier(config{guardEndpoint: "http://127.0.0.1:8002/v1"}, plain, getenv)
	require.NoError(t, err)
	require.NotNil(t, k)
	assert.Equal(t, "Qwen/Qwen3Guard-Gen-0.6B", gm.Model)
	assert.Equal(t, "http://127.0.0.1:8002/v1", gm.Endpoint)
	assert.Equal(t, policy.FailClosed, gm.FailMode)

	p, err := policy.Parse([]byte("guardModel: {model: Qwen/Qwen3Guard-Gen-4B, apiKeyEnv: MY_KEY, streaming: hold}\n"), "")
	require.NoError(t, err)
	_, _, err = classifier(config{}, p, getenv)
	assert.ErrorContains(t, err, "no endpoint")
	_, gm, err = classifier(config{guardEndpoint: "http://guard:8002", guardModel: "other"}, p, getenv)
	require.NoError(t, err)
	assert.Equal(t, "other", gm.Model)
	assert.Equal(t, policy.GuardStreamHold, gm.Streaming)
}

// TestGuardMaxChars: -guard-max-chars decides how many runes of a message
// reach the guard model, over the policy's guardModel.maxChars; 0 keeps the
// policy's. The guard model here is an OpenAI-compatible stand-in that
// records the prompt it was sent and answers as Qwen3Guard-Gen does.
func TestGuardMaxChars(t *testing.T) {
	var mu sync.Mutex
	var sent []string
	guardSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		sent = append(sent, req.Messages[0].Content)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"Safety: Safe\nCategories: None"}}]}`)
	}))
	defer guardSrv.Close()

	withSection, err := policy.Parse([]byte("guardModel: {model: g, maxChars: 300}\n"), "")
	require.NoError(t, err)
	prompt := strings.Repeat("提示", 1000) // 2000 runes, 6000 bytes
	tests := []struct {
		name  string
		p     *policy.Policy
		flag  int
		runes int
	}{
		{name: "flag over the policy's section", p: withSection, flag: 150, runes: 150},
		{name: "0 keeps the policy's maxChars", p: withSection, flag: 0, runes: 300},
		{name: "flag with the default mapping", p: &policy.Policy{FailMode: policy.FailClosed}, flag: 1234, runes: 1234},
		{name: "default mapping's own maxChars", p: &policy.Policy{FailMode: policy.FailClosed}, flag: 0, runes: policy.DefaultGuardMaxChars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, gm, err := classifier(config{guardEndpoint: guardSrv.URL + "/v1", guardMaxChars: tt.flag}, tt.p, func(string) string { return "" })
			require.NoError(t, err)
			require.NotNil(t, k)
			assert.Equal(t, tt.runes, gm.MaxChars)
			mu.Lock()
			sent = nil
			mu.Unlock()
			_, err = k.Classify(context.Background(), guard.Input, prompt, "")
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, sent, 1)
			want := min(tt.runes, utf8.RuneCountInString(prompt))
			assert.Equal(t, want, utf8.RuneCountInString(sent[0]), "runes the guard model was sent")
			assert.True(t, strings.HasSuffix(prompt, sent[0]), "a long prompt keeps its end")
		})
	}
	_, _, err = classifier(config{guardEndpoint: guardSrv.URL, guardMaxChars: 50}, withSection, func(string) string { return "" })
	assert.ErrorContains(t, err, "maxChars 50 is out of range 100..1048576")
}
