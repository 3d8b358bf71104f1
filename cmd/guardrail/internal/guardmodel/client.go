// Package guardmodel is the guardrail's optional model step: it asks a
// guard model, served by vLLM behind its OpenAI-compatible API, whether a
// prompt or an answer is safe, for what the deterministic rules cannot
// judge (paraphrased attacks, harmful requests without listed words).
//
// The model it is written for is Qwen3Guard-Gen (Apache-2.0; Qwen/
// Qwen3Guard-Gen-0.6B, -4B, -8B on ModelScope and Hugging Face). Its chat
// template turns the messages into a moderation task: one user message for
// a prompt, a user and an assistant message for an answer. Its reply is,
// per the model card and README of QwenLM/Qwen3Guard (commit 019b2e3b):
//
//	Safety: Safe|Unsafe|Controversial
//	Categories: Violent|Non-violent Illegal Acts|Sexual Content or Sexual Acts|PII|
//	            Suicide & Self-Harm|Unethical Acts|Politically Sensitive Topics|
//	            Copyright Violation|Jailbreak|None
//	Refusal: Yes|No                      (answers only)
//
// where Jailbreak is only given for prompts. The README parses it with the
// regular expressions `Safety: (Safe|Unsafe|Controversial)` and a findall
// over the category names; Parse does the same. It shows serving with
// `vllm serve Qwen/Qwen3Guard-Gen-4B --port 8000 --max-model-len 32768`
// (vllm>=0.9.0) and calling chat.completions with those messages.
package guardmodel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Safety levels of a verdict.
const (
	Safe          = "Safe"
	Unsafe        = "Unsafe"
	Controversial = "Controversial"
)

// Categories are Qwen3Guard's category names, as it writes them.
var Categories = []string{
	"Violent", "Non-violent Illegal Acts", "Sexual Content or Sexual Acts", "PII", "Suicide & Self-Harm",
	"Unethical Acts", "Politically Sensitive Topics", "Copyright Violation", "Jailbreak",
}

// Verdict is the model's answer.
type Verdict struct {
	Safety     string
	Categories []string // without "None"
	Refusal    string   // "Yes", "No" or "" (prompts)
	Raw        string
}

var (
	safetyRE   = regexp.MustCompile(`Safety:\s*(Safe|Unsafe|Controversial)`)
	refusalRE  = regexp.MustCompile(`Refusal:\s*(Yes|No)`)
	categoryRE = regexp.MustCompile(`(Violent|Non-violent Illegal Acts|Sexual Content or Sexual Acts|PII|Suicide & Self-Harm|Unethical Acts|Politically Sensitive Topics|Copyright Violation|Jailbreak)`)
)

// ErrUnreadable is returned for a reply without a Safety line.
var ErrUnreadable = errors.New("guard model reply has no Safety line")

// Parse reads a Qwen3Guard-Gen reply. Categories are looked for on the
// Categories line, or anywhere when there is none, as the model card's
// parser does.
func Parse(content string) (Verdict, error) {
	v := Verdict{Raw: content}
	m := safetyRE.FindStringSubmatch(content)
	if m == nil {
		return v, fmt.Errorf("%w: %q", ErrUnreadable, truncate(content, 200))
	}
	v.Safety = m[1]
	if m := refusalRE.FindStringSubmatch(content); m != nil {
		v.Refusal = m[1]
	}
	scope := content
	if i := strings.Index(content, "Categories:"); i >= 0 {
		scope = content[i+len("Categories:"):]
		if j := strings.IndexByte(scope, '\n'); j >= 0 {
			scope = scope[:j]
		}
	}
	for _, c := range categoryRE.FindAllString(scope, -1) {
		if !contains(v.Categories, c) {
			v.Categories = append(v.Categories, c)
		}
	}
	return v, nil
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ClientConfig says where the guard model is.
type ClientConfig struct {
	// Endpoint is the OpenAI-compatible base URL, e.g.
	// http://127.0.0.1:8002/v1 (with or without /v1).
	Endpoint string
	Model    string
	APIKey   string // vLLM's --api-key, if it has one
	// Timeout bounds one call (default 2s).
	Timeout time.Duration
	// MaxChars bounds the text sent per message, in runes (default
	// 8000): a longer prompt keeps its end, a longer answer its start
	// and end, which is where attacks and conclusions are.
	MaxChars int
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

// Client calls the guard model.
type Client struct {
	cfg  ClientConfig
	url  string
	http *http.Client
}

// NewClient checks the configuration.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("guard model endpoint %q: want an absolute http(s) URL such as http://127.0.0.1:8002/v1", cfg.Endpoint)
	}
	if cfg.Model == "" {
		return nil, errors.New("guard model: the model name is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxChars <= 0 {
		cfg.MaxChars = 8000
	}
	base := strings.TrimSuffix(u.String(), "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	}
	return &Client{cfg: cfg, url: base + "/chat/completions", http: &http.Client{Transport: tr}}, nil
}

// Config returns the client's configuration with defaults applied.
func (c *Client) Config() ClientConfig { return c.cfg }

// Classify asks about a prompt (answer empty) or an answer to a prompt.
func (c *Client) Classify(ctx context.Context, prompt, answer string) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	msgs := []map[string]string{{"role": "user", "content": keepEnd(prompt, c.cfg.MaxChars)}}
	if answer != "" {
		msgs = append(msgs, map[string]string{"role": "assistant", "content": keepEnds(answer, c.cfg.MaxChars)})
	}
	body, err := json.Marshal(map[string]any{"model": c.cfg.Model, "messages": msgs, "temperature": 0, "max_tokens": 64, "stream": false})
	if err != nil {
		return Verdict{}, fmt.Errorf("guard model request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Verdict{}, fmt.Errorf("guard model request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Verdict{}, fmt.Errorf("calling the guard model: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Verdict{}, fmt.Errorf("reading the guard model's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Verdict{}, fmt.Errorf("guard model: status %d: %s", resp.StatusCode, truncate(string(raw), 200))
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		return Verdict{}, fmt.Errorf("guard model: unreadable answer: %s", truncate(string(raw), 200))
	}
	return Parse(out.Choices[0].Message.Content)
}

// keepEnd keeps the last n runes of s.
func keepEnd(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[len(r)-n:])
}

// keepEnds keeps the first and last n/2 runes of s.
func keepEnds(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n/2]) + "\n…\n" + string(r[len(r)-n/2:])
}
