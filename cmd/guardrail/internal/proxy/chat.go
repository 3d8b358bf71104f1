package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// postBody answers everything a POST route refuses before reading a
// request (wrong method, missing or wrong key, a body too large or
// unreadable) and otherwise returns the body.
func (s *Server) postBody(w http.ResponseWriter, r *http.Request, rec *record) ([]byte, bool) {
	if r.Method != http.MethodPost {
		s.writeError(w, rec, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use POST")
		return nil, false
	}
	if !s.auth.check(r) {
		s.writeError(w, rec, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "missing or invalid API key")
		return nil, false
	}
	body, err := readBody(w, r, s.opts.MaxBodyBytes)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, rec, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
				fmt.Sprintf("the request body is larger than %d bytes", s.opts.MaxBodyBytes))
			return nil, false
		}
		s.writeError(w, rec, http.StatusBadRequest, "invalid_request_error", "invalid_body", "could not read the request body")
		return nil, false
	}
	return body, true
}

// serveChecked handles POST /v1/chat/completions and /v1/completions:
// check the input, call vLLM, check the output.
func (s *Server) serveChecked(w http.ResponseWriter, r *http.Request, rec *record, ep endpoint) {
	body, ok := s.postBody(w, r, rec)
	if !ok {
		return
	}
	req, err := parseRequest(body, ep)
	if err != nil {
		s.writeError(w, rec, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return
	}
	rec.setModel(req.model)
	rec.stream = req.stream

	in, err := s.checkInput(req, body, rec)
	switch {
	case err != nil && s.opts.FailMode == FailClosed:
		s.writeError(w, rec, http.StatusServiceUnavailable, "guardrail_error", "guardrail_unavailable", "the guardrail could not check the request")
		return
	case err != nil:
		// Fail open: the original prompt goes to the model unchecked.
		rec.failOpen = append(rec.failOpen, guard.Input)
		in = inputResult{body: body}
	case in.blocked:
		s.writeBlockedInput(w, rec, ep, req.stream)
		return
	}
	// The model step, for what the rules cannot judge.
	rec.prompt = req.promptText()
	switch blocked, err := s.classify(r.Context(), guard.Input, rec.prompt, "", rec); {
	case errors.Is(err, errClientGone):
		rec.outcome, rec.status = outcomeClientGone, 499
		return
	case err != nil:
		s.writeError(w, rec, http.StatusServiceUnavailable, "guardrail_error", "guardrail_unavailable", "the guardrail could not check the request")
		return
	case blocked:
		s.writeBlockedInput(w, rec, ep, req.stream)
		return
	}

	accept := "application/json"
	if req.stream {
		accept = "text/event-stream"
	}
	resp, err := s.forward(r.Context(), http.MethodPost, ep.route, "", in.body, rec, accept)
	if err != nil {
		s.upstreamFailed(w, r, rec, "connect", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.passUpstreamError(w, resp, rec)
		return
	}
	if isEventStream(resp.Header.Get("Content-Type")) {
		s.serveStream(w, r, resp, rec, ep)
		return
	}
	s.serveComplete(w, r, resp, rec, ep)
}

func isEventStream(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// serveComplete checks a non-streamed answer and writes it.
func (s *Server) serveComplete(w http.ResponseWriter, r *http.Request, resp *http.Response, rec *record, ep endpoint) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBytes+1))
	if err != nil {
		s.upstreamFailed(w, r, rec, "read", err)
		return
	}
	if int64(len(body)) > s.opts.MaxResponseBytes {
		s.metrics.upstreamErrs.WithLabelValues(rec.route, "too_large").Inc()
		s.writeError(w, rec, http.StatusBadGateway, "upstream_error", "upstream_response_too_large", "the model's answer is too large to check")
		return
	}
	out, err := s.filterResponse(r.Context(), body, ep, rec)
	if err != nil {
		if s.opts.FailMode == FailOpen && !errors.Is(err, errClassifier) {
			rec.failOpen = append(rec.failOpen, guard.Output)
			out = body
		} else {
			status, code, typ, msg := http.StatusServiceUnavailable, "guardrail_unavailable", "guardrail_error", "the guardrail could not check the answer"
			if errors.Is(err, errUnparsable) {
				s.metrics.upstreamErrs.WithLabelValues(rec.route, "parse").Inc()
				status, code, typ, msg = http.StatusBadGateway, "upstream_invalid_response", "upstream_error", "the model server's answer could not be read"
			}
			s.writeError(w, rec, status, typ, code, msg)
			return
		}
	}
	setGuardrailHeaders(w.Header(), rec)
	rec.status = http.StatusOK
	writeBody(w, out)
}

