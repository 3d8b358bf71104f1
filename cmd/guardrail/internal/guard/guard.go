// Package guard is the contract between the guardrail's policy engine and
// the HTTP gateway: what a check is asked, and what it answers. The engine
// (package detect) implements Checker; the gateway (package proxy) uses it.
//
// The shapes follow Amazon Bedrock Guardrails' ApplyGuardrail API, so that
// its users find the same concepts: a source (INPUT or OUTPUT), an action
// (NONE or GUARDRAIL_INTERVENED), and assessments per policy.
package guard

import "context"

// Source is the direction a text travels: the prompt going to the model, or
// the model's answer (and reasoning) coming back.
type Source string

const (
	Input  Source = "INPUT"
	Output Source = "OUTPUT"
)

// Action is what a policy does with a match.
type Action string

const (
	// ActionNone: allowed (also used in Bedrock for "detect only").
	ActionNone Action = "NONE"
	// ActionBlock replaces the whole text with the blocked message.
	ActionBlock Action = "BLOCK"
	// ActionAnonymize replaces the match with {TYPE}.
	ActionAnonymize Action = "ANONYMIZE"
)

// Outcome is the overall verdict, as in Bedrock's ApplyGuardrail response.
type Outcome string

const (
	OutcomeNone       Outcome = "NONE"
	OutcomeIntervened Outcome = "GUARDRAIL_INTERVENED"
)

// Policy names the four policy kinds, used in assessments, metrics, audit
// records and the X-Guardrail-Policy header.
type Policy string

const (
	PolicySensitiveInformation Policy = "sensitiveInformationPolicy"
	PolicyWords                Policy = "wordPolicy"
	PolicyTopics               Policy = "topicPolicy"
	PolicyPromptAttack         Policy = "contentPolicy" // Bedrock reports prompt attacks under its content policy
)

// Finding is one match in a text. Start and End are byte offsets into the
// text that was scanned (End exclusive). Type is the detector or list name
// (CN_RESIDENT_ID, CN_MOBILE, BANK_CARD, EMAIL, IPV4, AWS_ACCESS_KEY, a custom
// regex name, a word list name, a topic name, PROMPT_ATTACK). Audit logs and
// metrics may use everything here except the matched text itself.
type Finding struct {
	Policy Policy
	Type   string
	Action Action
	Start  int
	End    int
}

// Checker is the policy engine.
type Checker interface {
	// Scan returns every finding in text for the given source, ordered by
	// Start. It must be safe for concurrent use.
	Scan(src Source, text string) []Finding
	// Mask returns text with every ANONYMIZE finding replaced by {TYPE}.
	// Findings must come from Scan of the same text, or of a longer text
	// that starts with it (the streaming scanner masks the released front
	// of its window with the findings inside it, offsets unchanged).
	Mask(text string, findings []Finding) string
	// Holdback is how many trailing bytes of a growing stream a scanner must
	// keep back so that a match split across chunks is still caught whole:
	// the longest match any enabled detector of that source can produce,
	// plus the context a detector looks at around it (word boundaries).
	Holdback(src Source) int
	// BlockedMessage is the configured text shown instead of a blocked
	// input or output.
	BlockedMessage(src Source) string
}

// Partial is what a StreamChecker says about a text that may still grow:
// the latest window of a streamed answer.
type Partial struct {
	// Findings are the findings that are final, whatever follows the
	// text: those that start before Settled, and the BLOCK and ANONYMIZE
	// findings that start before Release. Ordered by Start.
	Findings []Finding
	// Settled is the offset before which every finding is final: no
	// continuation of the text can add, remove or change a finding that
	// starts before it.
	Settled int
	// Release is the offset before which the text may be sent: no
	// continuation can bring a BLOCK or ANONYMIZE finding that starts
	// before it (NONE findings only report, so text under one that is
	// still open may go). Release >= Settled.
	Release int
	// Keep is the offset before which the text is no longer needed to
	// check what follows (the context detectors look back at). Keep <=
	// Settled.
	Keep int
}

// StreamChecker is a Checker that can check a growing text precisely: it
// tells which part of it is settled, so that a stream holds back only what
// could still become part of a match (rather than Holdback bytes) and
// settles a finding only once no continuation can change it. The gateway
// uses it when the Checker implements it.
type StreamChecker interface {
	Checker
	// ScanPartial checks text, which may continue. It must be safe for
	// concurrent use. The findings and offsets of
	// ScanPartial(src, text+more) for the part before Settled agree with
	// those of ScanPartial(src, text), and with Scan(src, text+rest) for
	// any rest.
	ScanPartial(src Source, text string) Partial
}

// Classifier is an optional model check that runs after the deterministic
// one, for what rules cannot judge: a guard model that reads a whole
// prompt, or a whole answer with the prompt it answers. The gateway calls
// it only when the deterministic check did not already block.
type Classifier interface {
	// Enabled reports whether texts of src are classified.
	Enabled(src Source) bool
	// Classify judges a prompt (src Input; answer empty) or an answer to
	// a prompt (src Output). Findings span the whole text judged: the
	// prompt for Input, the answer for Output. It must be safe for
	// concurrent use; an error is handled by the gateway's classifier
	// fail mode.
	Classify(ctx context.Context, src Source, prompt, answer string) ([]Finding, error)
}
