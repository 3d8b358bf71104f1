package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pingTimeout bounds the probe of vLLM's /health behind one /ping:
// SageMaker gives a /ping 2 seconds (awsdocs/amazon-sagemaker-developer-
// guide, doc_source/your-algorithms-inference-code.md, "How Your Container
// Should Respond to Health Check (Ping) Requests"), and a late 200 counts
// for nothing.
const pingTimeout = 1500 * time.Millisecond

// server answers SageMaker's container contract (same document): GET /ping
// and POST /invocations on one port.
type server struct {
	vllm *url.URL // vLLM's base URL on loopback
	// guard is the guard model's vLLM base URL on loopback; nil without
	// one. /ping is healthy only when it answers too.
	guard       *url.URL
	servedModel string
	maxBody     int64
	// invoke serves a rewritten /invocations request at /v1/chat/completions
	// or /v1/completions: the guardrail gateway, or a plain reverse proxy.
	invoke http.Handler
	// clientKey is the bearer token the gateway accepts; empty without it.
	clientKey string

	health    *http.Client
	ready     atomic.Bool   // vLLM has answered /health once
	readyCh   chan struct{} // closed when ready is first set
	readyOnce sync.Once
	stopping  atomic.Bool // SIGTERM received, or vLLM gone
	logger    *slog.Logger
}

// markReady records that vLLM has answered /health.
func (s *server) markReady() {
	s.ready.Store(true)
	s.readyOnce.Do(func() { close(s.readyCh) })
}

// loopbackTransport talks to vLLM on 127.0.0.1. An HTTP(S)_PROXY in the
// endpoint's environment is meant for the outside world, never for this.
func loopbackTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		DisableCompression:    true,
	}
}

// passthrough sends /invocations to vLLM as it is, without the guardrail:
// flushed as it arrives, so that a streamed answer reaches SageMaker chunk by
// chunk; the caller's cancellation cancels the generation.
func passthrough(vllm *url.URL, apiKey string, transport http.RoundTripper) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = vllm.Scheme
			pr.Out.URL.Host = vllm.Host
			pr.Out.Host = vllm.Host
			pr.Out.Header.Set("Authorization", "Bearer "+apiKey)
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the caller went away; nobody to answer
			}
			writeError(w, http.StatusBadGateway, "upstream_error", "upstream_unavailable", "the model server is unavailable")
		},
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ping":
		s.ping(w, r)
	case "/invocations":
		s.invocations(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found_error", "not_found", "no such route: "+r.Method+" "+r.URL.Path+"; this container serves GET /ping and POST /invocations")
	}
}

// ping is healthy only when vLLM is, and the guard model's vLLM when the
// container runs one: their /health, probed live and at once, so that
// SageMaker replaces an instance whose engine has died even if the vLLM
// process lingers, and so that an instance whose guard is down (being
// restarted) is not counted healthy. The body of a 200 is empty, as the
// contract asks.
func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost: // vLLM's own /ping takes POST too
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use GET /ping")
		return
	}
	if s.stopping.Load() {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "shutting_down", "the container is shutting down")
		return
	}
	if err := s.probeAll(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "model_not_ready", "the model server is not healthy yet: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

// probeAll probes vLLM and the guard model's vLLM, if any, in parallel:
// both within the one pingTimeout that SageMaker's 2 seconds allow.
func (s *server) probeAll(ctx context.Context) error {
	if s.guard == nil {
		return s.probe(ctx)
	}
	guardErr := make(chan error, 1)
	go func() { guardErr <- probeHealth(ctx, s.health, s.guard, guardName) }()
	var msgs []string
	if err := s.probe(ctx); err != nil {
		msgs = append(msgs, err.Error())
	}
	if err := <-guardErr; err != nil {
		msgs = append(msgs, err.Error())
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// probe asks vLLM's /health, which vLLM serves without its API key.
func (s *server) probe(ctx context.Context) error {
	return probeHealth(ctx, s.health, s.vllm, "vLLM")
}

// probeHealth asks the /health of the vLLM at base, within pingTimeout.
func probeHealth(ctx context.Context, client *http.Client, base *url.URL, name string) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("/health").String(), nil)
	if err != nil {
		return fmt.Errorf("building the health probe: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return errors.New(name + " does not answer")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /health answered %d", name, resp.StatusCode)
	}
	return nil
}

// watchReady polls vLLM until it is healthy, for the log and so that
// /invocations does not have to ask on every request.
func (s *server) watchReady(ctx context.Context, interval time.Duration, started time.Time) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s.probe(ctx) == nil {
			s.markReady()
			s.logger.Info("vLLM is ready", "after", time.Since(started).Round(time.Millisecond).String())
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// invocations routes an OpenAI chat or completions body to vLLM, through
// the guardrail when it is on. Streaming needs nothing more: the answer is
// vLLM's event stream, written without a Content-Length and flushed event by
// event, which Go's server sends with HTTP/1.1 chunked transfer encoding,
// the mechanism InvokeEndpointWithResponseStream relies on ("Elevating the
// generative AI experience: Introducing streaming support in Amazon
// SageMaker hosting", AWS Machine Learning Blog, 2023).
func (s *server) invocations(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use POST /invocations")
		return
	}
	if s.stopping.Load() {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "shutting_down", "the container is shutting down")
		return
	}
	if !s.ready.Load() {
		if err := s.probe(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "model_not_ready", "the model server is still starting")
			return
		}
		s.markReady()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large",
				fmt.Sprintf("the request body is larger than %d bytes", s.maxBody))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "could not read the request body")
		return
	}
	route, body, err := classify(body, s.servedModel)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_request", err.Error())
		return
	}

	out := r.Clone(r.Context())
	out.URL.Path, out.URL.RawPath, out.URL.RawQuery = route, "", ""
	out.RequestURI = ""
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.Header.Del("Content-Length")
	out.Header.Set("Content-Type", "application/json")
	// SageMaker has authenticated the caller with IAM; past this point the
	// only keys are the entry point's own.
	out.Header.Del("Authorization")
	if s.clientKey != "" {
		out.Header.Set("Authorization", "Bearer "+s.clientKey)
	}
	s.invoke.ServeHTTP(w, out)
}
