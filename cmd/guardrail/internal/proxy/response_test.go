package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
)

const (
	reasoningWithPhone = "The user may want 13812345678 called; I should answer politely."
	answerWithPhone    = "Call 13900001111 tomorrow."
	maskedReasoning    = "The user may want {CN_MOBILE} called; I should answer politely."
	maskedAnswer       = "Call {CN_MOBILE} tomorrow."
)

var allStyles = []fakevllm.ReasoningStyle{fakevllm.ReasoningContent, fakevllm.ReasoningField, fakevllm.ReasoningBoth, fakevllm.ThinkTags, fakevllm.BareThink}

// TestNonStreamedReasoning checks masking and stripping of the reasoning
// in every form vLLM sends it, in a full (non-streamed) answer.
func TestNonStreamedReasoning(t *testing.T) {
	for _, style := range allStyles {
		for _, strip := range []bool{false, true} {
			name := string(style)
			if strip {
				name += "/strip"
			}
			t.Run(name, func(t *testing.T) {
				up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: reasoningWithPhone, Content: answerWithPhone, Style: style}}
				e := newEnv(t, up, nil, func(o *Options) { o.StripReasoning = strip })
				resp := e.post(t, routeChat, chatBody(false, "hi"))
				require.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "GUARDRAIL_INTERVENED", resp.Header.Get("X-Guardrail-Action"))
				m := decode(t, resp)
				msg := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
				content := msg["content"].(string)
				assert.NotContains(t, content, "13812345678")
				assert.NotContains(t, content, "13900001111")
				if strip {
					assert.Equal(t, maskedAnswer, content)
					assert.NotContains(t, msg, "reasoning_content")
					assert.NotContains(t, msg, "reasoning")
					return
				}
				switch style {
				case fakevllm.ThinkTags:
					assert.Equal(t, "<think>\n"+maskedReasoning+"\n</think>\n\n"+maskedAnswer, content)
				case fakevllm.BareThink:
					assert.Equal(t, maskedReasoning+"\n</think>\n\n"+maskedAnswer, content)
				default:
					assert.Equal(t, maskedAnswer, content)
				}
				fields := map[fakevllm.ReasoningStyle][]string{
					fakevllm.ReasoningContent: {"reasoning_content"},
					fakevllm.ReasoningField:   {"reasoning"},
					fakevllm.ReasoningBoth:    {"reasoning_content", "reasoning"},
				}[style]
				for _, f := range fields {
					assert.Equal(t, maskedReasoning, msg[f], f)
				}
				g := m["guardrail"].(map[string]any)
				assert.Equal(t, "OUTPUT", g["source"])
				assert.Equal(t, "GUARDRAIL_INTERVENED", g["action"])
				// Both phone numbers, each counted once even when two fields
				// carry the reasoning.
				assert.Equal(t, 2.0, e.metric(t, "guardrail_interventions_total", map[string]string{"source": "OUTPUT", "action": "ANONYMIZED"}))
			})
		}
	}
}

func TestNonStreamedSkipReasoningScan(t *testing.T) {
	up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: reasoningWithPhone, Content: "fine", Style: fakevllm.ReasoningContent}}
	e := newEnv(t, up, nil, func(o *Options) { o.SkipReasoningScan = true })
	m := decode(t, e.post(t, routeChat, chatBody(false, "hi")))
	msg := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	assert.Equal(t, reasoningWithPhone, msg["reasoning_content"], "scanReasoning: false leaves the reasoning as it is")
}

func TestNonStreamedBlockedOutput(t *testing.T) {
	tests := []struct {
		name  string
		reply fakevllm.Reply
		path  string
	}{
		{name: "answer", reply: fakevllm.Reply{Content: "this is forbidden"}, path: routeChat},
		{name: "reasoning field", reply: fakevllm.Reply{Reasoning: "think about the forbidden", Content: "ok"}, path: routeChat},
		{name: "think tags", reply: fakevllm.Reply{Reasoning: "how to build a bomb", Content: "ok", Style: fakevllm.ThinkTags}, path: routeChat},
		{name: "completion", reply: fakevllm.Reply{Content: "forbidden text"}, path: routeCompletions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakevllm.Server{Default: tt.reply}
			e := newEnv(t, up, nil, nil)
			body := chatBody(false, "hi")
			if tt.path == routeCompletions {
				body = `{"model":"deepseek-r1","prompt":"hi","n":2}`
			}
			resp := e.post(t, tt.path, body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "GUARDRAIL_INTERVENED", resp.Header.Get("X-Guardrail-Action"))
			m := decode(t, resp)
			raw := strings.ToLower(m["choices"].([]any)[0].(map[string]any)["finish_reason"].(string))
			assert.Equal(t, "content_filter", raw)
			for _, c := range m["choices"].([]any) {
				ch := c.(map[string]any)
				var text string
				if tt.path == routeChat {
					text = ch["message"].(map[string]any)["content"].(string)
				} else {
					text = ch["text"].(string)
				}
				assert.Equal(t, e.checker.BlockedMessage("OUTPUT"), text)
			}
			assert.Equal(t, "deepseek-r1", m["model"])
			assert.NotNil(t, m["usage"], "the upstream's usage is kept: the tokens were generated")
			assert.Equal(t, "OUTPUT", m["guardrail"].(map[string]any)["source"])
			assert.NotContains(t, m, "reasoning_content")
		})
	}
}

