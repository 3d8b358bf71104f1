package proxy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// Tool calls carry text the model reads (the arguments of earlier calls,
// the descriptions of the tools) and text it writes (the arguments of its
// calls), so they are checked like messages in both directions:
//
//   - requests: the function name and arguments of every tool call in the
//     messages (an assistant turn replayed from history), and the name,
//     description and parameter schema of every tool in "tools" (a prompt
//     injection can hide in a tool description);
//   - answers: the function name and arguments of every tool call,
//     streamed or not.
//
// A BLOCK anywhere blocks as in a message. ANONYMIZE masks the arguments
// and descriptions; names and parameter schemas are identifiers that a
// placeholder would break, so findings there are only reported. Arguments
// are JSON: a placeholder that replaces a value outside a JSON string (a
// phone number written as a number) goes in as a JSON string, so that the
// arguments stay JSON.

// slotKind says how a request text may be rewritten.
type slotKind uint8

const (
	slotText     slotKind = iota // masked in place
	slotJSON                     // JSON text: masked keeping it JSON
	slotScanOnly                 // checked, never rewritten
)

// jsonLex tracks whether a position of a JSON text is inside a string.
type jsonLex struct {
	inString bool
	escaped  bool
}

func (l *jsonLex) advance(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case l.inString && l.escaped:
			l.escaped = false
		case l.inString && c == '\\':
			l.escaped = true
		case c == '"':
			l.inString = !l.inString
		}
	}
}

