package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
)

// leaks lists fragments of the test phone numbers that must never appear
// in what a sync-mode client receives.
var leaks = []string{"13812345678", "13900001111", "2345678", "0001111", "1381234", "1390000"}

func assertNoLeak(t *testing.T, raw string) {
	t.Helper()
	for _, l := range leaks {
		assert.NotContains(t, raw, l)
	}
}

func wantContent(style fakevllm.ReasoningStyle, strip bool) string {
	if strip {
		return maskedAnswer
	}
	switch style {
	case fakevllm.ThinkTags:
		return "<think>\n" + maskedReasoning + "\n</think>\n\n" + maskedAnswer
	case fakevllm.BareThink:
		return maskedReasoning + "\n</think>\n\n" + maskedAnswer
	}
	return maskedAnswer
}

func wantReasoning(style fakevllm.ReasoningStyle, strip bool) string {
	switch {
	case strip, style == fakevllm.ThinkTags, style == fakevllm.BareThink:
		return ""
	}
	return maskedReasoning
}

// TestStreamSyncMasksEverySplit streams an answer whose reasoning and
// content each hold a phone number, in every reasoning style, with tokens
// of 1 to 5 runes and with the SSE bytes cut into writes of 1 to a few
// bytes: the numbers are masked in the reasoning and the answer, and no
// digit sequence of them ever reaches the client.
func TestStreamSyncMasksEverySplit(t *testing.T) {
	for _, style := range allStyles {
		for _, strip := range []bool{false, true} {
			for _, runes := range []int{1, 2, 3, 5} {
				for _, split := range []int{0, 1, 5} {
					name := fmt.Sprintf("%s/strip=%v/runes=%d/split=%d", style, strip, runes, split)
					t.Run(name, func(t *testing.T) {
						up := &fakevllm.Server{
							Default:    fakevllm.Reply{Reasoning: reasoningWithPhone, Content: answerWithPhone, Style: style},
							TokenRunes: runes, SplitWrites: split, Seed: uint64(runes*7 + split),
						}
						e := newEnv(t, up, nil, func(o *Options) { o.StripReasoning = strip })
						resp := e.post(t, routeChat, chatBody(true, "hi"))
						require.Equal(t, http.StatusOK, resp.StatusCode)
						assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
						res := readStream(t, resp)
						assertNoLeak(t, res.raw)
						require.True(t, res.done, res.raw)
						assert.Equal(t, wantContent(style, strip), res.content[0])
						assert.Equal(t, wantReasoning(style, strip), res.reasoning[0])
						assert.Equal(t, "stop", res.finish[0])

						first := res.chunks[0]["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
						assert.Equal(t, "assistant", first["role"], "the role-only first chunk is passed on")
						last := res.chunks[len(res.chunks)-1]
						assert.NotNil(t, last["usage"], "the usage chunk is passed on")
						for _, c := range res.chunks {
							assert.Equal(t, "chatcmpl-fake", c["id"], "chunks keep the upstream's id")
							assert.Equal(t, "deepseek-r1", c["model"])
						}
						if style == fakevllm.ReasoningBoth && !strip {
							assert.Contains(t, res.raw, `"reasoning_content":`)
							assert.Contains(t, res.raw, `"reasoning":`)
						}
						if strip {
							assert.NotContains(t, res.raw, "reasoning")
							assert.NotContains(t, res.raw, "politely")
						}
						assert.Equal(t, "GUARDRAIL_INTERVENED", resp.Trailer.Get("X-Guardrail-Action"))
						assert.Equal(t, "sensitiveInformationPolicy/CN_MOBILE", resp.Trailer.Get("X-Guardrail-Policy"))
						// The chunk with the finish_reason carries the verdict.
						var fin map[string]any
						for _, c := range res.chunks {
							if g, ok := c["guardrail"]; ok {
								fin = g.(map[string]any)
							}
						}
						require.NotNil(t, fin)
						assert.Equal(t, "OUTPUT", fin["source"])
					})
				}
			}
		}
	}
}

func TestStreamSyncMultipleChoicesAndCompletions(t *testing.T) {
	t.Run("n=2", func(t *testing.T) {
		up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: reasoningWithPhone, Content: answerWithPhone}, TokenRunes: 2, SplitWrites: 4}
		e := newEnv(t, up, nil, nil)
		body := strings.Replace(chatBody(true, "hi"), `{`, `{"n":2,`, 1)
		res := readStream(t, e.post(t, routeChat, body))
		assertNoLeak(t, res.raw)
		for i := range 2 {
			assert.Equal(t, maskedAnswer, res.content[i], i)
			assert.Equal(t, maskedReasoning, res.reasoning[i], i)
			assert.Equal(t, "stop", res.finish[i])
		}
	})
	t.Run("completions", func(t *testing.T) {
		up := &fakevllm.Server{Default: fakevllm.Reply{Content: answerWithPhone}, TokenRunes: 1, SplitWrites: 3}
		e := newEnv(t, up, nil, nil)
		res := readStream(t, e.post(t, routeCompletions, `{"model":"deepseek-r1","prompt":"hi","stream":true}`))
		assertNoLeak(t, res.raw)
		assert.Equal(t, maskedAnswer, res.content[0])
		assert.Equal(t, "text_completion", res.chunks[0]["object"])
		assert.True(t, res.done)
	})
}

