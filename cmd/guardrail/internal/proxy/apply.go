package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// POST /v1/guardrail/apply checks texts without calling the model, shaped
// like Amazon Bedrock's ApplyGuardrail so that code written for it ports
// with a URL change. One difference on purpose: findings never include the
// matched text ("match" in Bedrock), because the gateway never repeats a
// sensitive value it was asked to find.

// applyRequest is Bedrock's ApplyGuardrail request body (without the
// guardrail identifier and version, which are the gateway's policy).
type applyRequest struct {
	Source  string         `json:"source"`
	Content []applyContent `json:"content"`
}

type applyContent struct {
	Text *struct {
		Text string `json:"text"`
	} `json:"text"`
}

type applyResponse struct {
	Action      guard.Outcome `json:"action"`
	Outputs     []applyOutput `json:"outputs"`
	Assessments []assessment  `json:"assessments"`
	Usage       applyUsage    `json:"usage"`
}

type applyOutput struct {
	Text string `json:"text"`
}

// assessment groups findings by policy, as Bedrock does. A policy with no
// finding is omitted.
type assessment struct {
	SensitiveInformationPolicy *sensitiveAssessment `json:"sensitiveInformationPolicy,omitempty"`
	WordPolicy                 *wordAssessment      `json:"wordPolicy,omitempty"`
	TopicPolicy                *topicAssessment     `json:"topicPolicy,omitempty"`
	ContentPolicy              *contentAssessment   `json:"contentPolicy,omitempty"`
}

type sensitiveAssessment struct {
	PIIEntities []piiEntity  `json:"piiEntities,omitempty"`
	Regexes     []regexMatch `json:"regexes,omitempty"`
}

type piiEntity struct {
	Type   string `json:"type"`
	Action string `json:"action"`
}

type regexMatch struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}

type wordAssessment struct {
	CustomWords []customWord `json:"customWords"`
}

// customWord names the word list that matched (Bedrock has no list names,
// and puts the word itself in "match", which we omit).
type customWord struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}

type topicAssessment struct {
	Topics []topic `json:"topics"`
}

type topic struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // always DENY
	Action string `json:"action"`
}

type contentAssessment struct {
	Filters []contentFilter `json:"filters"`
}

// contentFilter reports a prompt attack. The engine's matches are
// deterministic, so a match is reported with HIGH confidence.
type contentFilter struct {
	Type       string `json:"type"`
	Confidence string `json:"confidence"`
	Action     string `json:"action"`
}

// applyUsage counts text units as Bedrock bills them (up to 1,000
// characters each), per policy that ran. Every member Bedrock's
// GuardrailUsage marks required is present (Amazon Bedrock API Reference,
// API_runtime_GuardrailUsage: contentPolicyUnits,
// contextualGroundingPolicyUnits, sensitiveInformationPolicyFreeUnits,
// sensitiveInformationPolicyUnits, topicPolicyUnits, wordPolicyUnits), so
// that SDKs that validate them parse the answer. The gateway has no
// contextual grounding check, so that count is 0. What Bedrock counts as
// free sensitive-information units is not documented there (UNCONFIRMED);
// the gateway bills nothing, so it reports 0.
type applyUsage struct {
	TopicPolicyUnits                    int `json:"topicPolicyUnits"`
	ContentPolicyUnits                  int `json:"contentPolicyUnits"`
	WordPolicyUnits                     int `json:"wordPolicyUnits"`
	SensitiveInformationPolicyUnits     int `json:"sensitiveInformationPolicyUnits"`
	SensitiveInformationPolicyFreeUnits int `json:"sensitiveInformationPolicyFreeUnits"`
	ContextualGroundingPolicyUnits      int `json:"contextualGroundingPolicyUnits"`
}

// bedrockAction is Bedrock's past-tense action name for a finding.
func bedrockAction(a guard.Action) string {
	switch a {
	case guard.ActionBlock:
		return "BLOCKED"
	case guard.ActionAnonymize:
		return "ANONYMIZED"
	default:
		return "NONE"
	}
}

