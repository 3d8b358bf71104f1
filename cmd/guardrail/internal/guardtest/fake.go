// Package guardtest is a small, deterministic guard.Checker for the
// gateway's tests and benchmark: it lets them exercise masking, blocking and
// the streaming holdback without depending on the real policy engine, whose
// rules may change.
package guardtest

import (
	"slices"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// Finding types reported by Fake.
const (
	TypeMobile = "CN_MOBILE"
	TypeWord   = "BANNED"
	TypeAttack = "PROMPT_ATTACK"
	TypeTopic  = "WEAPONS"
)

// Fake detects, in both directions unless said otherwise:
//   - an 11-digit mainland mobile number (1[3-9] and 9 digits, not inside a
//     longer run of digits): ANONYMIZE, as sensitiveInformationPolicy;
//   - the word Word (default "forbidden"): BLOCK, as wordPolicy;
//   - the phrase "ignore previous instructions" in INPUT only: BLOCK, as
//     contentPolicy PROMPT_ATTACK;
//   - the phrase "build a bomb": BLOCK, as topicPolicy.
type Fake struct {
	Word       string
	InputMsg   string
	OutputMsg  string
	PanicOnCue string // Scan panics on a text containing it (tests fail modes)
}

// New returns a Fake with the default word and messages.
func New() *Fake {
	return &Fake{Word: "forbidden", InputMsg: "Sorry, I cannot help with that request.", OutputMsg: "Sorry, the model cannot answer this question."}
}

const (
	attackPhrase = "ignore previous instructions"
	topicPhrase  = "build a bomb"
)

// Scan implements guard.Checker.
func (f *Fake) Scan(src guard.Source, text string) []guard.Finding {
	if f.PanicOnCue != "" && strings.Contains(text, f.PanicOnCue) {
		panic("guardtest: scan failure requested")
	}
	var out []guard.Finding
	// Mobile numbers: exactly 11 digits in a run.
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		if j-i == 11 && text[i] == '1' && text[i+1] >= '3' {
			out = append(out, guard.Finding{Policy: guard.PolicySensitiveInformation, Type: TypeMobile, Action: guard.ActionAnonymize, Start: i, End: j})
		}
		i = j
	}
	lower := strings.ToLower(text)
	find := func(phrase string, p guard.Policy, typ string) {
		for off := 0; ; {
			k := strings.Index(lower[off:], phrase)
			if k < 0 {
				return
			}
			s := off + k
			out = append(out, guard.Finding{Policy: p, Type: typ, Action: guard.ActionBlock, Start: s, End: s + len(phrase)})
			off = s + len(phrase)
		}
	}
	if f.Word != "" {
		find(strings.ToLower(f.Word), guard.PolicyWords, TypeWord)
	}
	if src == guard.Input {
		find(attackPhrase, guard.PolicyPromptAttack, TypeAttack)
	}
	find(topicPhrase, guard.PolicyTopics, TypeTopic)
	slices.SortStableFunc(out, func(a, b guard.Finding) int { return a.Start - b.Start })
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Mask implements guard.Checker.
func (f *Fake) Mask(text string, findings []guard.Finding) string {
	var b strings.Builder
	last := 0
	for _, fd := range findings {
		if fd.Action != guard.ActionAnonymize || fd.Start < last {
			continue
		}
		b.WriteString(text[last:fd.Start])
		b.WriteString("{" + fd.Type + "}")
		last = fd.End
	}
	b.WriteString(text[last:])
	return b.String()
}

// Holdback implements guard.Checker: the longest phrase, plus one byte of
// context on each side for the digit-run boundary of the mobile number.
func (f *Fake) Holdback(src guard.Source) int {
	return max(11, len(f.Word), len(attackPhrase), len(topicPhrase)) + 2
}

// BlockedMessage implements guard.Checker.
func (f *Fake) BlockedMessage(src guard.Source) string {
	if src == guard.Input {
		return f.InputMsg
	}
	return f.OutputMsg
}

var _ guard.Checker = (*Fake)(nil)
