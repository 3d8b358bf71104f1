package telemetry

// PrometheusMetrics are the vLLM and (with the gateway) guardrail gateway
// metrics the CloudWatch agent publishes from its Prometheus scrape, under
// the namespace ns with the single dimension Stack (plus a label where
// one is listed). They are the same on every target that runs the agent
// next to vLLM: the EC2 instance and the EKS pod's sidecar render their
// metric declarations from this one list, so a dashboard or an alarm
// names a metric the same way on both.
//
// Counters arrive as the delta since the previous scrape (the agent sends
// nothing for the first one), so Sum over a period is the count in that
// period. Where several publishers share the Stack dimension (the EKS
// target's replicas), CloudWatch aggregates their datapoints: Sum adds the
// pods, Maximum is the busiest pod.
func PrometheusMetrics(ns string, gateway bool) []Metric {
	s := []string{StackDimension}
	v := func(name, unit, stat, meaning string) Metric {
		return Metric{Namespace: ns, Name: name, Dimensions: s, Unit: unit, Statistic: stat, Meaning: meaning,
			Source: srcLoaders, Origin: OriginPrometheus, Job: JobVLLM}
	}
	out := []Metric{
		v("vllm:num_requests_running", "Count", "Maximum", "requests in vLLM's running batch"),
		v("vllm:num_requests_waiting", "Count", "Maximum", "requests queued for lack of KV-cache room or batch slots; growing for minutes means more load than the GPUs take"),
		v("vllm:kv_cache_usage_perc", "None", "Maximum", "fraction (0 to 1, not percent) of the KV cache in use; near 1 with waiting requests means the cache limits throughput"),
		v("vllm:prompt_tokens_total", "Count", "Sum", "prompt (prefill) tokens processed in the period"),
		v("vllm:generation_tokens_total", "Count", "Sum", "tokens generated in the period; divided by the period's seconds, tokens per second"),
		v("vllm:request_success_total", "Count", "Sum", "requests vLLM finished (stop, length or abort) in the period"),
		v("vllm:num_preemptions_total", "Count", "Sum", "requests preempted because the KV cache ran out"),
	}
	if !gateway {
		return out
	}
	g := func(name, unit, stat, meaning string, dims ...string) Metric {
		return Metric{Namespace: ns, Name: name, Dimensions: append([]string{StackDimension}, dims...), Unit: unit, Statistic: stat,
			Meaning: meaning, Source: srcGateway, Origin: OriginPrometheus, Job: JobGateway}
	}
	return append(out,
		g("guardrail_requests_total", "Count", "Sum", "requests the gateway answered in the period"),
		g("guardrail_requests_total", "Count", "Sum", "requests by HTTP status returned to the client", "status"),
		g("guardrail_interventions_total", "Count", "Sum", "findings acted upon, by action: BLOCKED, ANONYMIZED, DETECTED", "action"),
		g("guardrail_interventions_total", "Count", "Sum", "findings by policy, finding type and action: the blocks by category", "policy", "type", "action"),
		g("guardrail_upstream_errors_total", "Count", "Sum", "vLLM failures seen by the gateway (connect, status_5xx, read, parse, too_large)"),
		g("guardrail_upstream_errors_total", "Count", "Sum", "vLLM failures by kind", "kind"),
		g("guardrail_fail_open_total", "Count", "Sum", "texts passed unchecked because a check failed in fail-open mode"),
		g("guardrail_open_streams", "Count", "Maximum", "streaming responses in progress"),
	)
}
