package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// Headers on intervened responses. They name policies and finding types,
// never the matched values.
const (
	headerAction = "X-Guardrail-Action"
	headerPolicy = "X-Guardrail-Policy"
)

// finishContentFilter is OpenAI's finish_reason for filtered content,
// which OpenAI clients already know and show.
const finishContentFilter = "content_filter"

// guardrailInfo is the extra top-level "guardrail" field of an intervened
// response or final stream chunk. OpenAI clients ignore unknown fields.
type guardrailInfo struct {
	Action   guard.Outcome `json:"action"`
	Source   guard.Source  `json:"source"`
	Policies []string      `json:"policies"`
}

func (rec *record) info() guardrailInfo {
	p := rec.policies()
	if p == nil {
		p = []string{}
	}
	return guardrailInfo{Action: guard.OutcomeIntervened, Source: rec.source(), Policies: p}
}

// setGuardrailHeaders sets the X-Guardrail-* headers when the guardrail
// intervened.
func setGuardrailHeaders(h http.Header, rec *record) {
	if !rec.intervened() {
		return
	}
	h.Set(headerAction, string(guard.OutcomeIntervened))
	h.Set(headerPolicy, strings.Join(rec.policies(), ","))
}

// message is a chat message or delta carrying only text.
type message struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

// blockedChoice is a choice replaced by the blocked message.
type blockedChoice struct {
	Index        int             `json:"index"`
	Message      *message        `json:"message,omitempty"` // chat
	Delta        *message        `json:"delta,omitempty"`   // chat stream
	Text         *string         `json:"text,omitempty"`    // completions
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// blockedBody is a whole chat.completion / text_completion (or chunk) that
// carries the blocked message.
type blockedBody struct {
	ID        string          `json:"id"`
	Object    string          `json:"object"`
	Created   int64           `json:"created"`
	Model     string          `json:"model"`
	Choices   []blockedChoice `json:"choices"`
	Usage     json.RawMessage `json:"usage,omitempty"`
	Guardrail guardrailInfo   `json:"guardrail"`
}

// head identifies the completion a blocked body stands for: the upstream's
// id, created and model when there was an upstream answer, made-up ones
// for a blocked input.
type head struct {
	id      string
	created int64
	model   string
}

func (s *Server) inputHead(rec *record, ep endpoint) head {
	prefix := "chatcmpl-guardrail-"
	if !ep.chat {
		prefix = "cmpl-guardrail-"
	}
	return head{id: prefix + rec.requestID, created: s.now().Unix(), model: rec.model}
}

// blockedChoices builds one blocked choice per index. text is the message
// for each index (it differs in streams where some text was already sent).
func blockedChoices(ep endpoint, stream bool, indexes []int, text func(int) string) []blockedChoice {
	if len(indexes) == 0 {
		indexes = []int{0}
	}
	out := make([]blockedChoice, 0, len(indexes))
	for _, i := range indexes {
		c := blockedChoice{Index: i, Logprobs: jsonNull, FinishReason: finishContentFilter}
		t := text(i)
		switch {
		case !ep.chat:
			c.Text = &t
		case stream:
			c.Delta = &message{Content: t}
		default:
			c.Message = &message{Role: "assistant", Content: t}
		}
		out = append(out, c)
	}
	return out
}

// writeBlockedInput answers a blocked request without calling the model:
// HTTP 200 with a completion (or a one-chunk stream, when the client asked
// for a stream) carrying the blocked input message.
func (s *Server) writeBlockedInput(w http.ResponseWriter, rec *record, ep endpoint, stream bool) {
	msg := s.checker.blockedMessage(guard.Input)
	h := s.inputHead(rec, ep)
	setGuardrailHeaders(w.Header(), rec)
	rec.status = http.StatusOK
	body := blockedBody{
		ID: h.id, Created: h.created, Model: h.model, Guardrail: rec.info(),
		Choices: blockedChoices(ep, stream, nil, func(int) string { return msg }),
	}
	if !stream {
		body.Object = ep.object
		body.Usage = json.RawMessage(`{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}`)
		s.writeJSON(w, body)
		return
	}
	body.Object = ep.chunkObject
	if ep.chat {
		body.Choices[0].Delta.Role = "assistant"
	}
	rec.ttfb = s.now().Sub(rec.start)
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	sw := newEventWriter(w)
	b, _ := marshalJSON(body)
	if err := sw.WriteData(b); err != nil {
		rec.outcome = outcomeClientGone
		return
	}
	_ = sw.WriteDone()
}

// writeJSON writes a 200 JSON answer.
func (s *Server) writeJSON(w http.ResponseWriter, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		// Only our own types get here; they always encode.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	writeBody(w, b)
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
