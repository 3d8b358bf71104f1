package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// vLLM's OpenAI routes that /invocations dispatches to.
const (
	routeChat        = "/v1/chat/completions"
	routeCompletions = "/v1/completions"
)

// errorBody is OpenAI's error shape, the one the gateway and vLLM answer
// with, so that a caller handles every error of the endpoint the same way.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	var e errorBody
	e.Error.Message, e.Error.Type, e.Error.Code = msg, typ, code
	b, _ := json.Marshal(e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// errBadBody is a body /invocations cannot route; its message is for the
// caller.
var errBadBody = errors.New("bad body")

// classify decides where an /invocations body goes: an OpenAI chat
// completions body has "messages", a completions body has "prompt". A body
// without "model" gets the served model's name, since an endpoint serves
// one model and a SageMaker caller should not need to know what vLLM
// calls it; every other byte is left as it is.
func classify(body []byte, servedModel string) (route string, out []byte, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return "", nil, fmt.Errorf(`%w: the body must be a JSON object: an OpenAI chat completions request (with "messages") or a completions request (with "prompt")`, errBadBody)
	}
	_, chat := fields["messages"]
	_, completion := fields["prompt"]
	switch {
	case chat && completion:
		return "", nil, fmt.Errorf(`%w: the body has both "messages" and "prompt": send a chat completions request (messages) or a completions request (prompt), not both`, errBadBody)
	case chat:
		route = routeChat
	case completion:
		route = routeCompletions
	default:
		return "", nil, fmt.Errorf(`%w: the body has neither "messages" (chat completions) nor "prompt" (completions)`, errBadBody)
	}
	if m, ok := fields["model"]; ok && !bytes.Equal(bytes.TrimSpace(m), []byte("null")) {
		return route, body, nil
	}
	name, err := json.Marshal(servedModel)
	if err != nil {
		return "", nil, fmt.Errorf("encoding the model name: %w", err)
	}
	fields["model"] = name
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <think> and the like as they came
	if err := enc.Encode(fields); err != nil {
		return "", nil, fmt.Errorf("re-encoding the body: %w", err)
	}
	return route, bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
