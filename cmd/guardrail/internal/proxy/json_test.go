package proxy

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendStringMatchesEncodingJSON compares the fast string encoder
// with encoding/json (HTML escaping off) on awkward inputs.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "tab\tnewline\ncr\r", "\x00\x01\x1f\x7f",
		"<think>&</think>", "中文，标点。", "emoji 😀", "bad \xff utf8 \xe4\xb8", "line\u2028para\u2029",
	} {
		var want []byte
		{
			b, err := marshalViaEncoder(s)
			require.NoError(t, err)
			want = b
		}
		got := appendString(nil, s)
		assert.Equal(t, string(want), string(got), "%q", s)
		var back string
		require.NoError(t, json.Unmarshal(got, &back))
	}
}

func marshalViaEncoder(s string) ([]byte, error) {
	type wrap struct{ S string }
	b, err := marshalJSON(wrap{S: s}) // not a fast-path type
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m["S"], nil
}

func TestMarshalObjectFastPath(t *testing.T) {
	m := map[string]json.RawMessage{"b": json.RawMessage(`[1, 2]`), "a": jsonString("x<y"), "c": nil}
	b, err := marshalJSON(m)
	require.NoError(t, err)
	assert.Equal(t, `{"a":"x<y","b":[1, 2],"c":null}`, string(b))
	assert.True(t, json.Valid(b))
}

func TestRawString(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"plain"`, "plain", true},
		{`"esc\"aped\n"`, "esc\"aped\n", true},
		{`"\u4e2d"`, "中", true},
		{` "spaced" `, "spaced", true},
		{`12`, "", false},
		{`null`, "", false},
		{`"unterminated`, "", false},
	}
	for _, tt := range tests {
		got, ok := rawString(json.RawMessage(tt.raw))
		assert.Equal(t, tt.ok, ok, tt.raw)
		assert.Equal(t, tt.want, got, tt.raw)
	}
}

// TestDecodeObjectMatchesEncodingJSON compares the fast splitter with
// json.Unmarshal into map[string]json.RawMessage.
func TestDecodeObjectMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, ` { } `, `{"a":1}`, `{"a" : "x\"}" , "b":[1,{"c":"]"}],"d":null,"e":true,"f":-1.5e3}`,
		`{"k\u00e9y":{"nested":{"deep":[[],{}]}},"s":"\\"}`, `{"dup":1,"dup":2}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"中文"},"finish_reason":null}]}`,
		"{\n\t\"ws\" :\r\n 1 \n}",
	}
	for _, in := range inputs {
		want := map[string]json.RawMessage{}
		require.NoError(t, json.Unmarshal([]byte(in), &want), in)
		got, err := decodeObject([]byte(in))
		require.NoError(t, err, in)
		require.Len(t, got, len(want), in)
		for k, v := range want {
			assert.JSONEq(t, string(v), string(got[k]), "%s: %s", in, k)
		}
	}
	for _, bad := range []string{``, `[1]`, `"s"`, `{"a":}`, `{"a":1`, `nul`} {
		_, err := decodeObject([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"a":[1,"]",{"b":"\""}]}`, `{"x":null}`, `{}`, `{"choices":[{"delta":{"content":"x"}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(in, &want)
		got, err := decodeObject(in)
		if wantErr != nil || want == nil {
			// json.Unmarshal accepts "null" as a nil map; we refuse it.
			if err == nil {
				require.NotNil(t, got)
				require.Equal(t, "{", string(in[skipSpace(in, 0)]))
			}
			return
		}
		require.NoError(t, err)
		require.Len(t, got, len(want))
		for k, v := range want {
			require.JSONEq(t, string(v), string(got[k]))
		}
	})
}
