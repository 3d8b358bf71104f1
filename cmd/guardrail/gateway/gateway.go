// Package gateway builds the guardrail gateway's HTTP handler from a policy
// file, for programs outside cmd/guardrail: Go's internal-package rule keeps
// them from importing cmd/guardrail/internal/..., and they must apply the
// same policy with the same code, not a copy. The SageMaker entry point
// (cmd/sagemaker-serve) is the first such program.
//
// New does what cmd/guardrail's main does between reading its flags and
// listening: policy.Load, detect.New, the policy's gateway settings mapped
// to proxy.Options, proxy.New. The handler serves the gateway's routes
// (/v1/chat/completions, /v1/completions, /v1/models, /v1/guardrail/apply,
// /healthz, /metrics) with the same checks and blocked-response shapes.
//
// NewGuardModel builds the optional guard model step (Qwen3Guard-Gen behind
// vLLM) the way cmd/guardrail's -guard-* flags do; New takes it through
// Options.GuardModel.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/detect"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/proxy"
)

// Defaults of the gateway, the same as cmd/guardrail's flags.
const (
	DefaultMaxBodyBytes          = proxy.DefaultMaxBodyBytes
	DefaultUpstreamHeaderTimeout = proxy.DefaultUpstreamHeaderWait
)

// Options are what the caller decides; everything else comes from the
// policy file.
type Options struct {
	// Upstream is vLLM's base URL, e.g. http://127.0.0.1:8000.
	Upstream *url.URL
	// UpstreamAPIKey is vLLM's --api-key (VLLM_API_KEY); empty sends none.
	UpstreamAPIKey string
	// APIKeys are the client keys the handler accepts as bearer tokens. At
	// least one is required.
	APIKeys []string
	// MaxBodyBytes limits a request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// UpstreamHeaderTimeout bounds the wait for vLLM's response headers
	// (default DefaultUpstreamHeaderTimeout).
	UpstreamHeaderTimeout time.Duration
	// Registry receives the gateway's metrics; nil makes a fresh one.
	Registry *prometheus.Registry
	// Audit receives one JSON record per request; nil discards them.
	Audit *slog.Logger
	// Transport overrides the upstream transport (tests).
	Transport http.RoundTripper
	// GuardModel, if set, turns the policy's model step on with these
	// overrides (see NewGuardModel): the policy's guardModel section, or the
	// default mapping when it has none. nil leaves the model step off, even
	// when the policy has a guardModel section (Gateway.PolicyGuardModel
	// then says so), since nothing would say where the model runs.
	GuardModel *GuardModel
}

// Gateway is a ready handler and what the policy set, for the caller's
// start-up log.
type Gateway struct {
	Handler http.Handler

	PolicyName     string
	FailMode       string // closed or open
	StreamMode     string // sync or async
	ScanReasoning  bool
	StripReasoning bool
	// OutputHoldback is how many bytes of a streamed answer sync mode holds
	// back (the added time to first token).
	OutputHoldback int
	// GuardModel is the model step as built; nil when it is off.
	GuardModel *GuardModelSummary
	// PolicyGuardModel says whether the policy file has a guardModel
	// section (whether or not Options.GuardModel turned it on).
	PolicyGuardModel bool
}

// New loads and validates the policy file at policyPath and builds the
// gateway handler in front of opts.Upstream.
func New(policyPath string, opts Options) (*Gateway, error) {
	if policyPath == "" {
		return nil, errors.New("gateway: no policy file")
	}
	p, err := policy.Load(policyPath)
	if err != nil {
		return nil, err
	}
	engine, err := detect.New(p)
	if err != nil {
		return nil, fmt.Errorf("building the policy engine: %w", err)
	}
	o := ProxyOptions(p)
	o.Upstream = opts.Upstream
	o.UpstreamAPIKey = opts.UpstreamAPIKey
	o.APIKeys = opts.APIKeys
	o.MaxBodyBytes = opts.MaxBodyBytes
	o.UpstreamHeaderTimeout = opts.UpstreamHeaderTimeout
	o.Transport = opts.Transport
	var summary *GuardModelSummary
	if opts.GuardModel != nil {
		k, gm, err := NewGuardModel(p, *opts.GuardModel)
		if err != nil {
			return nil, fmt.Errorf("guard model step: %w", err)
		}
		if k == nil {
			return nil, errors.New("guard model step: no endpoint: the policy has no guardModel section and GuardModel.Endpoint is empty")
		}
		SetGuardModel(&o, k, gm)
		summary = summarize(gm, p.GuardModel != nil)
	}
	h, err := proxy.New(engine, o, opts.Registry, opts.Audit)
	if err != nil {
		return nil, fmt.Errorf("building the gateway: %w", err)
	}
	return &Gateway{
		Handler:          h,
		PolicyName:       p.Name,
		FailMode:         string(o.FailMode),
		StreamMode:       string(o.StreamMode),
		ScanReasoning:    !o.SkipReasoningScan,
		StripReasoning:   o.StripReasoning,
		OutputHoldback:   engine.Holdback(guard.Output),
		GuardModel:       summary,
		PolicyGuardModel: p.GuardModel != nil,
	}, nil
}

// ProxyOptions translates the policy's gateway settings (fail mode,
// streaming mode, reasoning, PII types) into the proxy's options: the one
// mapping cmd/guardrail and cmd/sagemaker-serve both use.
func ProxyOptions(p *policy.Policy) proxy.Options {
	o := proxy.Options{
		FailMode:          proxy.FailClosed,
		StreamMode:        proxy.StreamSync,
		SkipReasoningScan: !p.Reasoning.ScanReasoning,
		StripReasoning:    p.Reasoning.StripReasoning,
	}
	if p.FailMode == policy.FailOpen {
		o.FailMode = proxy.FailOpen
	}
	if p.Streaming.Mode == policy.StreamAsync {
		o.StreamMode = proxy.StreamAsync
	}
	for _, t := range policy.PIITypes {
		o.PIITypes = append(o.PIITypes, string(t))
	}
	return o
}
