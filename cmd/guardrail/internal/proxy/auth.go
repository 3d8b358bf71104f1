package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// constantTimeCompare is subtle.ConstantTimeCompare, behind a variable so
// that a test can prove every configured key is compared on every request.
var constantTimeCompare = subtle.ConstantTimeCompare

// authenticator checks client API keys.
//
// Keys are compared as SHA-256 digests, so every comparison is over 32
// bytes whatever the key lengths (ConstantTimeCompare returns at once on a
// length mismatch, which would leak the length of a key), and every
// configured key is compared on every request, without stopping at the
// first match, so the time taken does not tell which key, or how many
// keys, matched.
type authenticator struct {
	digests [][sha256.Size]byte
}

func newAuthenticator(keys []string) (*authenticator, error) {
	a := &authenticator{}
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		a.digests = append(a.digests, sha256.Sum256([]byte(k)))
	}
	if len(a.digests) == 0 {
		return nil, errors.New("proxy: no client API keys configured (GUARDRAIL_API_KEYS or -api-keys-file)")
	}
	return a, nil
}

// check reports whether r carries one of the keys as a bearer token.
func (a *authenticator) check(r *http.Request) bool {
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	d := sha256.Sum256([]byte(token))
	match := 0
	for i := range a.digests {
		match |= constantTimeCompare(d[:], a.digests[i][:])
	}
	return match == 1
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// ParseKeys splits a list of keys: one per line or comma separated, blank
// lines and lines starting with # ignored, surrounding spaces trimmed. It
// reads both GUARDRAIL_API_KEYS and key files.
func ParseKeys(s string) []string {
	var keys []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for k := range strings.SplitSeq(line, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// ReadKeyFile reads a key file (see ParseKeys).
func ReadKeyFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	return ParseKeys(string(b)), nil
}

// ReadSecretFile reads a file holding one secret, such as the upstream API
// key, without its trailing newline.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading secret file: %w", err)
	}
	return string(bytes.TrimSpace(b)), nil
}
