package proxy

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

// metrics are the gateway's Prometheus collectors. Label values come from
// fixed sets (routes, policies, the policy's finding types), never from
// request content, so cardinality stays bounded.
type metrics struct {
	requests      *prometheus.CounterVec
	interventions *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	ttfb          *prometheus.HistogramVec
	upstreamErrs  *prometheus.CounterVec
	failOpen      *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	openStreams   prometheus.Gauge
	classifier    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	// Requests include the model's generation time (seconds to minutes for
	// DeepSeek-R1); the check itself is measured apart, in microseconds.
	requestBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	checkBuckets := prometheus.ExponentialBuckets(5e-6, 4, 10) // 5µs .. 1.3s
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guardrail_requests_total",
			Help: "Requests handled, by route and HTTP status returned to the client.",
		}, []string{"route", "status"}),
		interventions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guardrail_interventions_total",
			Help: "Findings acted upon, by policy, finding type, source (INPUT/OUTPUT) and action taken (BLOCKED, ANONYMIZED, DETECTED).",
		}, []string{"policy", "type", "source", "action"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guardrail_request_duration_seconds",
			Help:    "Duration of non-streaming requests, from arrival to the last byte written, model time included.",
			Buckets: requestBuckets,
		}, []string{"route"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guardrail_stream_first_byte_seconds",
			Help:    "Time from the arrival of a streaming request to the first event written to the client.",
			Buckets: requestBuckets,
		}, []string{"route"}),
		upstreamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guardrail_upstream_errors_total",
			Help: "Upstream (vLLM) failures, by route and kind: connect, status_5xx, read, parse, too_large.",
		}, []string{"route", "kind"}),
		failOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guardrail_fail_open_total",
			Help: "Texts passed through unchecked because a check failed and the fail mode is open, by route and source.",
		}, []string{"route", "source"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guardrail_check_duration_seconds",
			Help:    "Time spent in the policy engine per non-streaming request and direction: the latency the gateway adds.",
			Buckets: checkBuckets,
		}, []string{"source"}),
		openStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "guardrail_open_streams",
			Help: "Streaming responses in progress.",
		}),
		classifier: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guardrail_classifier_duration_seconds",
			Help:    "Time spent waiting for the guard model, by source and outcome (passed, blocked, error): the latency the model step adds.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 14), // 1ms .. 8s
		}, []string{"source", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.interventions, m.latency, m.ttfb, m.upstreamErrs, m.failOpen, m.checkDuration, m.openStreams, m.classifier} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("proxy: registering metrics: %w", err)
		}
	}
	// The texts passed unchecked start at 0 for every route that checks
	// text: the CloudWatch agent sends a counter as the delta since its
	// previous scrape, nothing for a series it sees for the first time, so
	// the first such text would otherwise never reach the stack's
	// checks-skipped alarm.
	for _, route := range []string{routeChat, routeCompletions, routeApply} {
		for _, src := range []guard.Source{guard.Input, guard.Output} {
			m.failOpen.WithLabelValues(route, string(src))
		}
	}
	return m, nil
}

func statusLabel(code int) string { return strconv.Itoa(code) }