// errUnparsable marks an upstream answer that is not the JSON we expect:
// it cannot be checked, so the fail mode decides.
var errUnparsable = errors.New("unparsable upstream answer")

// filterResponse checks and masks a chat.completion or text_completion
// body. Fields it does not touch keep their values. It returns the body
// unchanged when nothing was found, a rewritten one when masked or
// stripped, and a blocked completion when any BLOCK finding occurred.
func (s *Server) filterResponse(ctx context.Context, body []byte, ep endpoint, rec *record) ([]byte, error) {
	start := time.Now()
	defer func() {
		s.metrics.checkDuration.WithLabelValues(string(guard.Output)).Observe(time.Since(start).Seconds())
	}()

	resp, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnparsable, err)
	}
	var choices []map[string]json.RawMessage
	if raw, ok := resp["choices"]; ok && !isNull(raw) {
		if choices, err = splitObjects(raw); err != nil {
			return nil, fmt.Errorf("%w: choices: %v", errUnparsable, err)
		}
	}
	changed, blocked := false, false
	indexes := make([]int, 0, len(choices))
	for i, ch := range choices {
		idx := i
		if raw, ok := ch["index"]; ok {
			_ = json.Unmarshal(raw, &idx)
		}
		indexes = append(indexes, idx)
		var c, b bool
		var err error
		if ep.chat {
			c, b, err = s.filterMessage(ch, rec)
		} else {
			c, b, err = s.filterText(ch, "text", rec)
		}
		if err != nil {
			return nil, err
		}
		changed = changed || c
		blocked = blocked || b
	}
	if !blocked {
		// The model step judges each answer as the client would get it.
		for _, ch := range choices {
			b, err := s.classify(ctx, guard.Output, rec.prompt, answerText(ch, ep), rec)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errClassifier, err)
			}
			if b {
				blocked = true
				break
			}
		}
	}
	if blocked {
		rec.blocked = guard.Output
		return s.blockedOutputBody(resp, ep, indexes, rec)
	}
	if !changed && !rec.intervened() {
		return body, nil
	}
	if changed {
		b, err := marshalJSON(choices)
		if err != nil {
			return nil, fmt.Errorf("%w: re-encoding choices: %v", errCheck, err)
		}
		resp["choices"] = b
	}
	if rec.intervened() {
		resp["guardrail"], _ = marshalJSON(rec.info())
	}
	out, err := marshalJSON(resp)
	if err != nil {
		return nil, fmt.Errorf("%w: re-encoding the answer: %v", errCheck, err)
	}
	return out, nil
}

// filterMessage checks one chat choice's message: its reasoning fields
// and its content (with any <think> block).
func (s *Server) filterMessage(ch map[string]json.RawMessage, rec *record) (changed, blocked bool, err error) {
	raw, ok := ch["message"]
	if !ok || isNull(raw) {
		return false, false, nil
	}
	msg, err := splitObject(raw)
	if err != nil {
		return false, false, fmt.Errorf("%w: message: %v", errUnparsable, err)
	}
	// Reasoning fields: stripped, or checked (once when two fields hold the
	// same text, as some vLLM versions send).
	var present []string
	for _, f := range reasoningFields {
		if v, ok := msg[f]; ok && !isNull(v) {
			present = append(present, f)
		}
	}
	switch {
	case len(present) == 0:
	case s.opts.StripReasoning:
		for _, f := range present {
			delete(msg, f)
		}
		changed = true
	case !s.opts.SkipReasoningScan:
		seen := map[string]string{} // original text -> masked
		for _, f := range present {
			text, ok := rawString(msg[f])
			if !ok {
				return false, false, fmt.Errorf("%w: %s is not a string", errUnparsable, f)
			}
			masked, done := seen[text]
			if !done {
				var b bool
				masked, b, err = s.checkText(text, rec)
				if err != nil {
					return false, false, err
				}
				if b {
					return false, true, nil
				}
				seen[text] = masked
			}
			if masked != text {
				msg[f] = jsonString(masked)
				changed = true
			}
		}
	}
	if raw, ok := msg["content"]; ok && !isNull(raw) {
		text, ok := rawString(raw)
		if !ok {
			return false, false, fmt.Errorf("%w: content is not a string", errUnparsable)
		}
		orig := text
		if s.opts.StripReasoning {
			text, _ = stripThink(text)
		}
		masked, b, err := s.checkText(text, rec)
		if err != nil {
			return false, false, err
		}
		if b {
			return false, true, nil
		}
		if masked != orig {
			msg["content"] = jsonString(masked)
			changed = true
		}
	}
	tc, b, err := s.filterToolCalls(msg, rec)
	if err != nil || b {
		return false, b, err
	}
	changed = changed || tc
	if changed {
		ch["message"], err = marshalJSON(msg)
		if err != nil {
			return false, false, fmt.Errorf("%w: re-encoding message: %v", errCheck, err)
		}
		dropLogprobs(ch)
	}
	return changed, false, nil
}

