package proxy

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// Outcomes recorded in the audit log.
const (
	outcomePassed       = "passed"       // checked, nothing acted upon
	outcomeDetected     = "detected"     // findings reported but not acted upon (NONE action, or async mode)
	outcomeAnonymized   = "anonymized"   // masked, then passed
	outcomeBlocked      = "blocked"      // replaced by the blocked message
	outcomeFailedOpen   = "failed_open"  // a check failed and the text passed unchecked
	outcomeError        = "error"        // an error answer (upstream or check failure, fail-closed)
	outcomeUnauthorized = "unauthorized" // missing or wrong API key
	outcomeBadRequest   = "bad_request"  // malformed or oversized request
	outcomeClientGone   = "client_closed"
	outcomeUpstream4xx  = "upstream_rejected" // vLLM refused the request (4xx), passed on
	outcomeProxied      = "proxied"           // a route that is not checked (/v1/models)
)

// Actions as reported in metrics and the audit log: what the gateway did.
const (
	tookBlocked    = "BLOCKED"
	tookAnonymized = "ANONYMIZED"
	tookDetected   = "DETECTED"
)

type findingKey struct {
	source guard.Source
	policy guard.Policy
	typ    string
	action string
}

// record accumulates what the audit log and the metrics say about one
// request. It holds finding types and counts, never text: the audit log
// must not become a second copy of the sensitive data it reports on.
type record struct {
	start     time.Time
	requestID string
	route     string
	method    string
	model     string
	stream    bool
	status    int
	outcome   string // set for terminal errors; derived otherwise
	errKind   string
	upstream  int // upstream HTTP status, 0 if not called
	ttfb      time.Duration
	failOpen  []guard.Source
	findings  map[findingKey]int
	// intervenedOut/In: a finding was acted upon (masked or blocked).
	intervenedIn  bool
	intervenedOut bool
	blocked       guard.Source // source of the block, "" if none
	// classifier is the time spent waiting for the guard model.
	classifier time.Duration
	// prompt is the request's text, the context of an answer for the
	// guard model. Never logged.
	prompt string
}

// newRecord starts the record for r. The request id is the client's
// X-Request-Id when it looks like one, so that a caller can correlate its
// logs with ours; otherwise a random one.
func (s *Server) newRecord(r *http.Request) *record {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		var b [12]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		id = hex.EncodeToString(b[:])
	}
	return &record{start: s.now(), requestID: id, method: r.Method, findings: map[findingKey]int{}}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// setModel records the requested model name, truncated: it is client
// input and only there to tell deployments apart.
func (rec *record) setModel(m string) {
	if len(m) > 128 {
		m = m[:128]
	}
	rec.model = m
}

// add records findings of one source. applied says whether ANONYMIZE
// findings were actually masked (not in async streaming).
func (rec *record) add(src guard.Source, fs []guard.Finding, applied bool) {
	for _, f := range fs {
		took := tookDetected
		switch f.Action {
		case guard.ActionBlock:
			took = tookBlocked
		case guard.ActionAnonymize:
			if applied {
				took = tookAnonymized
			}
		}
		if took != tookDetected {
			if src == guard.Input {
				rec.intervenedIn = true
			} else {
				rec.intervenedOut = true
			}
		}
		rec.findings[findingKey{source: src, policy: f.Policy, typ: f.Type, action: took}]++
	}
}

// intervened reports whether the guardrail changed anything the client or
// the model sees: Bedrock's GUARDRAIL_INTERVENED.
func (rec *record) intervened() bool { return rec.intervenedIn || rec.intervenedOut }

// source is the direction reported in the response's guardrail field: the
// one that blocked, else OUTPUT when the answer was changed, else INPUT.
func (rec *record) source() guard.Source {
	switch {
	case rec.blocked != "":
		return rec.blocked
	case rec.intervenedOut:
		return guard.Output
	default:
		return guard.Input
	}
}

