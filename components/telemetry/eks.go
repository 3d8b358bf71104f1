package telemetry

// ContainerInsightsNamespace is where Container Insights publishes.
const ContainerInsightsNamespace = "ContainerInsights"

// EKS dimension names.
const (
	DimClusterName = "ClusterName"
	DimNamespace   = "Namespace"
	DimService     = "Service"
)

// EKSOptions describes one EKS stack.
type EKSOptions struct {
	Stack string
	// Gateway says whether the guardrail gateway runs in the vLLM pod.
	Gateway bool
	// ContainerInsights says whether the Amazon CloudWatch Observability
	// add-on runs (deepseek-r1-cn:eksObservabilityAddon): without it there
	// are no ContainerInsights metrics.
	ContainerInsights bool
}

// EKSMetrics is every metric the EKS target publishes that alarms and the
// dashboard may use.
//
// vLLM's and the gateway's come from the CloudWatch agent sidecar of each
// vLLM pod (ContainerAgent), which scrapes them on the pod's loopback and
// publishes them as Embedded Metric Format: the same names, namespace
// (DeepSeekR1CN/<stack>) and dimensions as on EC2 (PrometheusMetrics). All
// replicas publish under the same Stack value, so Sum adds the pods and
// Maximum is the busiest pod. vLLM's and the gateway's latencies are
// histograms, which the agent drops; with the add-on and the gateway, the
// gateway's audit records reach the add-on's application log group, and
// EKSGatewayAuditFilters turn them into the same request, 5xx, block and
// latency metrics as on EC2 (without the add-on there is no latency
// metric on EKS).
//
// The Container Insights (enhanced observability) metrics come from the
// Amazon CloudWatch Observability add-on's agent, at cluster level so that
// they survive node and pod replacement; the GPU ones from its DCGM
// exporter (on by default: the chart's dcgmExporter.enabled, and the
// agent's accelerated_compute_metrics, which defaults to true in
// translator/translate/otel/receiver/awscontainerinsight/utils.go).
func EKSMetrics(o EKSOptions) ([]Metric, error) {
	ns, err := Namespace(o.Stack)
	if err != nil {
		return nil, err
	}
	out := PrometheusMetrics(ns, o.Gateway)
	if !o.ContainerInsights {
		return out, nil
	}
	if o.Gateway {
		filters, err := EKSGatewayAuditFilters(o.Stack, "", "")
		if err != nil {
			return nil, err
		}
		for _, f := range filters {
			out = append(out, f.Metric)
		}
	}
	const src = "CloudWatch agent translator/tocwconfig/sampleConfig/emf_and_kubernetes_with_gpu_config.yaml (awsemf/containerinsights metric_declarations)"
	c := []string{DimClusterName}
	m := func(name, unit, stat, meaning string, dims ...string) Metric {
		return Metric{Namespace: ContainerInsightsNamespace, Name: name, Dimensions: append(append([]string(nil), c...), dims...),
			Unit: unit, Statistic: stat, Meaning: meaning, Source: src, Origin: OriginAWS}
	}
	return append(out,
		m("node_gpu_utilization", "Percent", "Average", "GPU use over the cluster's GPU nodes (DCGM)"),
		m("node_gpu_memory_utilization", "Percent", "Maximum", "GPU memory use; vLLM reserves most of it at start"),
		m("node_gpu_memory_used", "Bytes", "Maximum", "GPU memory used"),
		m("cluster_failed_node_count", "Count", "Maximum", "nodes failing: a GPU node lost takes the model down"),
		m("cluster_node_count", "Count", "Minimum", "nodes in the cluster"),
		m("pod_number_of_container_restarts", "Count", "Sum", "container restarts of the serving pods (vLLM crash, out of memory)", DimNamespace, DimService),
	), nil
}
