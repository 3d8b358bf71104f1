package guardmodel

import (
	"context"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// Classifier is the model step of a policy: it implements guard.Classifier
// with a Client and the policy's guardModel section, which maps the
// model's categories to actions.
//
// Findings are reported under Bedrock's contentPolicy (its content filters
// are the closest thing: model judgements over the whole text), with the
// category as the type: Jailbreak as PROMPT_ATTACK, like the rules' prompt
// attacks, the others upper-cased ("Suicide & Self-Harm" is
// SUICIDE_SELF_HARM, an Unsafe verdict without a category UNSAFE).
type Classifier struct {
	client *Client
	pol    *policy.GuardModel
}

// NewClassifier combines a client and the policy section.
func NewClassifier(c *Client, g *policy.GuardModel) *Classifier {
	return &Classifier{client: c, pol: g}
}

// Enabled implements guard.Classifier.
func (k *Classifier) Enabled(src guard.Source) bool {
	switch src {
	case guard.Input:
		return k.pol.Input
	case guard.Output:
		return k.pol.Output
	}
	return false
}

// Classify implements guard.Classifier.
func (k *Classifier) Classify(ctx context.Context, src guard.Source, prompt, answer string) ([]guard.Finding, error) {
	text := prompt
	if src == guard.Output {
		text = answer
	} else {
		answer = ""
	}
	v, err := k.client.Classify(ctx, prompt, answer)
	if err != nil {
		return nil, err
	}
	return k.Findings(v, src, len(text)), nil
}

// Findings turns a verdict into findings over a text of n bytes, with the
// policy's mapping for src.
func (k *Classifier) Findings(v Verdict, src guard.Source, n int) []guard.Finding {
	if v.Safety != Unsafe && v.Safety != Controversial {
		return nil
	}
	cats := v.Categories
	if len(cats) == 0 {
		cats = []string{""}
	}
	var out []guard.Finding
	for _, c := range cats {
		d, ok := k.pol.Categories[c]
		if !ok {
			d = k.pol.Default
		}
		a := d.For(src)
		if !a.Enabled() {
			continue
		}
		if v.Safety == Controversial && k.pol.Controversial != policy.GuardStrict {
			a = policy.ActionNone
		}
		out = append(out, guard.Finding{Policy: guard.PolicyPromptAttack, Type: TypeName(c), Action: a.Guard(), Start: 0, End: n})
	}
	return out
}

// TypeName is the finding type of a category.
func TypeName(category string) string {
	switch category {
	case "":
		return "UNSAFE"
	case "Jailbreak":
		return policy.PromptAttackType
	}
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(category) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

var _ guard.Classifier = (*Classifier)(nil)