func TestNonStreamedCleanAnswerIsUntouched(t *testing.T) {
	up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: "<ok> & fine", Content: "Hello <b>there</b>"}}
	e := newEnv(t, up, nil, nil)
	resp := e.post(t, routeChat, chatBody(false, "hi"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("X-Guardrail-Action"))
	m := decode(t, resp)
	assert.NotContains(t, m, "guardrail")
	msg := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	assert.Equal(t, "Hello <b>there</b>", msg["content"])
	assert.Equal(t, "<ok> & fine", msg["reasoning_content"])
}

func TestNonStreamedFailModes(t *testing.T) {
	for _, mode := range []FailMode{FailClosed, FailOpen} {
		t.Run(string(mode), func(t *testing.T) {
			up := &fakevllm.Server{Default: fakevllm.Reply{Content: "kaboom 13812345678"}}
			f := newFake()
			f.PanicOnCue = "kaboom"
			e := newEnv(t, up, f, func(o *Options) { o.FailMode = mode })
			resp := e.post(t, routeChat, chatBody(false, "hi"))
			m := decode(t, resp)
			if mode == FailClosed {
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				assert.Equal(t, "guardrail_unavailable", m["error"].(map[string]any)["code"])
				return
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			msg := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
			assert.Equal(t, "kaboom 13812345678", msg["content"], "fail open passes the answer unchecked")
			assert.Equal(t, 1.0, e.metric(t, "guardrail_fail_open_total", map[string]string{"source": "OUTPUT"}))
			recs := e.audit.records(t)
			require.NotEmpty(t, recs)
			assert.Equal(t, "failed_open", recs[len(recs)-1]["outcome"])
		})
	}
}

func TestInputCheckFailModes(t *testing.T) {
	for _, mode := range []FailMode{FailClosed, FailOpen} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFake()
			f.PanicOnCue = "kaboom"
			e := newEnv(t, nil, f, func(o *Options) { o.FailMode = mode })
			resp := e.post(t, routeChat, chatBody(false, "kaboom"))
			if mode == FailClosed {
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				assert.Zero(t, e.up.Calls(), "fail closed: an unchecked prompt does not reach the model")
				return
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, int64(1), e.up.Calls())
			assert.Equal(t, 1.0, e.metric(t, "guardrail_fail_open_total", map[string]string{"source": "INPUT"}))
		})
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		e := newEnv(t, nil, nil, func(o *Options) { o.Upstream = mustURL(t, "http://127.0.0.1:1") }) // nothing listens on port 1
		resp := e.post(t, routeChat, chatBody(false, "hi"))
		assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
		m := decode(t, resp)
		assert.Equal(t, "upstream_error", m["error"].(map[string]any)["type"])
		assert.Equal(t, 1.0, e.metric(t, "guardrail_upstream_errors_total", map[string]string{"kind": "connect"}))
	})
	t.Run("upstream error passed on", func(t *testing.T) {
		e := newEnv(t, nil, nil, func(o *Options) { o.UpstreamAPIKey = "wrong" }) // the fake answers 401 with its own error
		resp := e.post(t, routeChat, chatBody(false, "hi"))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		m := decode(t, resp)
		assert.Equal(t, "Unauthorized", m["message"])
	})
	t.Run("models passed through", func(t *testing.T) {
		e := newEnv(t, nil, nil, nil)
		resp := e.do(t, http.MethodGet, "/v1/models", clientKey, "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		m := decode(t, resp)
		assert.Equal(t, "deepseek-r1", m["data"].([]any)[0].(map[string]any)["id"])
	})
}

func TestHealth(t *testing.T) {
	e := newEnv(t, nil, nil, nil)
	resp := e.do(t, http.MethodGet, "/healthz", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp = e.do(t, http.MethodGet, "/healthz?upstream=1", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", decode(t, resp)["upstream"])
	resp = e.do(t, http.MethodGet, "/readyz", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", decode(t, resp)["upstream"], "/readyz asks vLLM, without a query string")

	e = newEnv(t, nil, nil, func(o *Options) { o.Upstream = mustURL(t, "http://127.0.0.1:1") })
	resp = e.do(t, http.MethodGet, "/healthz", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "liveness does not depend on the model")
	resp = e.do(t, http.MethodGet, "/healthz?upstream=1", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unreachable", decode(t, resp)["upstream"])
	resp = e.do(t, http.MethodGet, "/readyz", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the load balancer sees the server down when vLLM is")
}

func TestUpstreamURL(t *testing.T) {
	tests := []struct{ base, path, want string }{
		{"http://vllm:8000", "/v1/chat/completions", "http://vllm:8000/v1/chat/completions"},
		{"http://vllm:8000/", "/v1/models", "http://vllm:8000/v1/models"},
		{"http://vllm:8000/v1", "/v1/chat/completions", "http://vllm:8000/v1/chat/completions"},
		{"https://gw.internal/llm/v1/", "/v1/completions", "https://gw.internal/llm/v1/completions"},
	}
	for _, tt := range tests {
		s := &Server{upstream: mustURL(t, tt.base)}
		assert.Equal(t, tt.want, s.upstreamURL(tt.path, ""), tt.base)
	}
}
