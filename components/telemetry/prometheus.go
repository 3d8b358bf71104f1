package telemetry

// PromType is a Prometheus metric type.
type PromType string

const (
	Counter   PromType = "counter"
	Gauge     PromType = "gauge"
	Histogram PromType = "histogram"
)

// PromMetric is a metric as a Prometheus endpoint exposes it.
type PromMetric struct {
	// Name is the family name as exposed. A counter's samples carry it
	// as is for the Go client (the gateway registers names ending in
	// _total); vLLM's Python client appends _total to the counter's name,
	// and Name is then the exposed one (vllm:prompt_tokens_total).
	Name   string
	Type   PromType
	Labels []string
	Help   string
}

// Scrape jobs: the Prometheus job names, which are also the log streams of
// the metrics log group and the label the metric declarations match.
const (
	JobVLLM    = "vllm"
	JobGateway = "guardrail"
)

// GatewayPrometheusMetrics is every metric the guardrail gateway registers
// (cmd/guardrail/internal/proxy/metrics.go newMetrics), with its labels.
// The gateway's metrics_names_test.go checks it against the code.
// Histograms are listed for completeness: the CloudWatch agent drops them
// (plugins/inputs/prometheus/metrics_filter.go), so the gateway's latencies
// reach CloudWatch through the audit log's metric filters instead
// (GatewayAuditFilters).
func GatewayPrometheusMetrics() []PromMetric {
	return []PromMetric{
		{Name: "guardrail_requests_total", Type: Counter, Labels: []string{"route", "status"},
			Help: "requests handled, by route (/v1/chat/completions, /v1/completions, /v1/models, /v1/guardrail/apply, other) and HTTP status returned"},
		{Name: "guardrail_interventions_total", Type: Counter, Labels: []string{"policy", "type", "source", "action"},
			Help: "findings acted upon, by policy, finding type, source (INPUT, OUTPUT) and action (BLOCKED, ANONYMIZED, DETECTED)"},
		{Name: "guardrail_request_duration_seconds", Type: Histogram, Labels: []string{"route"},
			Help: "non-streaming request duration, model time included"},
		{Name: "guardrail_stream_first_byte_seconds", Type: Histogram, Labels: []string{"route"},
			Help: "time to the first streamed event written to the client"},
		{Name: "guardrail_upstream_errors_total", Type: Counter, Labels: []string{"route", "kind"},
			Help: "vLLM failures by kind: connect, status_5xx, read, parse, too_large"},
		{Name: "guardrail_fail_open_total", Type: Counter, Labels: []string{"route", "source"},
			Help: "texts passed unchecked because a check failed in fail-open mode"},
		{Name: "guardrail_check_duration_seconds", Type: Histogram, Labels: []string{"source"},
			Help: "time in the policy engine per non-streaming request and direction: the latency the gateway adds"},
		{Name: "guardrail_classifier_duration_seconds", Type: Histogram, Labels: []string{"source", "outcome"},
			Help: "time waiting for the guard model (policy guardModel), by outcome passed, blocked or error: the latency the model step adds"},
		{Name: "guardrail_open_streams", Type: Gauge, Labels: nil,
			Help: "streaming responses in progress"},
	}
}

// VLLMPrometheusMetrics are the vLLM V1 metrics the catalog uses, as vLLM
// 0.11 exposes them on /metrics (vllm/v1/metrics/loggers.py,
// PrometheusStatLogger; labels model_name and engine on every one). /metrics
// needs no API key: vLLM's API-key middleware checks only paths under /v1
// (vllm/entrypoints/openai/api_server.py, "if not url_path.startswith
// ("/v1")"). vllm:gpu_cache_usage_perc, the pre-0.9.2 name of the KV-cache
// gauge, is hidden in 0.11 unless --show-hidden-metrics-for-version=0.10.
// The latency histograms (time to first token, e2e latency) are listed but
// never reach CloudWatch through the agent, which drops histograms.
func VLLMPrometheusMetrics() []PromMetric {
	l := []string{"model_name", "engine"}
	return []PromMetric{
		{Name: "vllm:num_requests_running", Type: Gauge, Labels: l, Help: "requests in model execution batches"},
		{Name: "vllm:num_requests_waiting", Type: Gauge, Labels: l, Help: "requests waiting to be processed"},
		{Name: "vllm:kv_cache_usage_perc", Type: Gauge, Labels: l, Help: "KV-cache usage; 1 means 100 percent"},
		{Name: "vllm:prompt_tokens_total", Type: Counter, Labels: l, Help: "prefill tokens processed"},
		{Name: "vllm:generation_tokens_total", Type: Counter, Labels: l, Help: "generation tokens processed"},
		{Name: "vllm:request_success_total", Type: Counter, Labels: append(append([]string(nil), l...), "finished_reason"),
			Help: "finished requests by reason (stop, length, abort)"},
		{Name: "vllm:num_preemptions_total", Type: Counter, Labels: l, Help: "preemptions: the KV cache ran out and a request was evicted"},
		{Name: "vllm:time_to_first_token_seconds", Type: Histogram, Labels: l, Help: "time to first token"},
		{Name: "vllm:e2e_request_latency_seconds", Type: Histogram, Labels: l, Help: "end-to-end request latency"},
	}
}
