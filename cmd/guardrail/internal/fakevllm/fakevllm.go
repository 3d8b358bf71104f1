// Package fakevllm is an in-process stand-in for vLLM's OpenAI-compatible
// server, for the gateway's tests and benchmark. It reproduces what the
// gateway has to cope with in vLLM's answers: the role-only first chunk,
// reasoning in "reasoning_content" and/or "reasoning" deltas (vLLM with
// --reasoning-parser deepseek_r1) or inside the content between <think>
// tags (without the parser), the finish chunk, the usage chunk
// (stream_options.include_usage) and [DONE] -- and it can cut its SSE bytes
// into small writes, each flushed, at arbitrary byte positions, so that
// events and even UTF-8 sequences arrive split across reads.
package fakevllm

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ReasoningStyle is how the reasoning is sent.
type ReasoningStyle string

const (
	// ReasoningContent: the older vLLM field "reasoning_content".
	ReasoningContent ReasoningStyle = "reasoning_content"
	// ReasoningField: the newer vLLM field "reasoning".
	ReasoningField ReasoningStyle = "reasoning"
	// ReasoningBoth: both fields, with the same text.
	ReasoningBoth ReasoningStyle = "both"
	// ThinkTags: no reasoning parser, "<think>...</think>" in the content.
	ThinkTags ReasoningStyle = "think"
	// BareThink: no parser, R1's template opened <think> in the prompt, so
	// the content has the reasoning and a bare "</think>".
	BareThink ReasoningStyle = "bare"
)

// Reply is what the model answers.
type Reply struct {
	Reasoning string
	Content   string
	Style     ReasoningStyle // default ReasoningContent
}

// Request is what the fake saw of a completion request.
type Request struct {
	Path     string
	Model    string
	Stream   bool
	N        int
	Usage    bool     // stream_options.include_usage
	Texts    []string // message contents (text parts) or prompts
	Raw      map[string]json.RawMessage
	Header   http.Header
	BodySize int
}

// Server is the fake. Its zero value answers "Hello!" with no reasoning.
type Server struct {
	// Reply decides the answer; nil answers Default.
	Reply   func(Request) Reply
	Default Reply
	// TokenRunes is how many runes make one streamed token (default 3).
	TokenRunes int
	// TokenDelay is the pause before each streamed token (and the total
	// generation time of a non-streamed answer is tokens * TokenDelay).
	TokenDelay time.Duration
	// SplitWrites, if > 0, cuts the SSE output into writes of 1 to
	// SplitWrites bytes, each flushed, with sizes from Seed.
	SplitWrites int
	Seed        uint64
	// APIKey, if set, is required as the bearer token.
	APIKey string

	delay    atomic.Int64 // set by SetTokenDelay
	delaySet atomic.Bool
	calls    atomic.Int64
	canceled atomic.Int64
	doneAt   sync.Map // X-Request-Id -> time.Time [DONE] was written
	mu       sync.Mutex
	last     Request
}

// Calls is the number of completion requests received.
func (s *Server) Calls() int64 { return s.calls.Load() }

// SetTokenDelay changes the per-token delay while requests may be in
// flight (TokenDelay itself must not change once the server is in use).
func (s *Server) SetTokenDelay(d time.Duration) {
	s.delay.Store(int64(d))
	s.delaySet.Store(true)
}

func (s *Server) tokenDelay() time.Duration {
	if s.delaySet.Load() {
		return time.Duration(s.delay.Load())
	}
	return s.TokenDelay
}

// DoneAt is when the stream of the request with that X-Request-Id header
// was ended with [DONE], for measuring how long the last chunk takes to
// reach the client. Each entry can be asked for once, then it is dropped.
func (s *Server) DoneAt(requestID string) (time.Time, bool) {
	v, ok := s.doneAt.LoadAndDelete(requestID)
	if !ok {
		return time.Time{}, false
	}
	return v.(time.Time), true
}

// Canceled is the number of requests whose client (the gateway) went
// away before the answer was complete.
func (s *Server) Canceled() int64 { return s.canceled.Load() }

