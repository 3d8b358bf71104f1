package telemetry

// EC2Options describes one EC2 stack.
type EC2Options struct {
	Stack string
	// Gateway says whether the guardrail gateway runs in front of vLLM.
	Gateway bool
}

// Load balancer and Auto Scaling dimension names. Their values are the
// ARN suffixes "targetgroup/<name>/<id>" and "net/<name>/<id>" (the
// arn_suffix attributes of the target group and the load balancer), and
// the group's name.
const (
	DimTargetGroup  = "TargetGroup"
	DimLoadBalancer = "LoadBalancer"
	DimASG          = "AutoScalingGroupName"
)

const (
	srcLoaders = "vllm/v1/metrics/loggers.py (0.11): PrometheusStatLogger"
	srcGateway = "cmd/guardrail/internal/proxy/metrics.go"
	srcAgent   = "CloudWatch agent nvidia_gpu (nvidia-smi) measurement, published as nvidia_smi_<measurement>"
	srcNLB     = "Elastic Load Balancing, CloudWatch metrics for your Network Load Balancer (AWS/NetworkELB)"
	srcASG     = "Amazon EC2 Auto Scaling, group metrics (AWS/AutoScaling; the group enables them, components/ec2)"
)

// EC2Metrics is every metric the EC2 target publishes, or that AWS
// publishes for it, that alarms and the dashboard may use.
//
// vLLM's and the gateway's come from the CloudWatch agent's Prometheus
// scrape, published as Embedded Metric Format under the stack's namespace
// with the single dimension Stack. Counters are per-scrape deltas (the
// agent sends nothing for the first scrape), so Sum over a period is the
// count in that period. Histograms do not reach CloudWatch (the agent
// drops them): request latency and time to first byte come from the
// gateway's audit log (GatewayAuditFilters), and without the gateway there
// is no latency metric at all.
//
// GPU metrics come from the agent's nvidia_gpu plugin, every GPU's
// datapoint republished under [Stack] only (aggregation_dimensions), the
// per-GPU ones dropped: Average is the mean over GPUs, Maximum the
// busiest; the host dimension is omitted so that they too survive a
// replacement.
func EC2Metrics(o EC2Options) ([]Metric, error) {
	ns, err := Namespace(o.Stack)
	if err != nil {
		return nil, err
	}
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
	if o.Gateway {
		g := func(name, unit, stat, meaning string, dims ...string) Metric {
			return Metric{Namespace: ns, Name: name, Dimensions: append([]string{StackDimension}, dims...), Unit: unit, Statistic: stat,
				Meaning: meaning, Source: srcGateway, Origin: OriginPrometheus, Job: JobGateway}
		}
		out = append(out,
			g("guardrail_requests_total", "Count", "Sum", "requests the gateway answered in the period"),
			g("guardrail_requests_total", "Count", "Sum", "requests by HTTP status returned to the client", "status"),
			g("guardrail_interventions_total", "Count", "Sum", "findings acted upon, by action: BLOCKED, ANONYMIZED, DETECTED", "action"),
			g("guardrail_interventions_total", "Count", "Sum", "findings by policy, finding type and action: the blocks by category", "policy", "type", "action"),
			g("guardrail_upstream_errors_total", "Count", "Sum", "vLLM failures seen by the gateway (connect, status_5xx, read, parse, too_large)"),
			g("guardrail_upstream_errors_total", "Count", "Sum", "vLLM failures by kind", "kind"),
			g("guardrail_fail_open_total", "Count", "Sum", "texts passed unchecked because a check failed in fail-open mode"),
			g("guardrail_open_streams", "Count", "Maximum", "streaming responses in progress"),
		)
		filters, err := GatewayAuditFilters(o.Stack)
		if err != nil {
			return nil, err
		}
		for _, f := range filters {
			out = append(out, f.Metric)
		}
	}
	gpu := func(name, unit, stat, meaning string) Metric {
		return Metric{Namespace: ns, Name: name, Dimensions: s, Unit: unit, Statistic: stat, Meaning: meaning,
			Source: srcAgent, Origin: OriginNvidiaGPU}
	}
	out = append(out,
		gpu(GPUMetricPrefix+"utilization_gpu", "Percent", "Average", "time a kernel ran on the GPUs; Minimum shows an idle GPU among busy ones"),
		gpu(GPUMetricPrefix+"memory_used", "Megabytes", "Maximum", "GPU memory used (MiB), per GPU; vLLM reserves --gpu-memory-utilization of it at start, so compare with memory_total and expect that fraction"),
		gpu(GPUMetricPrefix+"memory_total", "Megabytes", "Maximum", "GPU memory (MiB) per GPU, for memory_used / memory_total"),
		gpu(GPUMetricPrefix+"temperature_gpu", "None", "Maximum", "GPU core temperature in degrees Celsius"),
		gpu(GPUMetricPrefix+"power_draw", "None", "Average", "board power draw in watts"),
	)
	tg := []string{DimTargetGroup, DimLoadBalancer}
	out = append(out,
		Metric{Namespace: "AWS/NetworkELB", Name: "HealthyHostCount", Dimensions: tg, Unit: "Count", Statistic: "Minimum",
			Meaning: "targets passing the health check; 0 means the server is not answering (vLLM or the gateway down, loading, or the instance replaced)",
			Source:  srcNLB, Origin: OriginAWS},
		Metric{Namespace: "AWS/NetworkELB", Name: "UnHealthyHostCount", Dimensions: tg, Unit: "Count", Statistic: "Maximum",
			Meaning: "targets failing the health check", Source: srcNLB, Origin: OriginAWS},
		Metric{Namespace: "AWS/AutoScaling", Name: "GroupInServiceInstances", Dimensions: []string{DimASG}, Unit: "None", Statistic: "Minimum",
			Meaning: "instances in service; below the desired capacity while an instance is replaced or cannot be launched", Source: srcASG, Origin: OriginAWS},
		Metric{Namespace: "AWS/AutoScaling", Name: "GroupTerminatingInstances", Dimensions: []string{DimASG}, Unit: "None", Statistic: "Maximum",
			Meaning: "instances being terminated: above 0 when the group replaces an unhealthy instance (or an instance refresh runs)", Source: srcASG, Origin: OriginAWS},
		Metric{Namespace: "AWS/AutoScaling", Name: "GroupPendingInstances", Dimensions: []string{DimASG}, Unit: "None", Statistic: "Maximum",
			Meaning: "instances launching; long above 0 means no capacity of the types or a boot that never turns healthy", Source: srcASG, Origin: OriginAWS},
		Metric{Namespace: "AWS/AutoScaling", Name: "GroupDesiredCapacity", Dimensions: []string{DimASG}, Unit: "None", Statistic: "Maximum",
			Meaning: "instances the group wants", Source: srcASG, Origin: OriginAWS},
	)
	return out, nil
}

// GPUMetricPrefix is what the agent puts before an nvidia_gpu measurement.
const GPUMetricPrefix = "nvidia_smi_"
