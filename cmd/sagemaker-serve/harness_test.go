package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is an io.Writer the entry point, its audit log and the
// fake's output pipes can share.
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

// instance is one entry point, run in-process, with its fake vLLM.
type instance struct {
	t      *testing.T
	base   string // http://127.0.0.1:port of the entry point
	dir    string // the fake's control directory
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan int
	cancel context.CancelFunc
	code   int
	ended  bool
}

const testServedModel = "deepseek-r1"

// testOptions are generous where waiting is the normal case (vLLM stops
// in well under a second, unless the machine is loaded), short where it is
// not.
var testOptions = runOptions{
	healthInterval:    20 * time.Millisecond,
	drainTimeout:      5 * time.Second,
	stopTimeout:       10 * time.Second,
	guardStartTimeout: 30 * time.Second,
	guardBackoffMin:   50 * time.Millisecond,
	guardBackoffMax:   200 * time.Millisecond,
}

// testEnviron is the process environment without anything that would
// configure the entry point, plus the fake's switches and env (which wins,
// coming last).
func testEnviron(dir string, env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SM_VLLM_") || strings.HasPrefix(k, "GUARDRAIL_") || strings.HasPrefix(k, "GUARD_") ||
			strings.HasPrefix(k, "SAGEMAKER_") || k == envVLLMCommand || strings.HasPrefix(k, "FAKE_VLLM_") ||
			k == envFakeGuardRdy || k == envFake {
			continue
		}
		out = append(out, kv)
	}
	cmd, _ := json.Marshal([]string{os.Args[0], "serve"})
	out = append(out,
		envFake+"=1",
		envFakeDir+"="+dir,
		envVLLMCommand+"="+string(cmd),
		"SM_VLLM_SERVED_MODEL_NAME="+testServedModel,
	)
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// freePort is a port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// start runs the entry point with env on top of the test environment and
// waits until it listens. It stops it at the end of the test.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	return startWith(t, env, testOptions)
}