// Last is the latest completion request received.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if s.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		writeErr(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	switch r.URL.Path {
	case "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"deepseek-r1","object":"model","created":1,"owned_by":"vllm","max_model_len":32768}]}`)
	case "/v1/chat/completions", "/v1/completions":
		s.complete(w, r)
	default:
		writeErr(w, http.StatusNotFound, "Not Found")
	}
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, `{"object":"error","message":%q,"type":"BadRequestError","param":null,"code":%d}`, msg, code)
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "read error")
		return
	}
	req, err := parse(r, body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	s.last = req
	s.mu.Unlock()
	reply := s.Default
	if s.Reply != nil {
		reply = s.Reply(req)
	} else if reply.Content == "" && reply.Reasoning == "" {
		reply.Content = "Hello!"
	}
	if reply.Style == "" {
		reply.Style = ReasoningContent
	}
	chat := req.Path == "/v1/chat/completions"
	if req.Stream {
		s.stream(w, r, req, reply, chat)
		return
	}
	// Non-streamed: generation time, then the whole answer.
	n := len(tokens(reply.Reasoning, s.tokenRunes())) + len(tokens(reply.Content, s.tokenRunes()))
	if d := s.tokenDelay(); d > 0 {
		select {
		case <-time.After(time.Duration(n) * d):
		case <-r.Context().Done():
			s.canceled.Add(1)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(completeBody(req, reply, chat, n))
}

func parse(r *http.Request, body []byte) (Request, error) {
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), BodySize: len(body), N: 1}
	if err := json.Unmarshal(body, &req.Raw); err != nil {
		return req, fmt.Errorf("invalid JSON: %w", err)
	}
	_ = json.Unmarshal(req.Raw["model"], &req.Model)
	_ = json.Unmarshal(req.Raw["stream"], &req.Stream)
	if raw, ok := req.Raw["n"]; ok {
		_ = json.Unmarshal(raw, &req.N)
	}
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	if raw, ok := req.Raw["stream_options"]; ok {
		_ = json.Unmarshal(raw, &so)
	}
	req.Usage = so.IncludeUsage
	if raw, ok := req.Raw["messages"]; ok {
		var msgs []struct {
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return req, fmt.Errorf("invalid messages: %w", err)
		}
		for _, m := range msgs {
			var s string
			if json.Unmarshal(m.Content, &s) == nil {
				req.Texts = append(req.Texts, s)
				continue
			}
			var parts []struct {
				Text string `json:"text"`
			}
			if json.Unmarshal(m.Content, &parts) == nil {
				for _, p := range parts {
					req.Texts = append(req.Texts, p.Text)
				}
			}
		}
	}
	if raw, ok := req.Raw["prompt"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			req.Texts = append(req.Texts, s)
		} else {
			var ss []string
			_ = json.Unmarshal(raw, &ss)
			req.Texts = append(req.Texts, ss...)
		}
	}
	return req, nil
}

func (s *Server) tokenRunes() int {
	if s.TokenRunes <= 0 {
		return 3
	}
	return s.TokenRunes
}

// tokens cuts text into pieces of n runes.
func tokens(text string, n int) []string {
	var out []string
	for text != "" {
		i, k := 0, 0
		for i < len(text) && k < n {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			k++
		}
		out = append(out, text[:i])
		text = text[i:]
	}
	return out
}

const created = 1738000000

func usage(completion int) map[string]any {
	return map[string]any{"prompt_tokens": 12, "total_tokens": 12 + completion, "completion_tokens": completion, "prompt_tokens_details": nil}
}

// contentWithThink is the content when the reasoning travels in it.
func contentWithThink(reply Reply) string {
	switch reply.Style {
	case ThinkTags:
		return "<think>\n" + reply.Reasoning + "\n</think>\n\n" + reply.Content
	case BareThink:
		return reply.Reasoning + "\n</think>\n\n" + reply.Content
	}
	return reply.Content
}

func completeBody(req Request, reply Reply, chat bool, n int) []byte {
	var choices []map[string]any
	for i := range req.N {
		if chat {
			msg := map[string]any{"role": "assistant", "content": contentWithThink(reply), "tool_calls": []any{}}
			switch reply.Style {
			case ReasoningContent:
				msg["reasoning_content"] = reply.Reasoning
			case ReasoningField:
				msg["reasoning"] = reply.Reasoning
			case ReasoningBoth:
				msg["reasoning_content"] = reply.Reasoning
				msg["reasoning"] = reply.Reasoning
			}
			choices = append(choices, map[string]any{"index": i, "message": msg, "logprobs": nil, "finish_reason": "stop", "stop_reason": nil})
		} else {
			choices = append(choices, map[string]any{"index": i, "text": contentWithThink(reply), "logprobs": nil, "finish_reason": "stop", "stop_reason": nil, "prompt_logprobs": nil})
		}
	}
	obj, id := "chat.completion", "chatcmpl-fake"
	if !chat {
		obj, id = "text_completion", "cmpl-fake"
	}
	b, _ := json.Marshal(map[string]any{"id": id, "object": obj, "created": created, "model": req.Model, "choices": choices, "usage": usage(n), "prompt_logprobs": nil})
	return b
}