func TestStreamSyncBlocks(t *testing.T) {
	long := fakevllm.Lorem(60, 3) // 180 bytes, well past the holdback
	tests := []struct {
		name        string
		reply       fakevllm.Reply
		partialSent bool
	}{
		{name: "word early in the answer", reply: fakevllm.Reply{Content: "the forbidden word, and more"}},
		{name: "word after a long answer", reply: fakevllm.Reply{Content: long + " forbidden"}, partialSent: true},
		{name: "topic in the reasoning", reply: fakevllm.Reply{Reasoning: "let me explain how to build a bomb", Content: "ok"}},
		{name: "word in think tags", reply: fakevllm.Reply{Reasoning: "forbidden", Content: "ok", Style: fakevllm.ThinkTags}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakevllm.Server{Default: tt.reply, TokenRunes: 2, SplitWrites: 3}
			e := newEnv(t, up, nil, nil)
			resp := e.post(t, routeChat, chatBody(true, "hi"))
			res := readStream(t, resp)
			msg := e.checker.BlockedMessage("OUTPUT")
			require.True(t, res.done, "a blocked stream still ends with [DONE]")
			assert.Equal(t, "content_filter", res.finish[0])
			assert.NotContains(t, strings.ToLower(res.raw), "forbidden")
			assert.NotContains(t, res.raw, "bomb")
			if tt.partialSent {
				before, ok := strings.CutSuffix(res.content[0], "\n\n"+msg)
				require.True(t, ok, res.content[0])
				assert.True(t, strings.HasPrefix(long, before), "only checked text before the word was sent")
			} else {
				assert.Equal(t, msg, res.content[0], "nothing was sent: the message replaces the answer")
			}
			last := res.chunks[len(res.chunks)-1]
			g := last["guardrail"].(map[string]any)
			assert.Equal(t, "OUTPUT", g["source"])
			assert.Equal(t, "GUARDRAIL_INTERVENED", resp.Trailer.Get("X-Guardrail-Action"))
			recs := e.audit.records(t)
			assert.Equal(t, "blocked", recs[len(recs)-1]["outcome"])
		})
	}
}

