package proxy

import "strings"

// DeepSeek-R1 reasons before it answers. vLLM with --reasoning-parser
// deepseek_r1 puts the reasoning in a separate field, named
// "reasoning_content" in older vLLM versions and "reasoning" in newer ones
// (some versions send both). Without the parser the reasoning stays in the
// content, between <think> and </think>; R1's chat template already writes
// the opening <think> into the prompt, so the content often has only the
// closing tag: everything before a bare </think> is reasoning.
var reasoningFields = []string{"reasoning_content", "reasoning"}

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
	spaces     = " \t\r\n"
)

// stripThink removes the reasoning part from a complete content string.
// Content that opens a <think> block and never closes it (the answer was
// cut by max_tokens mid-reasoning) is all reasoning.
func stripThink(s string) (string, bool) {
	if i := strings.Index(s, thinkClose); i >= 0 {
		return strings.TrimLeft(s[i+len(thinkClose):], spaces), true
	}
	if strings.HasPrefix(strings.TrimLeft(s, spaces), thinkOpen) {
		return "", true
	}
	return s, false
}

// thinkFilter strips the reasoning from streamed content. Until </think>
// arrives it cannot know whether what it has is reasoning (bare </think>
// to come) or an answer without reasoning, so it holds the content back;
// nothing it holds is ever sent unchecked, it is either dropped or handed
// to the scanner.
type thinkFilter struct {
	answer   bool // past </think>, or decided that there is no reasoning
	trimming bool // drop the blank lines R1 writes right after </think>
	held     strings.Builder
}

// feed takes the next content delta and returns the part that is answer.
func (t *thinkFilter) feed(s string) string {
	if t.answer {
		return t.trim(s)
	}
	t.held.WriteString(s)
	h := t.held.String()
	i := strings.Index(h, thinkClose)
	if i < 0 {
		return ""
	}
	t.answer, t.trimming = true, true
	t.held.Reset()
	return t.trim(h[i+len(thinkClose):])
}

func (t *thinkFilter) trim(s string) string {
	if !t.trimming {
		return s
	}
	s = strings.TrimLeft(s, spaces)
	if s != "" {
		t.trimming = false
	}
	return s
}

// end is called when the content is complete and returns what is left to
// release: the held content when it had no reasoning block.
func (t *thinkFilter) end() string {
	if t.answer {
		return ""
	}
	t.answer = true
	h := t.held.String()
	t.held.Reset()
	if strings.HasPrefix(strings.TrimLeft(h, spaces), thinkOpen) {
		return "" // reasoning never closed: nothing of it is an answer
	}
	return h
}