func (s *Server) serveApply(w http.ResponseWriter, r *http.Request, rec *record) {
	body, ok := s.postBody(w, r, rec)
	if !ok {
		return
	}
	var req applyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeError(w, rec, http.StatusBadRequest, "invalid_request_error", "invalid_request", "the body must be {\"source\": \"INPUT\"|\"OUTPUT\", \"content\": [{\"text\": {\"text\": \"...\"}}]}")
		return
	}
	src := guard.Source(req.Source)
	if src != guard.Input && src != guard.Output {
		s.writeError(w, rec, http.StatusBadRequest, "invalid_request_error", "invalid_source", "source must be INPUT or OUTPUT")
		return
	}
	if len(req.Content) == 0 {
		s.writeError(w, rec, http.StatusBadRequest, "invalid_request_error", "invalid_content", "content must have at least one text block")
		return
	}
	for i, c := range req.Content {
		if c.Text == nil {
			s.writeError(w, rec, http.StatusBadRequest, "invalid_request_error", "invalid_content", fmt.Sprintf("content[%d] has no text block", i))
			return
		}
	}

	resp, err := s.apply(r.Context(), src, req.Content, rec)
	if err != nil {
		// There is nothing to let through here, so both fail modes
		// answer with the error: a caller must not read "NONE" into an
		// assessment that did not happen.
		s.writeError(w, rec, http.StatusServiceUnavailable, "guardrail_error", "guardrail_unavailable", "the guardrail could not check the text")
		return
	}
	if resp.Action == guard.OutcomeIntervened {
		setGuardrailHeaders(w.Header(), rec)
	}
	rec.status = http.StatusOK
	s.writeJSON(w, resp)
}

// apply checks each text block: a BLOCK anywhere gives one output, the
// blocked message; otherwise each block is returned masked when anything
// was anonymized; with no intervention there are no outputs (as in
// Bedrock).
func (s *Server) apply(ctx context.Context, src guard.Source, content []applyContent, rec *record) (applyResponse, error) {
	var (
		a       assessment
		outputs []applyOutput
		blocked bool
		masked  bool
		chars   int
	)
	for _, c := range content {
		text := c.Text.Text
		chars += utf8.RuneCountInString(text)
		fs, err := s.checker.scan(src, text)
		if err != nil {
			return applyResponse{}, err
		}
		v := judge(fs)
		rec.add(src, fs, true)
		s.assess(&a, fs)
		blocked = blocked || v.block
		out := text
		if v.anonymize {
			if out, err = s.checker.mask(text, fs); err != nil {
				return applyResponse{}, err
			}
			masked = true
		}
		outputs = append(outputs, applyOutput{Text: out})
	}
	if !blocked {
		var texts []string
		for _, c := range content {
			texts = append(texts, c.Text.Text)
		}
		joined := strings.Join(texts, "\n\n")
		prompt, answer := joined, ""
		if src == guard.Output {
			prompt, answer = "", joined
		}
		fs, b, err := s.classifyFindings(ctx, src, prompt, answer, rec)
		if err != nil {
			return applyResponse{}, err
		}
		s.assess(&a, fs)
		blocked = b
	}
	units := (chars + 999) / 1000
	resp := applyResponse{
		Action:      guard.OutcomeNone,
		Outputs:     []applyOutput{},
		Assessments: []assessment{a},
		Usage:       applyUsage{TopicPolicyUnits: units, ContentPolicyUnits: units, WordPolicyUnits: units, SensitiveInformationPolicyUnits: units},
	}
	switch {
	case blocked:
		rec.blocked = src
		resp.Action = guard.OutcomeIntervened
		resp.Outputs = []applyOutput{{Text: s.checker.blockedMessage(src)}}
	case masked:
		resp.Action = guard.OutcomeIntervened
		resp.Outputs = outputs
	}
	return resp, nil
}

// assess adds findings to the assessment under their policy.
func (s *Server) assess(a *assessment, fs []guard.Finding) {
	for _, f := range fs {
		act := bedrockAction(f.Action)
		switch f.Policy {
		case guard.PolicySensitiveInformation:
			if a.SensitiveInformationPolicy == nil {
				a.SensitiveInformationPolicy = &sensitiveAssessment{}
			}
			sp := a.SensitiveInformationPolicy
			if s.piiTypes[f.Type] {
				sp.PIIEntities = append(sp.PIIEntities, piiEntity{Type: f.Type, Action: act})
			} else {
				sp.Regexes = append(sp.Regexes, regexMatch{Name: f.Type, Action: act})
			}
		case guard.PolicyWords:
			if a.WordPolicy == nil {
				a.WordPolicy = &wordAssessment{}
			}
			a.WordPolicy.CustomWords = append(a.WordPolicy.CustomWords, customWord{Name: f.Type, Action: act})
		case guard.PolicyTopics:
			if a.TopicPolicy == nil {
				a.TopicPolicy = &topicAssessment{}
			}
			a.TopicPolicy.Topics = append(a.TopicPolicy.Topics, topic{Name: f.Type, Type: "DENY", Action: act})
		case guard.PolicyPromptAttack:
			if a.ContentPolicy == nil {
				a.ContentPolicy = &contentAssessment{}
			}
			a.ContentPolicy.Filters = append(a.ContentPolicy.Filters, contentFilter{Type: f.Type, Confidence: "HIGH", Action: act})
		}
	}
}
