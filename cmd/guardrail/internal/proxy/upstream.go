package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

var netDialer = net.Dialer{Timeout: defaultUpstreamDialTimeout, KeepAlive: 30 * time.Second}

// upstreamURL maps a client path onto the upstream base URL. A base that
// already ends in /v1 (as OpenAI base URLs do) does not get a second one.
func (s *Server) upstreamURL(path, rawQuery string) string {
	u := *s.upstream
	base := strings.TrimSuffix(u.Path, "/")
	if strings.HasSuffix(base, "/v1") && strings.HasPrefix(path, "/v1/") {
		path = path[len("/v1"):]
	}
	u.Path = base + path
	u.RawPath = ""
	u.RawQuery = rawQuery
	return u.String()
}

// forward sends a request to vLLM. The client's Authorization is never
// forwarded: vLLM gets its own key. The request context is the client's,
// so a client that goes away cancels the generation upstream and frees the
// GPU.
func (s *Server) forward(ctx context.Context, method, path, rawQuery string, body []byte, rec *record, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.upstreamURL(path, rawQuery), rd)
	if err != nil {
		return nil, fmt.Errorf("building upstream request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if s.opts.UpstreamAPIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.UpstreamAPIKey)
	}
	req.Header.Set("X-Request-Id", rec.requestID)
	req.Header.Set("User-Agent", "deepseek-r1-cn-guardrail")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling upstream: %w", err)
	}
	rec.upstream = resp.StatusCode
	return resp, nil
}

// upstreamFailed answers a failed upstream call: 502 in both fail modes,
// since there is no answer to let through; a client that went away gets
// nothing (and is recorded as such).
func (s *Server) upstreamFailed(w http.ResponseWriter, r *http.Request, rec *record, kind string, err error) {
	if r.Context().Err() != nil {
		rec.outcome = outcomeClientGone
		rec.status = 499 // nginx's "client closed request"; nothing is written
		return
	}
	s.metrics.upstreamErrs.WithLabelValues(rec.route, kind).Inc()
	msg := "the model server is unavailable"
	code := "upstream_unavailable"
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		msg, code = "the model server did not answer in time", "upstream_timeout"
	}
	s.writeError(w, rec, http.StatusBadGateway, "upstream_error", code, msg)
	rec.errKind = kind
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// passUpstreamError relays a non-200 upstream answer (vLLM's own
// OpenAI-shaped error: unknown model, context too long...) as it is. Such a
// body holds no generated text, so there is nothing to check.
func (s *Server) passUpstreamError(w http.ResponseWriter, resp *http.Response, rec *record) {
	if resp.StatusCode >= 500 {
		s.metrics.upstreamErrs.WithLabelValues(rec.route, "status_5xx").Inc()
		rec.outcome = outcomeError
		rec.errKind = "upstream_status"
	} else {
		rec.outcome = outcomeUpstream4xx
	}
	rec.status = resp.StatusCode
	copyHeader(w.Header(), resp.Header, "Content-Type", "Retry-After")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
}

func copyHeader(dst, src http.Header, names ...string) {
	for _, n := range names {
		if v := src.Values(n); len(v) > 0 {
			dst[http.CanonicalHeaderKey(n)] = append([]string(nil), v...)
		}
	}
}

// serveModels passes GET /v1/models (and /v1/models/{id}) through: model
// names are not checked content.
func (s *Server) serveModels(w http.ResponseWriter, r *http.Request, rec *record) {
	if r.Method != http.MethodGet {
		s.writeError(w, rec, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "use GET")
		return
	}
	if !s.auth.check(r) {
		s.writeError(w, rec, http.StatusUnauthorized, "authentication_error", "invalid_api_key", "missing or invalid API key")
		return
	}
	resp, err := s.forward(r.Context(), http.MethodGet, r.URL.Path, r.URL.RawQuery, nil, rec, "application/json")
	if err != nil {
		s.upstreamFailed(w, r, rec, "connect", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.passUpstreamError(w, resp, rec)
		return
	}
	rec.outcome = outcomeProxied
	rec.status = resp.StatusCode
	copyHeader(w.Header(), resp.Header, "Content-Type", "Content-Length")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// handleHealth answers the liveness probe. It needs no key, and by default
// does not touch vLLM, so that a load balancer does not take every gateway
// out when the model restarts; ?upstream=1 adds vLLM's /health, for a
// readiness probe or an operator.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request, upstream bool) {
	status := http.StatusOK
	body := `{"status":"ok"}`
	if upstream {
		if err := s.probeUpstream(r.Context()); err != nil {
			status = http.StatusServiceUnavailable
			body = `{"status":"degraded","upstream":"unreachable"}`
		} else {
			body = `{"status":"ok","upstream":"ok"}`
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

func (s *Server) probeUpstream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultHealthTimeout)
	defer cancel()
	u := *s.upstream
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1") + "/health" // vLLM serves /health at the root
	u.RawQuery = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("building health probe: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("probing upstream: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upstream health: status %d", resp.StatusCode)
	}
	return nil
}
