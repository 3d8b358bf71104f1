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
	out := PrometheusMetrics(ns, o.Gateway)
	if o.Gateway {
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