// errClassifier marks a failure of the model step, which has its own fail
// mode (already applied when this is returned).
var errClassifier = errors.New("guard model check failed")

// answerText is what a client reads of a (filtered) choice: its reasoning,
// when it is sent, and its content or text.
func answerText(ch map[string]json.RawMessage, ep endpoint) string {
	if !ep.chat {
		t, _ := rawString(ch["text"])
		return t
	}
	msg, err := splitObject(ch["message"])
	if err != nil {
		return ""
	}
	var parts []string
	for _, f := range append(slices.Clone(reasoningFields), "content") {
		if t, ok := rawString(msg[f]); ok && t != "" && (len(parts) == 0 || parts[len(parts)-1] != t) {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "\n\n")
}

func errUnparsablef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUnparsable, fmt.Sprintf(format, args...))
}

// filterText checks a completions choice's text field.
func (s *Server) filterText(ch map[string]json.RawMessage, field string, rec *record) (changed, blocked bool, err error) {
	raw, ok := ch[field]
	if !ok || isNull(raw) {
		return false, false, nil
	}
	text, ok := rawString(raw)
	if !ok {
		return false, false, fmt.Errorf("%w: %s is not a string", errUnparsable, field)
	}
	orig := text
	if s.opts.StripReasoning {
		text, _ = stripThink(text)
	}
	masked, b, err := s.checkText(text, rec)
	if err != nil || b {
		return false, b, err
	}
	if masked == orig {
		return false, false, nil
	}
	ch[field] = jsonString(masked)
	dropLogprobs(ch)
	return true, false, nil
}

// dropLogprobs removes a changed choice's logprobs: they spell out the
// original tokens, masked values included.
func dropLogprobs(ch map[string]json.RawMessage) {
	if raw, ok := ch["logprobs"]; ok && !isNull(raw) {
		ch["logprobs"] = jsonNull
	}
}

// checkText scans one output text, records the findings and returns it
// masked, or blocked.
func (s *Server) checkText(text string, rec *record) (string, bool, error) {
	return s.checkOutput(text, slotText, rec)
}

// checkOutput is checkText for a text of the given kind: JSON text stays
// JSON when masked, scan-only text is never rewritten.
func (s *Server) checkOutput(text string, kind slotKind, rec *record) (string, bool, error) {
	if text == "" {
		return text, false, nil
	}
	fs, err := s.checker.scan(guard.Output, text)
	if err != nil {
		return "", false, err
	}
	v := judge(fs)
	rec.add(guard.Output, fs, !v.block)
	if v.block {
		return "", true, nil
	}
	if !v.anonymize || kind == slotScanOnly {
		return text, false, nil
	}
	mask := s.checker.mask
	if kind == slotJSON {
		mask = s.checker.maskJSON
	}
	masked, err := mask(text, fs)
	if err != nil {
		return "", false, err
	}
	return masked, false, nil
}

// blockedOutputBody replaces every choice of an answer with the blocked
// output message, keeping the upstream's id, created, model and usage (the
// tokens were generated and are billed).
func (s *Server) blockedOutputBody(resp map[string]json.RawMessage, ep endpoint, indexes []int, rec *record) ([]byte, error) {
	h := head{}
	h.id, _ = rawString(resp["id"])
	h.model, _ = rawString(resp["model"])
	if raw, ok := resp["created"]; ok {
		_ = json.Unmarshal(raw, &h.created)
	}
	msg := s.checker.blockedMessage(guard.Output)
	body := blockedBody{
		ID: h.id, Object: ep.object, Created: h.created, Model: h.model,
		Choices:   blockedChoices(ep, false, indexes, func(int) string { return msg }),
		Guardrail: rec.info(),
	}
	if u, ok := resp["usage"]; ok && !isNull(u) {
		body.Usage = u
	}
	b, err := marshalJSON(body)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the blocked answer: %v", errCheck, err)
	}
	return b, nil
}
