package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// endpoint describes the two checked routes, which differ in where the
// text lives (messages/message/delta vs prompt/text) and in object names.
type endpoint struct {
	route       string
	chat        bool
	object      string // non-streamed response object
	chunkObject string // streamed chunk object
}

var (
	chatEndpoint       = endpoint{route: routeChat, chat: true, object: "chat.completion", chunkObject: "chat.completion.chunk"}
	completionEndpoint = endpoint{route: routeCompletions, object: "text_completion", chunkObject: "text_completion"}
)

// errBadRequest marks a client error; its message is safe to return.
type errBadRequest struct{ msg string }

func (e *errBadRequest) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &errBadRequest{msg: fmt.Sprintf(format, args...)}
}

// request is a parsed completion request. Fields is the whole body as raw
// JSON so that every field the gateway does not look at (sampling
// parameters, vLLM extensions such as chat_template_kwargs, tools...)
// passes through byte for byte.
type request struct {
	fields map[string]json.RawMessage
	model  string
	stream bool
	// slots are the texts the model will read, with a way to write a
	// masked version back.
	slots []slot
}

// slot is one text of the request and how to replace it (set is nil
// for slotScanOnly).
type slot struct {
	text string
	kind slotKind
	set  func(string)
}

// readBody reads the request body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	return b, nil
}

// parseRequest decodes a chat or completions request and finds its texts.
func parseRequest(body []byte, ep endpoint) (*request, error) {
	fields, err := decodeObject(body)
	if err != nil {
		return nil, badRequest("the request body must be a JSON object")
	}
	req := &request{fields: fields}
	if raw, ok := req.fields["model"]; ok {
		req.model, _ = rawString(raw)
	}
	if raw, ok := req.fields["stream"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.stream); err != nil {
			return nil, badRequest("stream must be a boolean")
		}
	}
	// vLLM accepts prompt embeddings (base64 tensors) in place of text: the
	// gateway cannot read them, so they would be a way around the input
	// check.
	if raw, ok := req.fields["prompt_embeds"]; ok && !isNull(raw) {
		return nil, badRequest("prompt_embeds cannot be checked by the guardrail; send the prompt as text")
	}
	if ep.chat {
		err = req.chatSlots()
	} else {
		err = req.promptSlots()
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

// chatSlots collects the content of every message, whatever its role: the
// model reads all of them, and a prompt injection pasted into an earlier
// assistant or tool message is still a prompt injection. Content is a
// string or an array of parts, of which the text parts are checked.
func (req *request) chatSlots() error {
	raw, ok := req.fields["messages"]
	if !ok {
		return badRequest("messages is required")
	}
	msgs, err := splitObjects(raw)
	if err != nil {
		return badRequest("messages must be an array of objects")
	}
	commit := func() {
		b, _ := marshalJSON(msgs)
		req.fields["messages"] = b
	}
	for i := range msgs {
		if err := req.toolCallSlots(msgs[i], fmt.Sprintf("messages[%d]", i), commit); err != nil {
			return err
		}
		content, ok := msgs[i]["content"]
		if !ok || isNull(content) {
			continue
		}
		switch firstByte(content) {
		case '"':
			s, _ := rawString(content)
			req.slots = append(req.slots, slot{text: s, set: func(t string) {
				msgs[i]["content"] = jsonString(t)
				commit()
			}})
		case '[':
			parts, err := splitObjects(content)
			if err != nil {
				return badRequest("messages[%d].content must be a string or an array of content parts", i)
			}
			for j := range parts {
				text, ok := parts[j]["text"]
				if !ok {
					continue // image_url and other non-text parts
				}
				s, ok := rawString(text)
				if !ok {
					return badRequest("messages[%d].content[%d].text must be a string", i, j)
				}
				req.slots = append(req.slots, slot{text: s, set: func(t string) {
					parts[j]["text"] = jsonString(t)
					msgs[i]["content"], _ = marshalJSON(parts)
					commit()
				}})
			}
		default:
			return badRequest("messages[%d].content must be a string or an array of content parts", i)
		}
	}
	return req.toolSlots()
}

// promptSlots collects the prompt (a string or an array of strings) and
// the suffix. Token-id prompts are refused: the gateway cannot read them,
// so they would be a way around the input check.
func (req *request) promptSlots() error {
	raw, ok := req.fields["prompt"]
	if !ok || isNull(raw) {
		return badRequest("prompt is required")
	}
	switch firstByte(raw) {
	case '"':
		s, _ := rawString(raw)
		req.slots = append(req.slots, slot{text: s, set: func(t string) { req.fields["prompt"] = jsonString(t) }})
	case '[':
		prompts, err := splitArray(raw)
		if err != nil {
			return badRequest("prompt must be a string or an array of strings")
		}
		strs := make([]string, len(prompts))
		for i, p := range prompts {
			s, ok := rawString(p)
			if !ok {
				return badRequest("prompt must be text: token-id prompts cannot be checked by the guardrail")
			}
			strs[i] = s
		}
		for i := range strs {
			req.slots = append(req.slots, slot{text: strs[i], set: func(t string) {
				strs[i] = t
				req.fields["prompt"], _ = marshalJSON(strs)
			}})
		}
	default:
		return badRequest("prompt must be a string or an array of strings")
	}
	if raw, ok := req.fields["suffix"]; ok && !isNull(raw) {
		s, ok := rawString(raw)
		if !ok {
			return badRequest("suffix must be a string")
		}
		req.slots = append(req.slots, slot{text: s, set: func(t string) { req.fields["suffix"] = jsonString(t) }})
	}
	return nil
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// inputResult is what the input check decided.
type inputResult struct {
	blocked bool
	body    []byte // the body to forward: the original, or rewritten with masks
}

// checkInput scans every text of the request. A BLOCK anywhere blocks the
// request; ANONYMIZE findings are masked in place and the body rewritten,
// every other field kept. It returns errCheck when the engine fails.
func (s *Server) checkInput(req *request, body []byte, rec *record) (inputResult, error) {
	start := time.Now()
	defer func() {
		s.metrics.checkDuration.WithLabelValues(string(guard.Input)).Observe(time.Since(start).Seconds())
	}()
	changed := false
	for _, sl := range req.slots {
		if sl.text == "" {
			continue
		}
		fs, err := s.checker.scan(guard.Input, sl.text)
		if err != nil {
			return inputResult{}, err
		}
		v := judge(fs)
		rec.add(guard.Input, fs, !v.block)
		if v.block {
			rec.blocked = guard.Input
			return inputResult{blocked: true}, nil
		}
		if v.anonymize && sl.kind != slotScanOnly {
			mask := s.checker.mask
			if sl.kind == slotJSON {
				mask = s.checker.maskJSON
			}
			masked, err := mask(sl.text, fs)
			if err != nil {
				return inputResult{}, err
			}
			sl.set(masked)
			changed = true
		}
	}
	if !changed {
		return inputResult{body: body}, nil
	}
	b, err := marshalJSON(req.fields)
	if err != nil {
		return inputResult{}, fmt.Errorf("%w: re-encoding the request: %v", errCheck, err)
	}
	return inputResult{body: b}, nil
}