// policies lists "policy/type" of the findings acted upon, sorted, without
// duplicates: what the X-Guardrail-Policy header and the guardrail field
// carry.
func (rec *record) policies() []string {
	var out []string
	for k := range rec.findings {
		if k.action == tookDetected {
			continue
		}
		out = append(out, string(k.policy)+"/"+k.typ)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (rec *record) result() string {
	switch {
	case rec.outcome != "":
		return rec.outcome
	case rec.blocked != "":
		return outcomeBlocked
	case rec.intervened():
		return outcomeAnonymized
	case len(rec.failOpen) > 0:
		return outcomeFailedOpen
	case len(rec.findings) > 0:
		return outcomeDetected
	default:
		return outcomePassed
	}
}

// auditFinding is one line of the interventions list in the audit record.
type auditFinding struct {
	Source string `json:"source"`
	Policy string `json:"policy"`
	Type   string `json:"type"`
	Action string `json:"action"`
	Count  int    `json:"count"`
}

// finish writes the audit record and updates the metrics.
func (s *Server) finish(rec *record) {
	elapsed := s.now().Sub(rec.start)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.metrics.requests.WithLabelValues(rec.route, statusLabel(rec.status)).Inc()
	if rec.stream {
		if rec.ttfb > 0 {
			s.metrics.ttfb.WithLabelValues(rec.route).Observe(rec.ttfb.Seconds())
		}
	} else {
		s.metrics.latency.WithLabelValues(rec.route).Observe(elapsed.Seconds())
	}
	for _, src := range rec.failOpen {
		s.metrics.failOpen.WithLabelValues(rec.route, string(src)).Inc()
	}

	list := make([]auditFinding, 0, len(rec.findings))
	counts := map[string]int{}
	for k, n := range rec.findings {
		s.metrics.interventions.WithLabelValues(string(k.policy), k.typ, string(k.source), k.action).Add(float64(n))
		list = append(list, auditFinding{Source: string(k.source), Policy: string(k.policy), Type: k.typ, Action: k.action, Count: n})
		counts[string(k.source)+"_findings"] += n
		counts[k.action] += n
	}
	slices.SortFunc(list, func(a, b auditFinding) int {
		return cmp.Compare(a.Source+a.Policy+a.Type+a.Action, b.Source+b.Policy+b.Type+b.Action)
	})

	attrs := []slog.Attr{
		slog.String("request_id", rec.requestID),
		slog.String("route", rec.route),
		slog.String("method", rec.method),
		slog.String("model", rec.model),
		slog.Bool("stream", rec.stream),
		slog.Int("status", rec.status),
		slog.String("outcome", rec.result()),
		slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
	}
	if rec.stream {
		attrs = append(attrs,
			slog.String("stream_mode", string(s.opts.StreamMode)),
			slog.Float64("ttfb_ms", float64(rec.ttfb.Microseconds())/1000))
	}
	if rec.intervened() {
		attrs = append(attrs, slog.String("source", string(rec.source())))
	}
	if ps := rec.policies(); len(ps) > 0 {
		attrs = append(attrs, slog.Any("policies", ps))
	}
	if len(list) > 0 {
		attrs = append(attrs, slog.Any("interventions", list), slog.Any("counts", counts))
	}
	if rec.upstream != 0 {
		attrs = append(attrs, slog.Int("upstream_status", rec.upstream))
	}
	if rec.classifier > 0 {
		attrs = append(attrs, slog.Float64("classifier_ms", float64(rec.classifier.Microseconds())/1000))
	}
	if len(rec.failOpen) > 0 {
		attrs = append(attrs, slog.Bool("fail_open", true))
	}
	if rec.errKind != "" {
		attrs = append(attrs, slog.String("error", rec.errKind))
	}
	s.audit.LogAttrs(context.Background(), slog.LevelInfo, "guardrail request", attrs...)
}
