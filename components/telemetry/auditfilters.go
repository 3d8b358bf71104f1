package telemetry

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// MetricFilter is a CloudWatch Logs metric filter: a JSON filter pattern on
// a log group and the metric it feeds. Unlike the agent's Prometheus path
// it sees every request, so its value metrics (latencies) keep their
// distribution and alarms can use percentiles.
type MetricFilter struct {
	// Name is the filter's name within its log group ([^:*]*, 1-512).
	Name string
	// LogGroupKey is the log group's key (LogGroup.Key).
	LogGroupKey string
	// Pattern is the JSON filter pattern.
	Pattern string
	// Value is "1" (count the events) or a $.field of the event.
	Value string
	// DefaultValue, when set, is published for periods without a matching
	// event, so that a count reads 0 rather than missing.
	DefaultValue *float64
	// Metric is the metric it publishes (namespace, name, unit).
	Metric Metric
}

// AuditFields are the audit record's fields the filters read
// (cmd/guardrail/internal/proxy/audit.go finish): the gateway's
// metrics_names_test.go checks that real records have them.
func AuditFields() []string {
	return []string{"request_id", "route", "status", "outcome", "stream", "latency_ms", "ttfb_ms"}
}

var auditField = regexp.MustCompile(`\$\.([a-z_]+)`)

// FilterFields are the audit fields a filter's pattern and value read.
func (f MetricFilter) FilterFields() []string {
	seen := map[string]bool{}
	for _, m := range auditField.FindAllStringSubmatch(f.Pattern+" "+f.Value, -1) {
		seen[m[1]] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Metric filter metric names, in the stack's namespace, without
// dimensions (a metric filter's dimensions can only be fields of the
// event, and the namespace is already the stack's).
const (
	MetricGatewayRequests     = "GatewayRequests"
	MetricGatewayServerErrors = "GatewayServerErrors"
	MetricGatewayBlocked      = "GatewayBlockedRequests"
	MetricGatewayLatency      = "GatewayLatency"
	MetricGatewayFirstByte    = "GatewayTimeToFirstByte"
)

// checkedRoutes are the routes whose latency is the model's: the pattern
// leaves /v1/models, /v1/guardrail/apply and errors for unknown paths out.
const checkedRoutes = `($.route = "/v1/chat/completions" || $.route = "/v1/completions")`

// GatewayAuditFilters are the metric filters on the gateway's audit log
// group. The patterns follow the JSON filter syntax of CloudWatch Logs
// ("Filter pattern syntax for metric filters": { $.field op value }, IS
// TRUE / IS FALSE for booleans, && and || with parentheses; a value taken
// from $.field must be matched in the pattern).
func GatewayAuditFilters(stack string) ([]MetricFilter, error) {
	ns, err := Namespace(stack)
	if err != nil {
		return nil, err
	}
	zero := 0.0
	src := "cmd/guardrail/internal/proxy/audit.go (finish): the audit record's fields"
	m := func(name, unit, stat, meaning string) Metric {
		return Metric{Namespace: ns, Name: name, Unit: unit, Statistic: stat, Meaning: meaning, Source: src, Origin: OriginLogFilter}
	}
	return []MetricFilter{
		{Name: MetricGatewayRequests, LogGroupKey: LogGatewayAudit, Pattern: `{ $.status > 0 }`, Value: "1", DefaultValue: &zero,
			Metric: m(MetricGatewayRequests, "Count", "Sum", "requests the gateway answered, any route and status")},
		{Name: MetricGatewayServerErrors, LogGroupKey: LogGatewayAudit, Pattern: `{ $.status >= 500 }`, Value: "1", DefaultValue: &zero,
			Metric: m(MetricGatewayServerErrors, "Count", "Sum", "requests answered with a 5xx: vLLM down or failing (502/503/504), or a check failing closed (500)")},
		{Name: MetricGatewayBlocked, LogGroupKey: LogGatewayAudit, Pattern: `{ $.outcome = "blocked" }`, Value: "1", DefaultValue: &zero,
			Metric: m(MetricGatewayBlocked, "Count", "Sum", "requests whose prompt or answer a policy blocked; divide by GatewayRequests for the block rate")},
		{Name: MetricGatewayLatency, LogGroupKey: LogGatewayAudit,
			Pattern: `{ $.stream IS FALSE && $.status = 200 && $.latency_ms >= 0 && ` + checkedRoutes + ` }`, Value: "$.latency_ms",
			Metric: m(MetricGatewayLatency, "Milliseconds", "p90", "latency of successful non-streaming completions as clients see them, model time and the gateway's checks included (a prompt blocked on input is fast)")},
		{Name: MetricGatewayFirstByte, LogGroupKey: LogGatewayAudit,
			Pattern: `{ $.stream IS TRUE && $.ttfb_ms > 0 && ` + checkedRoutes + ` }`, Value: "$.ttfb_ms",
			Metric: m(MetricGatewayFirstByte, "Milliseconds", "p90", "streaming time to first byte as clients see it: the model's time to first token plus queueing and the gateway's hold-back")},
	}, nil
}

// Fluent Bit record fields of the Amazon CloudWatch Observability add-on's
// application log group: its kubernetes filter runs with Merge_Log On and
// Merge_Log_Key log_processed, so a container line that is JSON (the
// gateway's audit record) arrives parsed under log_processed, beside the
// raw line (log), the CRI stream (stream: stdout or stderr) and the pod's
// kubernetes metadata (aws-observability/helm-charts,
// charts/amazon-cloudwatch-observability/values.yaml at
// amazon-cloudwatch-observability-6.4.0, containerLogs.fluentBit.config
// application-log.conf).
const (
	FluentBitParsedKey = "log_processed"
	fluentBitNamespace = "$.kubernetes.namespace_name"
	fluentBitContainer = "$.kubernetes.container_name"
)

// EKSGatewayAuditFilters are GatewayAuditFilters on the EKS add-on's
// application log group, where every container of the cluster writes: the
// same metrics, from the gateway container's records only (its namespace
// and container name), with each audit field read under log_processed
// (a top-level $.stream is the CRI stream there, not the audit record's).
func EKSGatewayAuditFilters(stack, namespace, container string) ([]MetricFilter, error) {
	base, err := GatewayAuditFilters(stack)
	if err != nil {
		return nil, err
	}
	scope := fmt.Sprintf(`%s = "%s" && %s = "%s"`, fluentBitNamespace, namespace, fluentBitContainer, container)
	out := make([]MetricFilter, len(base))
	for i, f := range base {
		f.LogGroupKey = LogEKSApplication
		inner := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(f.Pattern), "{"), "}")
		f.Pattern = "{ " + scope + " && " + auditField.ReplaceAllString(strings.TrimSpace(inner), "$$."+FluentBitParsedKey+".$1") + " }"
		if strings.HasPrefix(f.Value, "$.") {
			f.Value = "$." + FluentBitParsedKey + "." + strings.TrimPrefix(f.Value, "$.")
		}
		out[i] = f
	}
	return out, nil
}

// Validate checks a filter's own rules and that its metric is valid.
func (f MetricFilter) Validate() error {
	if f.Name == "" || len(f.Name) > 512 || regexp.MustCompile(`[:*]`).MatchString(f.Name) {
		return fmt.Errorf("metric filter name %q: want 1-512 characters without : or *", f.Name)
	}
	if len(f.Pattern) > 1024 {
		return fmt.Errorf("metric filter %s: pattern longer than 1024 characters", f.Name)
	}
	return f.Metric.Validate()
}