// maskJSONFrom replaces the ANONYMIZE findings of text, a part of a JSON
// text that starts in state l, with {TYPE} inside strings and "{TYPE}"
// outside them, and advances l over text.
func maskJSONFrom(l *jsonLex, text string, fs []guard.Finding) string {
	if !slices.IsSortedFunc(fs, byStart) {
		fs = slices.Clone(fs)
		slices.SortStableFunc(fs, byStart)
	}
	var b strings.Builder
	last := 0
	for _, f := range fs {
		if f.Action != guard.ActionAnonymize || f.Start < last || f.End <= f.Start || f.End > len(text) {
			continue
		}
		l.advance(text[last:f.Start])
		b.WriteString(text[last:f.Start])
		if l.inString {
			b.WriteString("{" + f.Type + "}")
		} else {
			b.WriteString(`"{` + f.Type + `}"`)
		}
		l.advance(text[f.Start:f.End])
		last = f.End
	}
	l.advance(text[last:])
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// maskJSON masks a complete JSON text; when the text is not JSON to begin
// with, it is masked like any text.
func (s safeChecker) maskJSON(text string, fs []guard.Finding) (string, error) {
	if !json.Valid([]byte(text)) {
		return s.mask(text, fs)
	}
	var l jsonLex
	return maskJSONFrom(&l, text, fs), nil
}

// toolCallSlots adds the function name and arguments of each tool call in
// a message; commit writes the message back.
func (req *request) toolCallSlots(msg map[string]json.RawMessage, path string, commit func()) error {
	raw, ok := msg["tool_calls"]
	if !ok || isNull(raw) {
		return nil
	}
	calls, err := splitObjects(raw)
	if err != nil {
		return badRequest("%s.tool_calls must be an array of objects", path)
	}
	for j := range calls {
		fraw, ok := calls[j]["function"]
		if !ok || isNull(fraw) {
			continue
		}
		fn, err := splitObject(fraw)
		if err != nil {
			return badRequest("%s.tool_calls[%d].function must be an object", path, j)
		}
		where := fmt.Sprintf("%s.tool_calls[%d].function", path, j)
		if name, ok, err := optionalString(fn, "name", where); err != nil {
			return err
		} else if ok {
			req.slots = append(req.slots, slot{text: name, kind: slotScanOnly})
		}
		if args, ok, err := optionalString(fn, "arguments", where); err != nil {
			return err
		} else if ok {
			req.slots = append(req.slots, slot{text: args, kind: slotJSON, set: func(t string) {
				fn["arguments"] = jsonString(t)
				calls[j]["function"], _ = marshalJSON(fn)
				msg["tool_calls"], _ = marshalJSON(calls)
				commit()
			}})
		}
	}
	return nil
}

// optionalString reads obj[key] when it is there and not null: a string, or
// a bad request naming where.key.
func optionalString(obj map[string]json.RawMessage, key, where string) (string, bool, error) {
	raw, ok := obj[key]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	s, ok := rawString(raw)
	if !ok {
		return "", false, badRequest("%s.%s must be a string", where, key)
	}
	return s, true, nil
}

// toolSlots adds the name, description and parameter schema of each tool
// the request offers the model.
func (req *request) toolSlots() error {
	raw, ok := req.fields["tools"]
	if !ok || isNull(raw) {
		return nil
	}
	tools, err := splitObjects(raw)
	if err != nil {
		return badRequest("tools must be an array of objects")
	}
	for i := range tools {
		fraw, ok := tools[i]["function"]
		if !ok || isNull(fraw) {
			continue
		}
		fn, err := splitObject(fraw)
		if err != nil {
			return badRequest("tools[%d].function must be an object", i)
		}
		where := fmt.Sprintf("tools[%d].function", i)
		if name, ok, err := optionalString(fn, "name", where); err != nil {
			return err
		} else if ok {
			req.slots = append(req.slots, slot{text: name, kind: slotScanOnly})
		}
		if desc, ok, err := optionalString(fn, "description", where); err != nil {
			return err
		} else if ok {
			req.slots = append(req.slots, slot{text: desc, set: func(t string) {
				fn["description"] = jsonString(t)
				tools[i]["function"], _ = marshalJSON(fn)
				req.fields["tools"], _ = marshalJSON(tools)
			}})
		}
		if p, ok := fn["parameters"]; ok && !isNull(p) {
			// The schema's descriptions are read by the model too.
			req.slots = append(req.slots, slot{text: string(p), kind: slotScanOnly})
		}
	}
	return nil
}

// filterToolCalls checks the tool calls of a non-streamed answer's
// message: names are checked, arguments checked and masked.
func (s *Server) filterToolCalls(msg map[string]json.RawMessage, rec *record) (changed, blocked bool, err error) {
	raw, ok := msg["tool_calls"]
	if !ok || isNull(raw) {
		return false, false, nil
	}
	calls, err := splitObjects(raw)
	if err != nil {
		return false, false, errUnparsablef("tool_calls: %v", err)
	}
	for j := range calls {
		fraw, ok := calls[j]["function"]
		if !ok || isNull(fraw) {
			continue
		}
		fn, err := splitObject(fraw)
		if err != nil {
			return false, false, errUnparsablef("tool_calls[%d].function: %v", j, err)
		}
		if n, ok := fn["name"]; ok && !isNull(n) {
			name, ok := rawString(n)
			if !ok {
				return false, false, errUnparsablef("tool_calls[%d].function.name is not a string", j)
			}
			if _, b, err := s.checkOutput(name, slotScanOnly, rec); err != nil || b {
				return false, b, err
			}
		}
		if a, ok := fn["arguments"]; ok && !isNull(a) {
			args, ok := rawString(a)
			if !ok {
				return false, false, errUnparsablef("tool_calls[%d].function.arguments is not a string", j)
			}
			masked, b, err := s.checkOutput(args, slotJSON, rec)
			if err != nil || b {
				return false, b, err
			}
			if masked != args {
				fn["arguments"] = jsonString(masked)
				if calls[j]["function"], err = marshalJSON(fn); err != nil {
					return false, false, err
				}
				changed = true
			}
		}
	}
	if changed {
		if msg["tool_calls"], err = marshalJSON(calls); err != nil {
			return false, false, err
		}
	}
	return changed, false, nil
}