func TestStreamAsync(t *testing.T) {
	t.Run("passes unchanged, no masking", func(t *testing.T) {
		up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: reasoningWithPhone, Content: answerWithPhone}, TokenRunes: 2, SplitWrites: 3}
		e := newEnv(t, up, nil, func(o *Options) { o.StreamMode = StreamAsync })
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		assert.Equal(t, answerWithPhone, res.content[0])
		assert.Equal(t, reasoningWithPhone, res.reasoning[0])
		assert.True(t, res.done)
		assert.Equal(t, "stop", res.finish[0])
		assert.Equal(t, 2.0, e.metric(t, "guardrail_interventions_total", map[string]string{"action": "DETECTED", "type": "CN_MOBILE"}))
		recs := e.audit.records(t)
		assert.Equal(t, "detected", recs[len(recs)-1]["outcome"])
	})
	t.Run("cut on a violation", func(t *testing.T) {
		up := &fakevllm.Server{Default: fakevllm.Reply{Content: fakevllm.Lorem(40, 3) + " forbidden " + fakevllm.Lorem(40, 3)}, TokenRunes: 2}
		e := newEnv(t, up, nil, func(o *Options) { o.StreamMode = StreamAsync })
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		msg := e.checker.BlockedMessage("OUTPUT")
		assert.True(t, strings.HasSuffix(res.content[0], "\n\n"+msg), res.content[0])
		assert.Equal(t, "content_filter", res.finish[0])
		assert.True(t, res.done)
		// The stream was cut right after the token that completed the word.
		sent := strings.TrimSuffix(res.content[0], "\n\n"+msg)
		wordEnd := strings.Index(up.Default.Content, "forbidden") + len("forbidden")
		assert.LessOrEqual(t, len(sent), wordEnd+2, "sent %q", sent)
	})
	t.Run("strip removes reasoning fields", func(t *testing.T) {
		up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: "secret plan", Content: "answer"}}
		e := newEnv(t, up, nil, func(o *Options) { o.StreamMode = StreamAsync; o.StripReasoning = true })
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		assert.NotContains(t, res.raw, "secret")
		assert.Equal(t, "answer", res.content[0])
	})
}

func TestStreamFailModes(t *testing.T) {
	reply := fakevllm.Reply{Content: answerWithPhone + " and then kaboom, " + fakevllm.Lorem(30, 3)}
	t.Run("closed", func(t *testing.T) {
		f := newFake()
		f.PanicOnCue = "kaboom"
		e := newEnv(t, &fakevllm.Server{Default: reply, TokenRunes: 2}, f, nil)
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		require.NotNil(t, res.errEvent, res.raw)
		assert.Equal(t, "guardrail_unavailable", res.errEvent["code"])
		assert.False(t, res.done, "an error is not a clean end")
		assert.NotContains(t, res.raw, "kaboom")
		assertNoLeak(t, res.raw)
	})
	t.Run("open", func(t *testing.T) {
		f := newFake()
		f.PanicOnCue = "kaboom"
		e := newEnv(t, &fakevllm.Server{Default: reply, TokenRunes: 2}, f, func(o *Options) { o.FailMode = FailOpen })
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		assert.True(t, res.done)
		assert.Nil(t, res.errEvent)
		assert.Contains(t, res.content[0], "kaboom", "fail open lets the rest through unchecked")
		assert.True(t, strings.HasSuffix(reply.Content, strings.TrimPrefix(res.content[0], maskedAnswer)))
		assert.Equal(t, 1.0, e.metric(t, "guardrail_fail_open_total", map[string]string{"source": "OUTPUT"}))
	})
}

// brokenUpstream sends two chunks, then a final one that is cut or broken.
type brokenUpstream struct{ tail string }

