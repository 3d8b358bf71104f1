package telemetry

// ContainerInsightsNamespace is where Container Insights publishes.
const ContainerInsightsNamespace = "ContainerInsights"

// EKS dimension names.
const (
	DimClusterName = "ClusterName"
	DimNamespace   = "Namespace"
	DimService     = "Service"
)

// EKSMetrics are the Container Insights (enhanced observability) metrics
// the Amazon CloudWatch Observability add-on's agent publishes that alarms
// and the dashboard use, at cluster level so that they survive node and pod
// replacement. The GPU metrics come from the add-on's DCGM exporter. vLLM's
// and the gateway's own Prometheus metrics are not among them: publishing
// them needs a Prometheus scrape in the add-on's agent configuration, which
// is not done.
func EKSMetrics() []Metric {
	const src = "CloudWatch agent translator/tocwconfig/sampleConfig/emf_and_kubernetes_with_gpu_config.yaml (awsemf/containerinsights metric_declarations)"
	c := []string{DimClusterName}
	m := func(name, unit, stat, meaning string, dims ...string) Metric {
		return Metric{Namespace: ContainerInsightsNamespace, Name: name, Dimensions: append(append([]string(nil), c...), dims...),
			Unit: unit, Statistic: stat, Meaning: meaning, Source: src, Origin: OriginAWS}
	}
	return []Metric{
		m("node_gpu_utilization", "Percent", "Average", "GPU use over the cluster's GPU nodes (DCGM)"),
		m("node_gpu_memory_utilization", "Percent", "Maximum", "GPU memory use; vLLM reserves most of it at start"),
		m("node_gpu_memory_used", "Bytes", "Maximum", "GPU memory used"),
		m("cluster_failed_node_count", "Count", "Maximum", "nodes failing: a GPU node lost takes the model down"),
		m("cluster_node_count", "Count", "Minimum", "nodes in the cluster"),
		m("pod_number_of_container_restarts", "Count", "Sum", "container restarts of the serving pods (vLLM crash, out of memory)", DimNamespace, DimService),
	}
}
