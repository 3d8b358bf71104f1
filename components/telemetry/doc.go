// Package telemetry is the single catalog of what each target of
// deepseek-r1-cn publishes to CloudWatch: metric names, namespaces,
// dimensions, units and statistics; log group names; the CloudWatch Logs
// metric filters on the gateway's audit log; and, for the EC2 target, the
// CloudWatch agent configuration and Prometheus scrape configuration that
// make the agent publish exactly the catalog's metrics. Alarms and
// dashboards take their metrics from here, so that a rename breaks a test,
// not a dashboard. It is plain Go (no Pulumi), so that the gateway's tests
// can import it too.
//
// Sources, read at the versions named:
//   - CloudWatch agent, aws/amazon-cloudwatch-agent at ab55b8d (v1.300071+,
//     2026-08): plugins/inputs/prometheus (metrics_filter.go drops every
//     Prometheus type but gauge, counter and summary; calculator.go and
//     delta_calculator.go send counters as the delta since the previous
//     scrape, nothing on the first), translator/translate/otel/exporter/awsemf
//     (prometheus.go: on EC2 log_group_name is required, metric_namespace
//     defaults to CWAgent/Prometheus, a metric_declaration needs
//     source_labels and metric_selectors; awsemf_default_prometheus.yaml:
//     log stream {JobName}, NoDimensionRollup), translator/config/schema.json,
//     translator/translate/metrics/config (nvidia_smi tags pstate, uuid and
//     compute_mode are dropped; the plugin alias nvidia_gpu), and
//     plugins/outputs/cloudwatch/cloudwatch.go (aggregation_dimensions
//     republish each datapoint under the listed dimension sets;
//     drop_original_metrics drops the one with all of its dimensions).
//   - CloudWatch docs: "Prometheus metric type conversion by the CloudWatch
//     agent" (histograms are dropped; counters become deltas), "Collect
//     NVIDIA GPU metrics" (measurement utilization_gpu is published as
//     nvidia_smi_utilization_gpu, without a unit unless one is set).
//   - vLLM vllm/v1/metrics/loggers.py, the 0.11 release line (the stored
//     copy carries "Deprecated in 0.9.2 - Renamed as vllm:kv_cache_usage_perc
//     / With 0.11.x you can enable with --show-hidden-metrics-for-version=0.10";
//     the exact v0.11.0 commit was not read: UNCONFIRMED to the commit).
//   - The gateway: cmd/guardrail/internal/proxy/metrics.go and audit.go.
//   - SageMaker: awsdocs/amazon-sagemaker-developer-guide
//     doc_source/monitoring-cloudwatch.md.
//   - The agent in a container (the EKS sidecar, ContainerAgent): the same
//     repository's amazon-cloudwatch-container-insights/cloudwatch-agent-
//     dockerfile/Dockerfile, tool/paths/paths_unix.go, translator/cmdutil/
//     translatorutil.go, internal/util/config/config.go, translator/util/
//     sdkutil.go and translator/translate/logs/metrics_collected/prometheus/
//     ruleClusterName.go (see containeragent.go).
//   - EKS Container Insights: the agent's translator/tocwconfig/sampleConfig/
//     emf_and_kubernetes_with_gpu_config.yaml (metric declarations and
//     /aws/containerinsights/{ClusterName}/performance), and
//     aws-observability/helm-charts charts/amazon-cloudwatch-observability/
//     values.yaml at amazon-cloudwatch-observability-6.4.0 (log groups
//     application, dataplane, host; images for cn-north-1 and cn-northwest-1
//     from 934860584483 and 128054284489).
package telemetry