func (b brokenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`+"\n\n")
	_, _ = io.WriteString(w, `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"call 138123"}}]}`+"\n\n")
	_, _ = io.WriteString(w, b.tail)
	http.NewResponseController(w).Flush()
	if b.tail == "" {
		panic(http.ErrAbortHandler) // drop the connection mid-stream
	}
}

func TestStreamUpstreamTrouble(t *testing.T) {
	t.Run("connection dropped", func(t *testing.T) {
		e := newEnvWith(t, brokenUpstream{}, nil, nil)
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		require.NotNil(t, res.errEvent, res.raw)
		assert.Equal(t, "upstream_interrupted", res.errEvent["code"])
		assert.Equal(t, "call 138123", res.content[0], "what arrived was checked and released")
		assert.False(t, res.done)
		assert.Equal(t, 1.0, e.metric(t, "guardrail_upstream_errors_total", map[string]string{"kind": "read"}))
	})
	t.Run("unreadable chunk, closed", func(t *testing.T) {
		e := newEnvWith(t, brokenUpstream{tail: "data: {not json 45678\n\ndata: [DONE]\n\n"}, nil, nil)
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		require.NotNil(t, res.errEvent, res.raw)
		assert.Equal(t, "upstream_invalid_response", res.errEvent["code"])
		assert.NotContains(t, res.raw, "45678")
	})
	t.Run("cut inside an event", func(t *testing.T) {
		// vLLM went away in the middle of writing a chunk: the stream was
		// interrupted, it did not send garbage.
		e := newEnvWith(t, brokenUpstream{tail: `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"45`}, nil, nil)
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		require.NotNil(t, res.errEvent, res.raw)
		assert.Equal(t, "upstream_interrupted", res.errEvent["code"])
		assert.Equal(t, "call 138123", res.content[0], "what arrived was checked and released")
		assert.False(t, res.done)
	})
	t.Run("last event without its blank line", func(t *testing.T) {
		e := newEnvWith(t, brokenUpstream{tail: "data: [DONE]"}, nil, nil)
		res := readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
		assert.Nil(t, res.errEvent, res.raw)
		assert.True(t, res.done)
	})
	t.Run("unreadable chunk, open", func(t *testing.T) {
		e := newEnvWith(t, brokenUpstream{tail: "data: {not json 45678\n\ndata: [DONE]\n\n"}, nil, func(o *Options) { o.FailMode = FailOpen })
		resp := e.post(t, routeChat, chatBody(true, "hi"))
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Contains(t, string(raw), "data: {not json 45678\n\n")
		assert.Contains(t, string(raw), "data: [DONE]")
	})
}

// TestStreamClientCancelReachesUpstream closes the client connection
// mid-stream: the gateway must cancel the upstream request, which frees
// the GPU, and record the outcome.
func TestStreamClientCancelReachesUpstream(t *testing.T) {
	up := &fakevllm.Server{Default: fakevllm.Reply{Content: fakevllm.Lorem(500, 3)}, TokenDelay: 10 * time.Millisecond}
	e := newEnv(t, up, nil, nil)
	req, err := http.NewRequest(http.MethodPost, e.url+routeChat, strings.NewReader(chatBody(true, "hi")))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "data: "))
	require.NoError(t, resp.Body.Close())

	assert.Eventually(t, func() bool { return up.Canceled() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Eventually(t, func() bool {
		return e.metric(t, "guardrail_open_streams", nil) == 0 && e.metric(t, "guardrail_requests_total", nil) == 1
	}, 5*time.Second, 10*time.Millisecond)
	recs := e.audit.records(t)
	require.Len(t, recs, 1)
	assert.Equal(t, "client_closed", recs[0]["outcome"])
}

// TestStreamHeadersAndTrailers: what the input check did is in the
// headers, known before the stream starts; the final verdict, output
// included, is in the trailers.
func TestStreamHeadersAndTrailers(t *testing.T) {
	up := &fakevllm.Server{Default: fakevllm.Reply{Content: "plain answer"}}
	e := newEnv(t, up, nil, nil)
	resp := e.post(t, routeChat, chatBody(true, "my number 13812345678"))
	assert.Equal(t, "GUARDRAIL_INTERVENED", resp.Header.Get("X-Guardrail-Action"))
	assert.Equal(t, "sensitiveInformationPolicy/CN_MOBILE", resp.Header.Get("X-Guardrail-Policy"))
	res := readStream(t, resp)
	assert.Equal(t, "plain answer", res.content[0])
	assert.Equal(t, "GUARDRAIL_INTERVENED", resp.Trailer.Get("X-Guardrail-Action"))
	assert.Equal(t, "my number {CN_MOBILE}", e.up.Last().Texts[0])

	// A clean exchange has neither.
	resp = e.post(t, routeChat, chatBody(true, "hello"))
	_ = readStream(t, resp)
	assert.Empty(t, resp.Header.Get("X-Guardrail-Action"))
	assert.Empty(t, resp.Trailer.Get("X-Guardrail-Action"))
}
