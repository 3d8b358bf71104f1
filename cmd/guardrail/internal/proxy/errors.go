package proxy

import (
	"net/http"
	"strconv"
)

// apiError is OpenAI's error shape, which every OpenAI client parses:
// {"error": {"message", "type", "param", "code"}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// writeError answers with an OpenAI-shaped error and records it.
func (s *Server) writeError(w http.ResponseWriter, rec *record, status int, typ, code, msg string) {
	rec.status = status
	if rec.outcome == "" {
		switch status {
		case http.StatusUnauthorized:
			rec.outcome = outcomeUnauthorized
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed, http.StatusNotFound:
			rec.outcome = outcomeBadRequest
		default:
			rec.outcome = outcomeError
		}
	}
	if rec.errKind == "" {
		rec.errKind = code
	}
	body, _ := marshalJSON(apiError{Error: apiErrorBody{Message: msg, Type: typ, Code: code}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="guardrail"`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorEvent is the data of an error event inside a stream: the OpenAI
// clients end the stream with an error when a chunk has an "error" key.
func errorEvent(typ, code, msg string) []byte {
	b, _ := marshalJSON(apiError{Error: apiErrorBody{Message: msg, Type: typ, Code: code}})
	return b
}
