package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardtest"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/sse"
)

const (
	clientKey   = "sk-client-test-key"
	upstreamKey = "vllm-upstream-key"
)

// lockedBuffer is an io.Writer safe for the concurrent handler goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the audit records written so far.
func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// testEnv is a gateway in front of a fake vLLM.
type testEnv struct {
	up      *fakevllm.Server
	gw      *Server
	url     string
	checker guard.Checker
	audit   *lockedBuffer
	reg     *prometheus.Registry
}

// newEnv starts a fake vLLM and a gateway in front of it. checker nil
// means guardtest.New().
func newEnv(t *testing.T, up *fakevllm.Server, checker guard.Checker, opt func(*Options)) *testEnv {
	t.Helper()
	if up == nil {
		up = &fakevllm.Server{}
	}
	up.APIKey = upstreamKey
	e := newEnvWith(t, up, checker, opt)
	e.up = up
	return e
}

// newEnvWith puts a gateway in front of any upstream handler.
func newEnvWith(t *testing.T, upstream http.Handler, checker guard.Checker, opt func(*Options)) *testEnv {
	t.Helper()
	upSrv := httptest.NewServer(upstream)
	t.Cleanup(upSrv.Close)
	if checker == nil {
		checker = guardtest.New()
	}
	opts := Options{Upstream: mustURL(t, upSrv.URL), UpstreamAPIKey: upstreamKey, APIKeys: []string{clientKey, "sk-second-key"}}
	if opt != nil {
		opt(&opts)
	}
	audit := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	gw, err := New(checker, opts, reg, slog.New(slog.NewJSONHandler(audit, nil)))
	require.NoError(t, err)
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	return &testEnv{gw: gw, url: gwSrv.URL, checker: checker, audit: audit, reg: reg}
}

// post sends a JSON body with the client key.
func (e *testEnv) post(t *testing.T, path, body string) *http.Response {
	t.Helper()
	return e.do(t, http.MethodPost, path, clientKey, body)
}

func (e *testEnv) do(t *testing.T, method, path, key, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// decode reads a JSON response body.
func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return m
}

// streamResult is a streamed answer, reassembled.
type streamResult struct {
	raw       string           // every byte received
	chunks    []map[string]any // parsed data events, [DONE] excluded
	done      bool             // ended with [DONE]
	content   map[int]string   // per choice
	reasoning map[int]string   // per choice, from reasoning_content or reasoning
	finish    map[int]string
	errEvent  map[string]any
}

func readStream(t *testing.T, resp *http.Response) streamResult {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	res := streamResult{raw: string(raw), content: map[int]string{}, reasoning: map[int]string{}, finish: map[int]string{}}
	rd := sse.NewReader(bytes.NewReader(raw))
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.False(t, res.done, "an event after [DONE]")
		if string(ev.Data) == "[DONE]" {
			res.done = true
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(ev.Data, &m), string(ev.Data))
		if e, ok := m["error"]; ok {
			res.errEvent = e.(map[string]any)
			continue
		}
		res.chunks = append(res.chunks, m)
		choices, _ := m["choices"].([]any)
		for _, c := range choices {
			ch := c.(map[string]any)
			i := int(ch["index"].(float64))
			if d, ok := ch["delta"].(map[string]any); ok {
				if s, ok := d["content"].(string); ok {
					res.content[i] += s
				}
				// Both names carry the same text when both are present.
				if s, ok := d["reasoning_content"].(string); ok {
					res.reasoning[i] += s
				} else if s, ok := d["reasoning"].(string); ok {
					res.reasoning[i] += s
				}
			}
			if s, ok := ch["text"].(string); ok {
				res.content[i] += s
			}
			if f, ok := ch["finish_reason"].(string); ok {
				res.finish[i] = f
			}
		}
	}
	return res
}

// metric sums the values of the counters, gauges or histogram counts named
// name whose labels include the given ones. It reads the registry the way
// /metrics does, rather than the collectors, so that it also proves they
// are registered.
func (e *testEnv) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func chatBody(stream bool, msgs ...string) string {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	m := []msg{}
	for i, s := range msgs {
		role := "user"
		if i == 0 && len(msgs) > 1 {
			role = "system"
		}
		m = append(m, msg{Role: role, Content: s})
	}
	b, _ := json.Marshal(map[string]any{"model": "deepseek-r1", "messages": m, "stream": stream, "temperature": 0.6,
		"chat_template_kwargs": map[string]any{"thinking": true}, "stream_options": map[string]any{"include_usage": stream}})
	return string(b)
}

func newFake() *guardtest.Fake { return guardtest.New() }

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}
