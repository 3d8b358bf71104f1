package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"unicode/utf8"
)

// The gateway decodes upstream JSON into map[string]json.RawMessage, so
// that fields it does not know pass through, and re-encodes what it
// changed. Re-encoding goes through the fast paths below for the shapes it
// builds per streamed chunk (objects of raw values, lists of them,
// strings): encoding/json would re-validate and re-compact every raw value
// on every chunk, which was most of the per-chunk cost. Raw values here
// always come from a successful json.Unmarshal or from this file, so they
// are valid JSON.

// marshalJSON encodes v without HTML escaping: DeepSeek-R1's <think> tags
// and any <, > or & in answers stay as vLLM wrote them.
func marshalJSON(v any) ([]byte, error) {
	switch v := v.(type) {
	case map[string]json.RawMessage:
		return appendObject(nil, v), nil
	case []map[string]json.RawMessage:
		b := []byte{'['}
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendObject(b, m)
		}
		return append(b, ']'), nil
	case string:
		return appendString(nil, v), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// appendObject encodes m with its keys sorted, as encoding/json does.
func appendObject(b []byte, m map[string]json.RawMessage) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		v := m[k]
		if len(v) == 0 {
			v = jsonNull
		}
		b = append(b, v...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString encodes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (as encoding/json
// does), U+2028 and U+2029 escaped so the output is also valid JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonString encodes s as a JSON string value.
func jsonString(s string) json.RawMessage { return appendString(nil, s) }

var jsonNull = json.RawMessage("null")

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, jsonNull)
}

// rawString decodes raw as a JSON string; ok is false for anything else.
// Strings without escapes, the common case for streamed tokens, are
// returned without going through encoding/json.
func rawString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// errNotObject is returned by the fast decoders for input of another shape.
var errNotObject = errors.New("not a JSON object")

// decodeObject splits a JSON object into its members, like
// json.Unmarshal into map[string]json.RawMessage (the last of duplicate
// keys wins) but without reflection and without copying the values: they
// alias raw. It validates raw first, once; nested values it returns are
// therefore valid and can be split with splitObject without validating
// them again.
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(raw) {
		return nil, errors.New("invalid JSON")
	}
	return splitObject(raw)
}

// splitObject is decodeObject for input known to be valid JSON.
func splitObject(raw []byte) (map[string]json.RawMessage, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, errNotObject
	}
	m := make(map[string]json.RawMessage, 8)
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return m, nil
	}
	for i < len(raw) {
		end := skipValue(raw, i) // the key, a string
		key, ok := rawString(raw[i:end])
		if !ok {
			return nil, errNotObject
		}
		i = skipSpace(raw, end)
		i = skipSpace(raw, i+1) // ':'
		end = skipValue(raw, i)
		m[key] = raw[i:end:end]
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] == '}' {
			break
		}
		i = skipSpace(raw, i+1) // ','
	}
	return m, nil
}

// splitArray splits a valid JSON array into its elements.
func splitArray(raw []byte) ([]json.RawMessage, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, errors.New("not a JSON array")
	}
	var out []json.RawMessage
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return out, nil
	}
	for i < len(raw) {
		end := skipValue(raw, i)
		out = append(out, raw[i:end:end])
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] == ']' {
			break
		}
		i = skipSpace(raw, i+1)
	}
	return out, nil
}

// splitObjects splits a valid JSON array of objects.
func splitObjects(raw []byte) ([]map[string]json.RawMessage, error) {
	elems, err := splitArray(raw)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]json.RawMessage, len(elems))
	for i, e := range elems {
		if out[i], err = splitObject(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at i.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the end of the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return i
}
