// Package policy reads and validates the guardrail policy: one YAML file that
// says what the gateway checks in prompts (input) and answers (output), and
// what it does with a match.
//
// The vocabulary follows Amazon Bedrock Guardrails, which does not exist in
// the AWS China regions, so that its users find the same concepts: sensitive
// information (built-in PII types and custom regexes) with BLOCK, ANONYMIZE
// or NONE per direction, word filters, denied topics and prompt-attack
// detection, and the messages shown instead of a blocked input or output. On
// top of Bedrock it adds what a self-hosted gateway in front of vLLM needs:
// mainland Chinese PII types, the fail mode, the streaming mode and what to
// do with DeepSeek-R1's reasoning.
//
// Load and Parse return a fully validated Policy with every default
// applied, so that the engine (package detect) and the gateway (package
// proxy) never have to second-guess a field. The policy is read-only after
// Parse and may be shared between goroutines.
package policy

import (
	"regexp"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// Action is what a policy entry does with a match in one direction. It is
// guard.Action plus OFF: NONE still reports the match (detect only, like
// Bedrock's NONE), OFF does not even look, which also keeps the entry out of
// the streaming holdback.
type Action string

const (
	ActionBlock     Action = "BLOCK"
	ActionAnonymize Action = "ANONYMIZE"
	ActionNone      Action = "NONE"
	ActionOff       Action = "OFF"
)

// Enabled reports whether the entry is checked at all in that direction.
func (a Action) Enabled() bool { return a != ActionOff && a != "" }

// Guard converts the action to the one reported in a guard.Finding. OFF has
// no guard equivalent, because an OFF entry never produces findings; it
// converts to guard.ActionNone.
func (a Action) Guard() guard.Action {
	switch a {
	case ActionBlock:
		return guard.ActionBlock
	case ActionAnonymize:
		return guard.ActionAnonymize
	default:
		return guard.ActionNone
	}
}

// Directions holds one action per direction.
type Directions struct {
	Input  Action
	Output Action
}

// For returns the action for src. An unknown source gets OFF.
func (d Directions) For(src guard.Source) Action {
	switch src {
	case guard.Input:
		return d.Input
	case guard.Output:
		return d.Output
	default:
		return ActionOff
	}
}

// FailMode is what the gateway does when the upstream or a check fails.
type FailMode string

const (
	// FailClosed answers with an error (or the blocked message) rather than
	// letting an unchecked text through. The default.
	FailClosed FailMode = "closed"
	// FailOpen lets the text through unchecked and records the failure.
	FailOpen FailMode = "open"
)

// StreamingMode is how the gateway checks a streamed answer.
type StreamingMode string

const (
	// StreamSync checks every chunk before it is released to the client,
	// holding back Holdback bytes. The default: nothing unchecked leaves.
	StreamSync StreamingMode = "sync"
	// StreamAsync releases chunks at once and checks them alongside,
	// stopping the stream when a check fails; lower latency, but what was
	// already sent cannot be taken back (Bedrock's asynchronous mode).
	StreamAsync StreamingMode = "async"
)

// Strength is how eagerly prompt attacks are detected.
type Strength string

const (
	// StrengthLow: only the most explicit patterns ("ignore all previous
	// instructions").
	StrengthLow Strength = "LOW"
	// StrengthMedium adds common jailbreak markers ("developer mode").
	StrengthMedium Strength = "MEDIUM"
	// StrengthHigh adds weaker signals that also occur in harmless text
	// ("system prompt", "jailbreak").
	StrengthHigh Strength = "HIGH"
)

// Includes reports whether a pattern of level l is enabled at strength s.
func (s Strength) Includes(l Strength) bool { return strengthRank(l) <= strengthRank(s) }

func strengthRank(s Strength) int {
	switch s {
	case StrengthLow:
		return 1
	case StrengthMedium:
		return 2
	case StrengthHigh:
		return 3
	default:
		return 4 // unknown levels are never enabled
	}
}

// PIIType names a built-in sensitive information detector. It is also the
// finding type and the placeholder name: ANONYMIZE writes {CN_MOBILE}.
type PIIType string

const (
	// PIIResidentID: mainland resident identity card number, 18 characters
	// (GB 11643-1999), with the check character and birth date validated.
	PIIResidentID PIIType = "CN_RESIDENT_ID"
	// PIIMobile: mainland mobile number, 1[3-9] and 9 more digits, with an
	// optional +86 / 86 / 0086 prefix.
	PIIMobile PIIType = "CN_MOBILE"
	// PIIBankCard: payment card number, 13 to 19 digits with a valid Luhn
	// check digit (UnionPay, Visa, Mastercard ...).
	PIIBankCard PIIType = "BANK_CARD"
	PIIEmail    PIIType = "EMAIL"
	PIIIPv4     PIIType = "IPV4"
	// PIIAWSAccessKey: AWS access key ID, AKIA (long-term) or ASIA
	// (temporary) and 16 upper-case letters or digits.
	PIIAWSAccessKey PIIType = "AWS_ACCESS_KEY"
)

// PIITypes lists the built-in types in the order the engine runs them.
var PIITypes = []PIIType{PIIResidentID, PIIMobile, PIIBankCard, PIIEmail, PIIIPv4, PIIAWSAccessKey}

// PromptAttackType is the finding type of the prompt attack policy.
const PromptAttackType = "PROMPT_ATTACK"

// Defaults.
const (
	// DefaultBlockedMessage is Bedrock Guardrails' default text for a
	// blocked input and a blocked output.
	DefaultBlockedMessage = "Sorry, the model cannot answer this question."
	// DefaultRegexMaxLength bounds a custom regex match when the policy does
	// not say; it sizes the streaming holdback.
	DefaultRegexMaxLength = 128
	// MaxRegexMaxLength caps maxLength so that one regex cannot make the
	// streaming holdback absurd.
	MaxRegexMaxLength = 4096
	// MaxPhraseBytes caps a word, topic example or keyword, for the same
	// reason: every byte of the longest phrase is held back in streaming.
	MaxPhraseBytes = 256
	// MaxTopicKeywords caps the keywords of one topic (the engine tracks
	// which ones co-occur in a 64-bit set).
	MaxTopicKeywords = 64
	// MaxWordFileBytes caps a word list file, so that a path such as
	// /dev/zero fails instead of hanging the gateway at start-up.
	MaxWordFileBytes = 16 << 20
)

// Policy is a validated guardrail policy with every default applied.
type Policy struct {
	// Version of the file format; only 1 exists.
	Version int
	// Name and Description are free text for logs and metrics.
	Name        string
	Description string
	// BaseDir is the directory relative word list paths were resolved
	// against: the policy file's directory for Load.
	BaseDir string

	FailMode        FailMode
	Streaming       Streaming
	Reasoning       Reasoning
	BlockedMessages BlockedMessages

	SensitiveInformation SensitiveInformation
	Words                Words
	Topics               Topics
	PromptAttack         PromptAttack
	// GuardModel is the optional model step; nil when the section is
	// absent.
	GuardModel *GuardModel
}

// GuardModel configures the optional classifier step: a guard model such
// as Qwen3Guard-Gen served by vLLM over the OpenAI API, asked after the
// deterministic checks pass.
type GuardModel struct {
	// Endpoint is the OpenAI-compatible base URL, e.g.
	// http://127.0.0.1:8002/v1. The gateway's -guard-endpoint flag
	// overrides it.
	Endpoint string
	// Model is the served model name (vLLM's --served-model-name, by
	// default the model path), e.g. Qwen/Qwen3Guard-Gen-0.6B.
	Model string
	// APIKeyEnv names the environment variable holding the guard model's
	// API key (vLLM's --api-key); empty sends none.
	APIKeyEnv string
	// Timeout bounds one call. Default 2s.
	Timeout time.Duration
	// FailMode is what a timeout or an error means: closed refuses the
	// text (an error, as a failed check), open lets it through and records
	// it. Default: the policy's failMode.
	FailMode FailMode
	// Input and Output say which directions are classified. Default both.
	Input, Output bool
	// Streaming is how a streamed answer is classified: "end" (default)
	// releases it as the rules allow and classifies the whole answer when
	// it ends, a verdict to block then ending the stream with the blocked
	// message after what was sent; "hold" holds the whole answer until it
	// is classified, as a non-streamed one.
	Streaming string
	// MaxChars bounds the text sent per message, in runes. Default 8000.
	MaxChars int
	// Controversial is what a "Controversial" verdict does: "loose"
	// (default) reports its categories (NONE), "strict" treats it as
	// Unsafe.
	Controversial string
	// Categories maps the model's categories to actions (BLOCK, NONE,
	// OFF) per direction; Default applies to the categories not listed,
	// and to an Unsafe verdict without a category.
	Categories map[string]Directions
	Default    Directions
}

// Guard model defaults.
const (
	DefaultGuardTimeout  = 2 * time.Second
	DefaultGuardMaxChars = 8000
	GuardStreamEnd       = "end"
	GuardStreamHold      = "hold"
	GuardLoose           = "loose"
	GuardStrict          = "strict"
)

// DefaultGuardCategories is the mapping of Qwen3Guard's categories when
// the policy does not say: attacks on the model's instructions block
// prompts; violence, illegal acts, sexual content, self-harm, hate and
// harassment (Unethical Acts) and political disinformation (Politically
// Sensitive Topics) block both ways; PII (the rules mask it) and
// copyright are reported.
func DefaultGuardCategories() map[string]Directions {
	block := Directions{Input: ActionBlock, Output: ActionBlock}
	report := Directions{Input: ActionNone, Output: ActionNone}
	return map[string]Directions{
		"Jailbreak":                     {Input: ActionBlock, Output: ActionOff},
		"Violent":                       block,
		"Non-violent Illegal Acts":      block,
		"Sexual Content or Sexual Acts": block,
		"Suicide & Self-Harm":           block,
		"Unethical Acts":                block,
		"Politically Sensitive Topics":  block,
		"PII":                           report,
		"Copyright Violation":           report,
	}
}

// Streaming configures how streamed answers are checked.
type Streaming struct {
	Mode StreamingMode
}

// Reasoning configures DeepSeek-R1's reasoning (reasoning_content, or the
// <think> block when vLLM runs without a reasoning parser).
type Reasoning struct {
	// ScanReasoning checks the reasoning with the output policies, like the
	// answer. Default true: the reasoning reaches the client too.
	ScanReasoning bool
	// StripReasoning removes the reasoning from responses altogether.
	// Default false.
	StripReasoning bool
}

// BlockedMessages are the texts returned instead of a blocked input or
// output (Bedrock's blockedInputMessaging and blockedOutputsMessaging).
type BlockedMessages struct {
	Input  string
	Output string
}

// For returns the message for src; the output message for an unknown
// source, which is the one a client sees in an answer.
func (b BlockedMessages) For(src guard.Source) string {
	if src == guard.Input {
		return b.Input
	}
	return b.Output
}

// SensitiveInformation is Bedrock's sensitive information filter.
type SensitiveInformation struct {
	PIIEntities []PIIEntity
	Regexes     []Regex
}

// PIIEntity enables one built-in detector.
type PIIEntity struct {
	Type    PIIType
	Actions Directions
}

// Regex is a custom sensitive information pattern.
type Regex struct {
	// Name is the finding type and the placeholder: ANONYMIZE writes {Name}.
	Name        string
	Description string
	Pattern     string
	// MaxLength is the longest match in bytes that the streaming holdback
	// guarantees to catch across chunks.
	MaxLength int
	Actions   Directions
	// Compiled is Pattern, compiled once at Parse.
	Compiled *regexp.Regexp
}

// Words is Bedrock's word filter.
type Words struct {
	Lists []WordList
}

// WordList is a named list of words or phrases.
type WordList struct {
	// Name is the finding type.
	Name string
	// Words holds the inline words followed by the words of Files, trimmed,
	// without empty lines, comments and exact duplicates.
	Words []string
	// Files are the list files, resolved against BaseDir.
	Files []string
	// Exceptions are phrases that contain a word of the list without
	// being a use of it ("Scunthorpe"); a match inside one is dropped.
	Exceptions []string
	Actions    Directions
}

// Topics is Bedrock's denied topics policy.
type Topics struct {
	Denied []Topic
}

// Topic is one denied topic. A text is on the topic when it contains one of
// the examples, or one of the keywords, or, when MinKeywords is above 1, at
// least MinKeywords different keywords anywhere in the text.
type Topic struct {
	// Name is the finding type.
	Name string
	// Definition documents the topic (and is what a future classifier
	// would be given); the deterministic matcher does not use it.
	Definition  string
	Examples    []string
	Keywords    []string
	MinKeywords int
	// Exceptions are phrases that contain an example or keyword without
	// being about the topic ("基金会" for "基金", "bomb shelter" for
	// "bomb"); a match inside one is dropped.
	Exceptions []string
	Actions    Directions
}

// PromptAttack is the prompt attack filter of Bedrock's content policy.
type PromptAttack struct {
	// Enabled is false when the policy has no promptAttack section.
	Enabled  bool
	Strength Strength
	Actions  Directions
}

// BlockedMessage returns the configured message for a blocked src.
func (p *Policy) BlockedMessage(src guard.Source) string { return p.BlockedMessages.For(src) }
