package proxy

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, nil, nil, nil)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{name: "missing", header: "", want: http.StatusUnauthorized},
		{name: "wrong key", header: "Bearer sk-wrong", want: http.StatusUnauthorized},
		{name: "prefix of a key", header: "Bearer " + clientKey[:len(clientKey)-1], want: http.StatusUnauthorized},
		{name: "key plus a byte", header: "Bearer " + clientKey + "x", want: http.StatusUnauthorized},
		{name: "upstream key is not a client key", header: "Bearer " + upstreamKey, want: http.StatusUnauthorized},
		{name: "basic scheme", header: "Basic " + clientKey, want: http.StatusUnauthorized},
		{name: "empty bearer", header: "Bearer ", want: http.StatusUnauthorized},
		{name: "first key", header: "Bearer " + clientKey, want: http.StatusOK},
		{name: "second key", header: "Bearer sk-second-key", want: http.StatusOK},
		{name: "scheme is case-insensitive", header: "bearer " + clientKey, want: http.StatusOK},
	}
	for _, route := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/chat/completions", chatBody(false, "hi")},
		{http.MethodPost, "/v1/completions", `{"model":"m","prompt":"hi"}`},
		{http.MethodGet, "/v1/models", ""},
		{http.MethodPost, "/v1/guardrail/apply", `{"source":"INPUT","content":[{"text":{"text":"hi"}}]}`},
	} {
		for _, tt := range tests {
			t.Run(route.path+"/"+tt.name, func(t *testing.T) {
				before := e.up.Calls()
				req, err := http.NewRequest(route.method, e.url+route.path, strings.NewReader(route.body))
				require.NoError(t, err)
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				assert.Equal(t, tt.want, resp.StatusCode)
				if tt.want == http.StatusUnauthorized {
					body := decode(t, resp)
					assert.Equal(t, "invalid_api_key", body["error"].(map[string]any)["code"])
					assert.Equal(t, before, e.up.Calls(), "an unauthenticated request must not reach the model")
				}
			})
		}
	}
	assert.Equal(t, 28.0, e.metric(t, "guardrail_requests_total", map[string]string{"status": "401"}))
}

// TestAuthComparesEveryKeyInConstantTime proves the comparison goes
// through subtle.ConstantTimeCompare, over fixed-size digests, for every
// configured key, even when the first one matches.
func TestAuthComparesEveryKeyInConstantTime(t *testing.T) {
	keys := []string{"k1", "a-much-longer-second-key", "third"}
	a, err := newAuthenticator(keys)
	require.NoError(t, err)

	var calls, lengths []int
	orig := constantTimeCompare
	t.Cleanup(func() { constantTimeCompare = orig })
	constantTimeCompare = func(x, y []byte) int {
		calls = append(calls, 1)
		lengths = append(lengths, len(x), len(y))
		return orig(x, y)
	}
	for _, tt := range []struct {
		key  string
		want bool
	}{{"k1", true}, {"third", true}, {"nope", false}, {"a-much-longer-second-key", true}} {
		calls, lengths = nil, nil
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tt.key)
		assert.Equal(t, tt.want, a.check(r), tt.key)
		assert.Len(t, calls, len(keys), "every key is compared, without early exit (%s)", tt.key)
		for _, l := range lengths {
			assert.Equal(t, 32, l, "digests of equal length: the key length does not leak")
		}
	}
}

func TestNewRequiresKeys(t *testing.T) {
	_, err := newAuthenticator([]string{"", "  "})
	assert.Error(t, err)
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{in: "a,b , c", want: []string{"a", "b", "c"}},
		{in: "# comment\nkey1\n\n  key2  \r\nkey3", want: []string{"key1", "key2", "key3"}},
		{in: "", want: nil},
		{in: ",,", want: nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ParseKeys(tt.in), tt.in)
	}
}

func TestReadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(p, []byte("one\ntwo\n"), 0o600))
	keys, err := ReadKeyFile(p)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two"}, keys)

	s := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(s, []byte("upstream-secret\n"), 0o600))
	got, err := ReadSecretFile(s)
	require.NoError(t, err)
	assert.Equal(t, "upstream-secret", got)

	_, err = ReadKeyFile(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
