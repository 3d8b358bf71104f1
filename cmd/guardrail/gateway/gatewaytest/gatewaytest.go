// Package gatewaytest lends the gateway's in-process fake vLLM
// (cmd/guardrail/internal/fakevllm) to tests outside cmd/guardrail, so that
// they exercise the gateway against the same stand-in as its own tests
// rather than a second one. Only tests should import it.
package gatewaytest

import "github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"

// FakeVLLM is vLLM's OpenAI-compatible server as the gateway sees it: a
// role-only first chunk, reasoning deltas, a finish chunk, a usage chunk and
// [DONE]; /health without a key, everything else behind APIKey.
type FakeVLLM = fakevllm.Server

// Reply is what the fake answers.
type Reply = fakevllm.Reply

// Request is what the fake saw of a completion request.
type Request = fakevllm.Request

// ReasoningStyle is how the fake sends the reasoning.
type ReasoningStyle = fakevllm.ReasoningStyle

// Reasoning styles.
const (
	ReasoningContent = fakevllm.ReasoningContent
	ReasoningField   = fakevllm.ReasoningField
	ReasoningBoth    = fakevllm.ReasoningBoth
	ThinkTags        = fakevllm.ThinkTags
	BareThink        = fakevllm.BareThink
)

// Echo answers with the last text it was given, so that a test can see what
// reached the model.
func Echo(style ReasoningStyle, reasoning string) func(Request) Reply {
	return fakevllm.Echo(style, reasoning)
}
