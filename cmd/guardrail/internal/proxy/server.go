// Package proxy is the guardrail gateway: a reverse proxy in front of vLLM's
// OpenAI-compatible API that checks every prompt before the model sees it
// and every answer (reasoning included) before the client sees it, using a
// guard.Checker.
//
// Routes:
//
//	POST /v1/chat/completions   checked, streaming or not
//	POST /v1/completions        checked, streaming or not
//	GET  /v1/models[/...]       passed through
//	POST /v1/guardrail/apply    Bedrock ApplyGuardrail-style check, no model call
//	GET  /healthz               liveness; ?upstream=1 also probes vLLM's /health
//	GET  /readyz                /healthz?upstream=1: healthy only when vLLM is
//	GET  /metrics               Prometheus metrics of the gateway's own registry
//
// All /v1/ routes require a client API key (Authorization: Bearer ...).
package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// FailMode is what the gateway does when the upstream answer or a check
// cannot be completed.
type FailMode string

const (
	// FailClosed answers with an OpenAI-shaped error and never passes
	// unchecked text. The default.
	FailClosed FailMode = "closed"
	// FailOpen passes the text through unchecked, and records that it did
	// in the metrics and the audit log.
	FailOpen FailMode = "open"
)

// StreamMode is how streamed answers are checked.
type StreamMode string

const (
	// StreamSync releases text only after it has been checked and masked,
	// holding back Checker.Holdback(Output) bytes. The default.
	StreamSync StreamMode = "sync"
	// StreamAsync passes chunks on at once, unchanged, and checks a copy;
	// a violation cuts the stream. No masking (as in Bedrock).
	StreamAsync StreamMode = "async"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes         = 4 << 20
	DefaultMaxResponseBytes     = 64 << 20
	DefaultUpstreamHeaderWait   = 10 * time.Minute
	DefaultHealthTimeout        = 2 * time.Second
	defaultMaxIdleConnsPerHost  = 256
	defaultUpstreamDialTimeout  = 5 * time.Second
	defaultUpstreamIdleConnTime = 90 * time.Second
)

// DefaultPIITypes are the engine's built-in sensitive information types.
// The apply endpoint reports these as piiEntities and every other
// sensitiveInformationPolicy finding as a custom regex, as Bedrock does.
var DefaultPIITypes = []string{"CN_RESIDENT_ID", "CN_MOBILE", "BANK_CARD", "EMAIL", "IPV4", "AWS_ACCESS_KEY"}

// Options configures a Server. The blocked messages are not here: they
// come from the Checker, which owns the policy.
type Options struct {
	// Upstream is vLLM's base URL, e.g. http://10.0.1.5:8000 (with or
	// without a trailing /v1; the client's path is appended to it).
	Upstream *url.URL
	// UpstreamAPIKey replaces the client's Authorization header towards
	// vLLM (vLLM's --api-key); empty sends none.
	UpstreamAPIKey string
	// APIKeys are the keys clients may present. At least one is required:
	// a guardrail that anyone can reach past is not one.
	APIKeys []string

	FailMode   FailMode   // default FailClosed
	StreamMode StreamMode // default StreamSync
	// SkipReasoningScan turns off the check of reasoning fields (the
	// policy's scanReasoning: false). The zero value scans, so that
	// forgetting the option cannot leak reasoning unchecked. Reasoning
	// embedded in content as <think>...</think> is always checked with the
	// content: it cannot be told apart before the </think> arrives.
	SkipReasoningScan bool
	// StripReasoning removes reasoning fields and the <think> part of the
	// content from answers.
	StripReasoning bool

	// MaxBodyBytes limits a client request body (default 4 MiB).
	MaxBodyBytes int64
	// MaxResponseBytes limits a non-streamed upstream answer (default
	// 64 MiB).
	MaxResponseBytes int64
	// UpstreamHeaderTimeout bounds the wait for vLLM's response headers.
	// A non-streamed DeepSeek-R1 answer only gets its headers once the whole
	// reasoning is done, so the default is generous (10 minutes).
	UpstreamHeaderTimeout time.Duration

	// Classifier is the optional model step (a guard model such as
	// Qwen3Guard-Gen), asked after the deterministic check passes a prompt
	// or an answer; nil turns it off.
	Classifier guard.Classifier
	// ClassifierFailMode is what a classifier error or timeout means:
	// FailClosed refuses the text (guardrail_unavailable), FailOpen lets
	// it through and records it. Default: FailMode.
	ClassifierFailMode FailMode
	// ClassifierHold makes sync streaming hold a whole answer until the
	// classifier has judged it, as a non-streamed answer is. By default
	// the answer is released as the rules allow and judged when it ends;
	// a verdict to block then ends the stream with the blocked message.
	ClassifierHold bool

	// PIITypes are the built-in PII types (default DefaultPIITypes).
	PIITypes []string
	// Transport overrides the upstream transport (tests, benchmarks).
	Transport http.RoundTripper
	// Now overrides the clock (tests).
	Now func() time.Time
}

// Server is the gateway's http.Handler.
type Server struct {
	checker  safeChecker
	opts     Options
	upstream *url.URL
	client   *http.Client
	auth     *authenticator
	metrics  *metrics
	audit    *slog.Logger
	metricsH http.Handler
	piiTypes map[string]bool
	now      func() time.Time
}