// stream writes vLLM's SSE sequence.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req Request, reply Reply, chat bool) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := &splitWriter{w: w, rc: http.NewResponseController(w), max: s.SplitWrites, rng: rand.New(rand.NewPCG(s.Seed, 7))}
	obj, id := "chat.completion.chunk", "chatcmpl-fake"
	if !chat {
		obj, id = "text_completion", "cmpl-fake"
	}
	send := func(choices []map[string]any, extra map[string]any) bool {
		m := map[string]any{"id": id, "object": obj, "created": created, "model": req.Model, "choices": choices}
		for k, v := range extra {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return out.write("data: "+string(b)+"\n\n") == nil
	}
	each := func(f func(i int) map[string]any) []map[string]any {
		cs := make([]map[string]any, 0, req.N)
		for i := range req.N {
			cs = append(cs, f(i))
		}
		return cs
	}
	if chat {
		if !send(each(func(i int) map[string]any {
			return map[string]any{"index": i, "delta": map[string]any{"role": "assistant", "content": ""}, "logprobs": nil, "finish_reason": nil}
		}), nil) {
			return
		}
	}
	type piece struct {
		text      string
		reasoning bool
	}
	var pieces []piece
	tn := s.tokenRunes()
	switch reply.Style {
	case ReasoningContent, ReasoningField, ReasoningBoth:
		if chat {
			for _, t := range tokens(reply.Reasoning, tn) {
				pieces = append(pieces, piece{text: t, reasoning: true})
			}
			for _, t := range tokens(reply.Content, tn) {
				pieces = append(pieces, piece{text: t})
			}
			break
		}
		fallthrough
	default:
		for _, t := range tokens(contentWithThink(reply), tn) {
			pieces = append(pieces, piece{text: t})
		}
	}
	for _, p := range pieces {
		if d := s.tokenDelay(); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				s.canceled.Add(1)
				return
			}
		}
		ok := send(each(func(i int) map[string]any {
			if !chat {
				return map[string]any{"index": i, "text": p.text, "logprobs": nil, "finish_reason": nil, "stop_reason": nil}
			}
			d := map[string]any{}
			switch {
			case !p.reasoning:
				d["content"] = p.text
			case reply.Style == ReasoningField:
				d["reasoning"] = p.text
			case reply.Style == ReasoningBoth:
				d["reasoning_content"] = p.text
				d["reasoning"] = p.text
			default:
				d["reasoning_content"] = p.text
			}
			return map[string]any{"index": i, "delta": d, "logprobs": nil, "finish_reason": nil}
		}), nil)
		if !ok {
			return
		}
	}
	if !send(each(func(i int) map[string]any {
		if !chat {
			return map[string]any{"index": i, "text": "", "logprobs": nil, "finish_reason": "stop", "stop_reason": nil}
		}
		return map[string]any{"index": i, "delta": map[string]any{"content": ""}, "logprobs": nil, "finish_reason": "stop", "stop_reason": nil}
	}), nil) {
		return
	}
	if req.Usage {
		if !send([]map[string]any{}, map[string]any{"usage": usage(len(pieces))}) {
			return
		}
	}
	if out.write("data: [DONE]\n\n") == nil {
		if id := r.Header.Get("X-Request-Id"); id != "" {
			s.doneAt.Store(id, time.Now())
		}
	}
}

// splitWriter cuts what it writes into flushed pieces of random sizes.
type splitWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	max int
	rng *rand.Rand
}

func (s *splitWriter) write(str string) error {
	b := []byte(str)
	for len(b) > 0 {
		n := len(b)
		if s.max > 0 {
			n = min(1+s.rng.IntN(s.max), len(b))
		}
		if _, err := s.w.Write(b[:n]); err != nil {
			return err
		}
		if err := s.rc.Flush(); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Echo is a Reply function that answers with the last text it was given,
// so that a test can see what reached the model.
func Echo(style ReasoningStyle, reasoning string) func(Request) Reply {
	return func(req Request) Reply {
		last := ""
		if len(req.Texts) > 0 {
			last = req.Texts[len(req.Texts)-1]
		}
		return Reply{Reasoning: reasoning, Content: "You said: " + last, Style: style}
	}
}

// Lorem returns a text of about n tokens of tokenRunes runes each, for the
// benchmark: ordinary prose with no finding in it.
func Lorem(n, tokenRunes int) string {
	const words = "the model considers the question and writes a careful answer about cloud regions and instance sizes "
	var b strings.Builder
	for b.Len() < n*tokenRunes {
		b.WriteString(words)
	}
	return b.String()[:n*tokenRunes]
}