func startWith(t *testing.T, env map[string]string, o runOptions) *instance {
	t.Helper()
	dir := t.TempDir()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["SAGEMAKER_BIND_TO_PORT"]; !ok {
		env["SAGEMAKER_BIND_TO_PORT"] = freePort(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{t: t, dir: dir, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1), cancel: cancel}
	addr := make(chan net.Addr, 1)
	o.listening = func(a net.Addr) { addr <- a }
	go func() {
		in.done <- run(ctx, []string{"serve"}, testEnviron(dir, env), in.stdout, in.stderr, o)
	}()
	t.Cleanup(func() {
		in.cancel()
		in.wait(30 * time.Second)
	})
	select {
	case a := <-addr:
		_, port, _ := net.SplitHostPort(a.String())
		in.base = "http://127.0.0.1:" + port
	case code := <-in.done:
		in.code, in.ended = code, true
	case <-time.After(30 * time.Second):
		t.Fatal("the entry point did not listen")
	}
	return in
}

// wait returns the entry point's exit status, failing the test if it does
// not end within d.
func (in *instance) wait(d time.Duration) int {
	in.t.Helper()
	if in.ended {
		return in.code
	}
	select {
	case in.code = <-in.done:
		in.ended = true
		return in.code
	case <-time.After(d):
		in.t.Fatalf("the entry point did not end within %v\nstderr:\n%s", d, in.stderr)
		return -1
	}
}

// fakeFile writes one of the fake's control files, whole at once (the
// fake polls for it and must not read it half written).
func (in *instance) fakeFile(name, content string) {
	in.t.Helper()
	tmp := filepath.Join(in.dir, "."+name+".tmp")
	require.NoError(in.t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(in.t, os.Rename(tmp, filepath.Join(in.dir, name)))
}

// guardDir is the control directory of the fake guard model.
func (in *instance) guardDir() string { return filepath.Join(in.dir, "guard") }

// guardFile writes one of the fake guard's control files, whole at once
// (the guard's directory exists once it has started).
func (in *instance) guardFile(name, content string) {
	in.t.Helper()
	tmp := filepath.Join(in.guardDir(), "."+name+".tmp")
	require.NoError(in.t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(in.t, os.Rename(tmp, filepath.Join(in.guardDir(), name)))
}

// lines is the number of lines of a file of the fakes; 0 when absent.
func (in *instance) lines(path string) int {
	b, err := os.ReadFile(filepath.Join(in.dir, path))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// calls is how many completion requests reached the fake vLLM.
func (in *instance) calls() int { return in.lines("calls") }

// guardCalls is how many the fake guard model got.
func (in *instance) guardCalls() int { return in.lines("guard/calls") }

// guardStarts is how many times the fake guard model was started.
func (in *instance) guardStarts() int { return in.lines("guard/starts") }

// argv is what the fake vLLM was started with.
func (in *instance) argv() fakeArgv {
	in.t.Helper()
	return in.argvIn("argv.json", "the fake vLLM never started")
}

// guardArgv is what the fake guard model was last started with.
func (in *instance) guardArgv() fakeArgv {
	in.t.Helper()
	return in.argvIn("guard/argv.json", "the fake guard model never started")
}

func (in *instance) argvIn(path, msg string) fakeArgv {
	in.t.Helper()
	var a fakeArgv
	require.Eventually(in.t, func() bool {
		b, err := os.ReadFile(filepath.Join(in.dir, path))
		return err == nil && json.Unmarshal(b, &a) == nil
	}, 30*time.Second, 10*time.Millisecond, msg+"\nstderr:\n%s", in.stderr)
	return a
}

// started reports whether the fake at path (argv.json or guard/argv.json)
// has been started.
func (in *instance) started(path string) bool {
	_, err := os.Stat(filepath.Join(in.dir, path))
	return err == nil
}

// pingCode is /ping's status now.
func (in *instance) pingCode() int {
	in.t.Helper()
	resp := in.get("/ping")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (in *instance) get(path string) *http.Response {
	in.t.Helper()
	resp, err := http.Get(in.base + path)
	require.NoError(in.t, err)
	return resp
}

func (in *instance) post(body string) *http.Response {
	in.t.Helper()
	resp, err := http.Post(in.base+"/invocations", "application/json", strings.NewReader(body))
	require.NoError(in.t, err)
	return resp
}

// waitHealthy waits for /ping to answer 200.
func (in *instance) waitHealthy() {
	in.t.Helper()
	require.Eventually(in.t, func() bool {
		resp, err := http.Get(in.base + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 10*time.Millisecond, "/ping never became healthy\nstderr:\n%s", in.stderr)
}

// readJSON decodes a whole response body.
func readJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

// readEvents reads an event stream up to [DONE] and returns the data of
// each event, parsed.
func readEvents(t *testing.T, resp *http.Response) (events []map[string]any, done bool) {
	t.Helper()
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return events, true
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &m), data)
		events = append(events, m)
	}
	require.NoError(t, sc.Err())
	return events, false
}

// streamText joins the text of every choice 0 delta (chat) or text
// (completions), and the reasoning apart.
func streamText(events []map[string]any) (content, reasoning string, finish []string) {
	var c, r strings.Builder
	for _, ev := range events {
		choices, _ := ev["choices"].([]any)
		for _, ch := range choices {
			m := ch.(map[string]any)
			if d, ok := m["delta"].(map[string]any); ok {
				s, _ := d["content"].(string)
				c.WriteString(s)
				s, _ = d["reasoning_content"].(string)
				r.WriteString(s)
			}
			if s, ok := m["text"].(string); ok {
				c.WriteString(s)
			}
			if f, ok := m["finish_reason"].(string); ok {
				finish = append(finish, f)
			}
		}
	}
	return c.String(), r.String(), finish
}

// choice0 is the first choice of a non-streamed answer: its text (message
// content or completion text), reasoning and finish reason.
func choice0(m map[string]any) (content, reasoning, finish string) {
	ch := m["choices"].([]any)[0].(map[string]any)
	finish, _ = ch["finish_reason"].(string)
	if msg, ok := ch["message"].(map[string]any); ok {
		content, _ = msg["content"].(string)
		reasoning, _ = msg["reasoning_content"].(string)
		return content, reasoning, finish
	}
	content, _ = ch["text"].(string)
	return content, "", finish
}

// answer reads a chat answer, streamed or not: its text, its last finish
// reason, and the gateway's "guardrail" object (the last one a stream
// carried), nil when there is none.
func answer(t *testing.T, resp *http.Response, stream bool) (content, finish string, guardrail map[string]any) {
	t.Helper()
	if !stream {
		m := readJSON(t, resp)
		content, _, finish = choice0(m)
		guardrail, _ = m["guardrail"].(map[string]any)
		return content, finish, guardrail
	}
	events, done := readEvents(t, resp)
	assert.True(t, done)
	var fins []string
	content, _, fins = streamText(events)
	require.NotEmpty(t, fins)
	finish = fins[len(fins)-1]
	for _, ev := range events {
		if g, ok := ev["guardrail"].(map[string]any); ok {
			guardrail = g
		}
	}
	return content, finish, guardrail
}