// New returns the gateway. reg receives the gateway's metrics and is what
// /metrics serves; nil creates a fresh registry. audit receives one record
// per request; nil discards them.
func New(checker guard.Checker, opts Options, reg *prometheus.Registry, audit *slog.Logger) (*Server, error) {
	if checker == nil {
		return nil, errors.New("proxy: no checker")
	}
	if opts.Upstream == nil || opts.Upstream.Scheme == "" || opts.Upstream.Host == "" {
		return nil, errors.New("proxy: the upstream URL must be absolute, e.g. http://vllm:8000")
	}
	if opts.Upstream.Scheme != "http" && opts.Upstream.Scheme != "https" {
		return nil, fmt.Errorf("proxy: upstream scheme %q: want http or https", opts.Upstream.Scheme)
	}
	auth, err := newAuthenticator(opts.APIKeys)
	if err != nil {
		return nil, err
	}
	switch opts.FailMode {
	case "":
		opts.FailMode = FailClosed
	case FailClosed, FailOpen:
	default:
		return nil, fmt.Errorf("proxy: fail mode %q: want %q or %q", opts.FailMode, FailClosed, FailOpen)
	}
	switch opts.ClassifierFailMode {
	case "":
		opts.ClassifierFailMode = opts.FailMode
	case FailClosed, FailOpen:
	default:
		return nil, fmt.Errorf("proxy: classifier fail mode %q: want %q or %q", opts.ClassifierFailMode, FailClosed, FailOpen)
	}
	switch opts.StreamMode {
	case "":
		opts.StreamMode = StreamSync
	case StreamSync, StreamAsync:
	default:
		return nil, fmt.Errorf("proxy: stream mode %q: want %q or %q", opts.StreamMode, StreamSync, StreamAsync)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.UpstreamHeaderTimeout <= 0 {
		opts.UpstreamHeaderTimeout = DefaultUpstreamHeaderWait
	}
	if opts.PIITypes == nil {
		opts.PIITypes = DefaultPIITypes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if audit == nil {
		audit = slog.New(slog.DiscardHandler)
	}
	transport := opts.Transport
	if transport == nil {
		transport = NewTransport(opts.UpstreamHeaderTimeout)
	}
	s := &Server{
		checker:  safeChecker{c: checker},
		opts:     opts,
		upstream: opts.Upstream,
		// No client timeout: streams last as long as the model writes;
		// the client's own cancellation ends them (request context).
		client:   &http.Client{Transport: transport, CheckRedirect: noRedirects},
		auth:     auth,
		metrics:  m,
		audit:    audit,
		metricsH: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		piiTypes: map[string]bool{},
		now:      opts.Now,
	}
	for _, t := range opts.PIITypes {
		s.piiTypes[t] = true
	}
	return s, nil
}

// noRedirects returns the upstream's redirect to the client rather than
// following it with the upstream key attached.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewTransport is the upstream transport: keep-alive connections, enough
// idle ones per host that 64 concurrent clients (and bursts above) reuse
// connections instead of dialing, bounded dial and TLS times, and a bound
// on the wait for response headers.
func NewTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		// vLLM runs in the same VPC; an HTTP(S)_PROXY meant for the
		// internet must not capture it.
		Proxy:                 nil,
		DialContext:           (&netDialer).DialContext,
		MaxIdleConns:          2 * defaultMaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   defaultMaxIdleConnsPerHost,
		IdleConnTimeout:       defaultUpstreamIdleConnTime,
		TLSHandshakeTimeout:   defaultUpstreamDialTimeout,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		// The gateway reads every byte to check it; compression would only
		// cost CPU on both sides of a VPC-local hop.
		DisableCompression: true,
	}
}

// Route names, used as metric labels and in the audit log.
const (
	routeChat        = "/v1/chat/completions"
	routeCompletions = "/v1/completions"
	routeModels      = "/v1/models"
	routeApply       = "/v1/guardrail/apply"
	routeOther       = "other"
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/healthz":
		q := r.URL.Query().Get("upstream")
		s.handleHealth(w, r, q == "1" || q == "true")
		return
	case path == "/readyz":
		// /healthz?upstream=1 without a query string, for load balancer
		// health checks that take a path only.
		s.handleHealth(w, r, true)
		return
	case path == "/metrics":
		s.metricsH.ServeHTTP(w, r)
		return
	}

	rec := s.newRecord(r)
	w.Header().Set("X-Request-Id", rec.requestID)
	defer s.finish(rec)

	switch {
	case path == routeChat:
		rec.route = routeChat
		s.serveChecked(w, r, rec, chatEndpoint)
	case path == routeCompletions:
		rec.route = routeCompletions
		s.serveChecked(w, r, rec, completionEndpoint)
	case path == routeModels || strings.HasPrefix(path, routeModels+"/"):
		rec.route = routeModels
		s.serveModels(w, r, rec)
	case path == routeApply:
		rec.route = routeApply
		s.serveApply(w, r, rec)
	default:
		rec.route = routeOther
		s.writeError(w, rec, http.StatusNotFound, "not_found_error", "not_found", "no such route: "+r.Method+" "+path)
	}
}
