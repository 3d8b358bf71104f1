package stacks

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/k8sserving"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability/cw"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// eksObservability alarms on and draws what telemetry.EKSMetrics says the
// EKS target publishes: vLLM's and the gateway's Prometheus metrics through
// the pods' CloudWatch agent sidecar, under the stack's namespace, and with
// the CloudWatch Observability add-on Container Insights' node, GPU and pod
// metrics. The log groups are the EKS target's own (eksLogGroups), made
// before the cluster.
//
// With the add-on and the gateway, the gateway's audit records in the
// application log group feed the same metric filters as on EC2 (requests,
// 5xx, blocks, latency and time to first byte); created holds the log
// groups eksLogGroups made, which the filters wait for.
func eksObservability(ctx *pulumi.Context, d *Deployment, cluster string, created map[string]*cloudwatch.LogGroup) error {
	args, err := eksObservabilityArgs(d, ctx.Stack(), cluster)
	if err != nil {
		return err
	}
	groups := map[string]pulumi.StringInput{}
	for k, g := range created {
		groups[k] = g.Name
	}
	return newObservability(ctx, d, args, groups)
}

// eksObservabilityArgs builds the alarms and widgets.
func eksObservabilityArgs(d *Deployment, stack, cluster string) (*observability.Args, error) {
	c := d.Config
	args := &observability.Args{}
	insights := d.EKS.ObservabilityAddon
	catalog, err := telemetry.EKSMetrics(telemetry.EKSOptions{Stack: stack, Gateway: c.Guardrail, ContainerInsights: insights})
	if err != nil {
		return nil, err
	}
	s := &metricSet{catalog: catalog}
	st := map[string]string{telemetry.StackDimension: stack}
	alarms := []cw.Alarm{
		alarm("not-answering", "No vLLM replica answered its metrics sidecar for 15 minutes: vLLM is down, still "+
			"loading, or the sidecar itself is failing, in every pod. Expected for the first start (the weights are copied "+
			"and loaded, 40 minutes or more for the large models). First look at `kubectl -n "+k8sserving.Namespace+
			" get pods` and `rollout status`, then the vllm containers' logs (`kubectl -n "+k8sserving.Namespace+
			" logs deploy/vllm -c vllm`, or the application log group), then the GPU nodes.",
			"LessThanThreshold", 1, "breaching",
			[]cw.Metric{s.m("scrapes", "vllm:num_requests_running", st, "SampleCount", "vLLM scrapes")}),
	}
	alarms = append(alarms, vllmAlarms(s, c, st, "the busiest replica", "add replicas and GPU nodes (eksReplicas, eksGpuNodesDesired)")...)
	widgets := []cw.Widget{
		{Markdown: fmt.Sprintf("## deepseek-r1-cn `%s`: %s on %s (eks, cluster `%s`)\nContainer logs: "+
			"`/aws/containerinsights/%s/application` (vLLM, the gateway and its audit records); control plane: "+
			"`/aws/eks/%s/cluster`; the metrics sidecar's EMF events: `%s/eks/metrics`. Pods: "+
			"`kubectl -n %s logs deploy/vllm -c vllm`.", stack, d.Model.Key, d.Decision.InstanceType, cluster,
			cluster, cluster, telemetry.LogGroupPrefix(stack), k8sserving.Namespace), Width: 24, Height: 3},
		vllmTokensWidget(s, st, "Tokens per second (all replicas)"),
		vllmQueueWidget(s, c, st, "Queue (busiest replica)"),
		{Title: "KV cache (%)", Metrics: []cw.Metric{hidden(s.m("kv", "vllm:kv_cache_usage_perc", st, "Maximum", ""))},
			Exprs: []cw.Expr{{ID: "kvpct", Expression: "100 * kv", Label: "KV cache in use"}}, YMin: cw.Zero(),
			Threshold: cw.Ptr(c.AlarmKVCachePercent)},
		vllmFinishedWidget(s, st),
	}
	if insights {
		cl := map[string]string{telemetry.DimClusterName: cluster}
		pods := map[string]string{telemetry.DimClusterName: cluster, telemetry.DimNamespace: k8sserving.Namespace,
			telemetry.DimService: k8sserving.Workload}
		alarms = append(alarms,
			alarm("pods-restarting", "Containers of the vLLM pods restarted in each of the last 15 minutes' periods: vLLM "+
				"crashing (CUDA or out-of-memory errors), the gateway or the metrics sidecar failing. First look at "+
				"`kubectl -n "+k8sserving.Namespace+" describe pod` and the application log group, then the node's events.",
				"GreaterThanThreshold", 0, "notBreaching",
				[]cw.Metric{s.m("restarts", "pod_number_of_container_restarts", pods, "Sum", "restarts")}),
			alarm("node-failing", "A node of the cluster is failing: a lost GPU node takes its replicas down. First look "+
				"at `kubectl get nodes`, the managed node group's health in the EKS console, then the dataplane log group.",
				"GreaterThanThreshold", 0, "notBreaching",
				[]cw.Metric{s.m("failed", "cluster_failed_node_count", cl, "Maximum", "failed nodes")}),
			alarm("gpu-memory", fmt.Sprintf("GPU memory of the nodes stayed over %g%% for 15 minutes, above what vLLM "+
				"reserves (gpuMemoryUtilization): something else holds GPU memory. First look at CUDA out-of-memory "+
				"errors in the application log group.", c.AlarmKVCachePercent),
				"GreaterThanThreshold", c.AlarmKVCachePercent, "notBreaching",
				[]cw.Metric{s.m("gpumem", "node_gpu_memory_utilization", cl, "Maximum", "GPU memory %")}),
		)
		widgets = append(widgets,
			cw.Widget{Title: "GPU (Container Insights)", Metrics: []cw.Metric{
				s.m("gpu", "node_gpu_utilization", cl, "Average", "utilization %"),
				s.m("gpumem", "node_gpu_memory_utilization", cl, "Maximum", "memory %"),
			}, YMin: cw.Zero()},
			cw.Widget{Title: "Nodes and restarts", Metrics: []cw.Metric{
				s.m("nodes", "cluster_node_count", cl, "Minimum", "nodes"),
				s.m("failed", "cluster_failed_node_count", cl, "Maximum", "failed nodes"),
				s.m("restarts", "pod_number_of_container_restarts", pods, "Sum", "vLLM pod restarts"),
			}, YMin: cw.Zero()},
		)
	}
	if c.Guardrail {
		alarms = append(alarms,
			alarm("upstream-error-rate", fmt.Sprintf("The gateways saw vLLM fail (connect, 5xx, cut streams) on more "+
				"than %g%% of requests over 15 minutes. First look at the vllm containers' logs in the application log "+
				"group, then pod restarts and the dashboard's errors by kind.", c.AlarmErrorRatePercent),
				"GreaterThanThreshold", c.AlarmErrorRatePercent, "notBreaching",
				[]cw.Metric{
					hidden(s.m("uperrs", "guardrail_upstream_errors_total", st, "Sum", "")),
					hidden(s.m("reqs", "guardrail_requests_total", st, "Sum", "")),
				}, rate("uppct", "uperrs", "reqs", "vLLM errors %")),
			alarm("guardrail-block-rate", fmt.Sprintf("Blocking findings passed %g per 100 requests over 15 minutes: "+
				"an attack, or a policy that blocks ordinary use. First look at the dashboard's blocks by category, then "+
				"the gateway's audit records (policy and type, never text) in the application log group.", c.AlarmGuardrailBlockPercent),
				"GreaterThanThreshold", c.AlarmGuardrailBlockPercent, "notBreaching",
				[]cw.Metric{
					hidden(s.m("blocked", "guardrail_interventions_total", map[string]string{telemetry.StackDimension: stack,
						"action": "BLOCKED"}, "Sum", "")),
					hidden(s.m("reqs", "guardrail_requests_total", st, "Sum", "")),
				}, rate("blockpct", "blocked", "reqs", "blocking findings per 100 requests")),
			failOpenAlarm(s, st, "the guardrail containers' log in the application log group"),
		)
		if insights {
			// The add-on's Fluent Bit brings the audit records to the
			// application group: the EC2 target's filters and graphs.
			filters, err := telemetry.EKSGatewayAuditFilters(stack, k8sserving.Namespace, k8sserving.GuardrailContainer)
			if err != nil {
				return nil, err
			}
			args.Filters = filters
			widgets = append(widgets, gatewayWidgets(s, stack, map[string]string{})...)
		} else {
			widgets = append(widgets, cw.Widget{Title: "Requests (gateway)", Metrics: []cw.Metric{
				s.m("reqs", "guardrail_requests_total", st, "Sum", "requests"),
				s.m("uperrs", "guardrail_upstream_errors_total", st, "Sum", "vLLM errors"),
				s.m("streams", "guardrail_open_streams", st, "Maximum", "open streams (busiest pod)"),
			}, Period: alarmPeriod, YMin: cw.Zero()})
			widgets = append(widgets, gatewaySearchWidgets(s, stack)...)
		}
	}
	if s.err != nil {
		return nil, s.err
	}
	args.Alarms, args.Widgets = alarms, widgets
	return args, nil
}
