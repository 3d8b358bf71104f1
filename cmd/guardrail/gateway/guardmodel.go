package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardmodel"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/proxy"
)

// DefaultGuardModel is the served model name the model step asks for when
// the policy has no guardModel section and the caller names none.
const DefaultGuardModel = "Qwen/Qwen3Guard-Gen-0.6B"

// Bounds of a guard model's maxChars, the same as the policy's
// guardModel.maxChars (policy/parse.go).
const (
	MinGuardMaxChars = 100
	MaxGuardMaxChars = 1 << 20
)

// GuardModel is how the caller reaches the guard model (Qwen3Guard-Gen
// behind vLLM's OpenAI-compatible API) and what it overrides in the
// policy's guardModel section. cmd/guardrail fills it from its -guard-*
// flags, cmd/sagemaker-serve from the guard vLLM it runs itself: both get
// the same section, the same default mapping and the same classifier.
type GuardModel struct {
	// Endpoint overrides guardModel.endpoint. With a policy that has no
	// guardModel section, a non-empty Endpoint turns the model step on with
	// the default mapping (policy.DefaultGuardCategories, the policy's
	// failMode).
	Endpoint string
	// Model overrides guardModel.model; with no section the default is
	// DefaultGuardModel.
	Model string
	// MaxChars overrides guardModel.maxChars (runes sent per message) when
	// above 0; it must then be within MinGuardMaxChars..MaxGuardMaxChars.
	MaxChars int
	// APIKey returns the guard vLLM's key, given the section's apiKeyEnv
	// ("" when the section names none, or there is no section). nil sends
	// no key.
	APIKey func(apiKeyEnv string) (string, error)
	// Transport overrides the HTTP transport to the guard model (tests).
	Transport http.RoundTripper
}

// GuardModelSummary is what the model step was built with, for the
// caller's start-up log.
type GuardModelSummary struct {
	Endpoint      string
	Model         string
	MaxChars      int
	Timeout       time.Duration
	FailMode      string // closed or open
	Streaming     string // end or hold
	Controversial string // loose or strict
	Input, Output bool
	// FromPolicy says whether the mapping is the policy's guardModel
	// section (true) or the default one (false).
	FromPolicy bool
}

// NewGuardModel builds the model step of policy p with g's overrides. It
// returns nil, nil, nil when there is none: p has no guardModel section and
// g.Endpoint is empty.
func NewGuardModel(p *policy.Policy, g GuardModel) (*guardmodel.Classifier, *policy.GuardModel, error) {
	sec := p.GuardModel
	if sec == nil {
		if g.Endpoint == "" {
			return nil, nil, nil
		}
		// An endpoint alone: the default mapping, parsed from a minimal
		// section so that it gets exactly the defaults a written section
		// would, with the policy's fail mode.
		def, err := policy.Parse([]byte("guardModel: {model: "+DefaultGuardModel+"}\nfailMode: "+string(p.FailMode)+"\n"), "")
		if err != nil {
			return nil, nil, fmt.Errorf("guard model defaults: %w", err)
		}
		sec = def.GuardModel
	}
	gm := *sec
	if g.Endpoint != "" {
		gm.Endpoint = g.Endpoint
	}
	if g.Model != "" {
		gm.Model = g.Model
	}
	if g.MaxChars != 0 {
		if g.MaxChars < MinGuardMaxChars || g.MaxChars > MaxGuardMaxChars {
			return nil, nil, fmt.Errorf("guard model maxChars %d is out of range %d..%d", g.MaxChars, MinGuardMaxChars, MaxGuardMaxChars)
		}
		gm.MaxChars = g.MaxChars
	}
	if gm.Endpoint == "" {
		return nil, nil, errors.New("the policy has a guardModel section but no endpoint: set guardModel.endpoint or -guard-endpoint")
	}
	key := ""
	if g.APIKey != nil {
		var err error
		if key, err = g.APIKey(gm.APIKeyEnv); err != nil {
			return nil, nil, fmt.Errorf("guard model API key: %w", err)
		}
	}
	client, err := guardmodel.NewClient(guardmodel.ClientConfig{Endpoint: gm.Endpoint, Model: gm.Model, APIKey: key,
		Timeout: gm.Timeout, MaxChars: gm.MaxChars, Transport: g.Transport})
	if err != nil {
		return nil, nil, err
	}
	return guardmodel.NewClassifier(client, &gm), &gm, nil
}

// SetGuardModel puts the model step into the proxy's options: the
// classifier, its own fail mode, and whether a streamed answer is held
// until it is judged. k nil leaves o as it is.
func SetGuardModel(o *proxy.Options, k *guardmodel.Classifier, gm *policy.GuardModel) {
	if k == nil || gm == nil {
		return
	}
	o.Classifier = k
	o.ClassifierFailMode = proxy.FailMode(gm.FailMode)
	o.ClassifierHold = gm.Streaming == policy.GuardStreamHold
}

func summarize(gm *policy.GuardModel, fromPolicy bool) *GuardModelSummary {
	return &GuardModelSummary{
		Endpoint: gm.Endpoint, Model: gm.Model, MaxChars: gm.MaxChars, Timeout: gm.Timeout,
		FailMode: string(gm.FailMode), Streaming: gm.Streaming, Controversial: gm.Controversial,
		Input: gm.Input, Output: gm.Output, FromPolicy: fromPolicy,
	}
}
