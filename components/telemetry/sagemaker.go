package telemetry

// SageMaker dimension names (awsdocs amazon-sagemaker-developer-guide
// doc_source/monitoring-cloudwatch.md).
const (
	DimEndpointName = "EndpointName"
	DimVariantName  = "VariantName"
)

// SageMaker namespaces: invocation metrics, and the endpoint instances'
// utilization.
const (
	SageMakerNamespace         = "AWS/SageMaker"
	SageMakerEndpointNamespace = "/aws/sagemaker/Endpoints"
)

// SageMakerMetrics are what SageMaker publishes for a real-time endpoint,
// with the dimensions EndpointName and VariantName. The instance metrics
// are sums over the instance's GPUs (or CPUs): GPUUtilization and
// GPUMemoryUtilization range to 100 times the GPU count, so a threshold
// must be scaled by it. The 4xx/5xx metrics publish 1 or 0 per request, so
// their Average is the error rate.
func SageMakerMetrics() []Metric {
	const src = "awsdocs amazon-sagemaker-developer-guide doc_source/monitoring-cloudwatch.md"
	d := []string{DimEndpointName, DimVariantName}
	inv := func(name, unit, stat, meaning string) Metric {
		return Metric{Namespace: SageMakerNamespace, Name: name, Dimensions: d, Unit: unit, Statistic: stat, Meaning: meaning, Source: src, Origin: OriginAWS}
	}
	inst := func(name, meaning string) Metric {
		return Metric{Namespace: SageMakerEndpointNamespace, Name: name, Dimensions: d, Unit: "Percent", Statistic: "Maximum", Meaning: meaning, Source: src, Origin: OriginAWS}
	}
	return []Metric{
		inv("Invocations", "None", "Sum", "InvokeEndpoint requests"),
		inv("Invocation4XXErrors", "None", "Average", "share of requests the model answered with a 4xx (1 per 4xx, 0 otherwise)"),
		inv("Invocation5XXErrors", "None", "Average", "share of requests the model answered with a 5xx: the container failing or vLLM not ready"),
		inv("ModelLatency", "Microseconds", "Average", "time the container took to answer, as SageMaker sees it"),
		inv("OverheadLatency", "Microseconds", "Average", "time SageMaker added to the model's"),
		inst("GPUUtilization", "GPU use summed over the instance's GPUs (0 to 100 x GPUs)"),
		inst("GPUMemoryUtilization", "GPU memory use summed over the GPUs (0 to 100 x GPUs); vLLM reserves most of it at start"),
		inst("CPUUtilization", "CPU use summed over the cores (0 to 100 x cores)"),
		inst("MemoryUtilization", "host memory used by the containers"),
		inst("DiskUtilization", "disk used by the containers"),
	}
}
