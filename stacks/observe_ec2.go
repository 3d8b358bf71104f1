package stacks

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/ec2"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability/cw"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// ec2Observability is what an operator of the EC2 target gets: the alarms
// and the dashboard over the metrics telemetry.EC2Metrics says the server
// publishes (vLLM's and the gateway's through the CloudWatch agent, the
// GPUs', the load balancer's and the Auto Scaling group's), the gateway's
// audit log turned into request, error, block and latency metrics, and the
// group's failed launches and terminations as events.
func ec2Observability(ctx *pulumi.Context, d *Deployment, server *ec2.Server, groups *observability.LogGroups) error {
	args, err := ec2ObservabilityArgs(d, ctx.Stack())
	if err != nil {
		return err
	}
	args.Refs = map[string]pulumi.StringInput{
		"tg": server.TargetGroupARNSuffix, "lb": server.LoadBalancerARNSuffix, "asg": server.AutoScalingGroupName,
	}
	args.Events = []observability.Event{{
		Key:         "instance-replaced",
		Description: "The vLLM server's Auto Scaling group failed to launch an instance or terminated one (a replacement)",
		Pattern: server.AutoScalingGroupName.ApplyT(func(asg string) string {
			return fmt.Sprintf(`{"source":["aws.autoscaling"],"detail-type":["EC2 Instance Launch Unsuccessful",`+
				`"EC2 Instance Terminate Successful"],"detail":{"AutoScalingGroupName":[%q]}}`, asg)
		}).(pulumi.StringOutput),
	}}
	return newObservability(ctx, d, args, groups.Created)
}

// ec2ObservabilityArgs builds the alarms, widgets and filters from the
// catalog; deploy-time dimension values are ${tg}, ${lb} and ${asg}.
func ec2ObservabilityArgs(d *Deployment, stack string) (*observability.Args, error) {
	c := d.Config
	catalog, err := telemetry.EC2Metrics(telemetry.EC2Options{Stack: stack, Gateway: c.Guardrail})
	if err != nil {
		return nil, err
	}
	s := &metricSet{catalog: catalog}
	st := map[string]string{telemetry.StackDimension: stack}
	tg := map[string]string{telemetry.DimTargetGroup: "${tg}", telemetry.DimLoadBalancer: "${lb}"}
	asg := map[string]string{telemetry.DimASG: "${asg}"}
	none := map[string]string{}

	alarms := []cw.Alarm{
		alarm("not-answering", "No healthy server behind the load balancer: the health check ("+
			"vLLM's /health, or the gateway's with vLLM behind it) fails. First look at the vllm and boot log "+
			"groups (install retries, weights copy, CUDA errors), then the Auto Scaling group's activity; "+
			"expected for the first 40+ minutes after a launch while vLLM installs and loads.",
			"LessThanThreshold", 1, "breaching",
			[]cw.Metric{s.m("healthy", "HealthyHostCount", tg, "Minimum", "healthy servers")}),
		alarm("no-instance", "The Auto Scaling group has no instance in service: launches fail (no GPU capacity "+
			"of any of the instance types in any zone, or the launch template is refused). First look at the "+
			"group's activity history (aws autoscaling describe-scaling-activities), then the fallback types in the plan.",
			"LessThanThreshold", 1, "breaching",
			[]cw.Metric{s.m("inservice", "GroupInServiceInstances", asg, "Minimum", "in service")}),
		{Key: "instance-replaced", Description: "An instance of the server was terminated: the group replaced an " +
			"unhealthy server, or an instance refresh rolled a new launch template. First look at the group's " +
			"activity history for the cause, then the vllm log group of the old instance's stream.",
			Metrics: []cw.Metric{s.m("terminating", "GroupTerminatingInstances", asg, "Maximum", "terminating")},
			Period:  60, Comparison: "GreaterThanThreshold", Threshold: 0, EvaluationPeriods: 1, DatapointsToAlarm: 1,
			TreatMissingData: "notBreaching"},
	}
	alarms = append(alarms, vllmAlarms(s, c, st, "the server", "scale (a larger instance type, or the eks target)")...)
	widgets := []cw.Widget{
		{Markdown: ec2DashboardText(d, stack), Width: 24, Height: 3},
		{Title: "Server health", Metrics: []cw.Metric{
			s.m("healthy", "HealthyHostCount", tg, "Minimum", "healthy behind the NLB"),
			s.m("inservice", "GroupInServiceInstances", asg, "Minimum", "in service"),
			s.m("terminating", "GroupTerminatingInstances", asg, "Maximum", "terminating"),
			s.m("pending", "GroupPendingInstances", asg, "Maximum", "launching"),
		}, YMin: cw.Zero()},
		vllmTokensWidget(s, st, "Tokens per second"),
		vllmQueueWidget(s, c, st, "Queue"),
		{Title: "KV cache and GPU memory (%)", Metrics: []cw.Metric{
			hidden(s.m("kv", "vllm:kv_cache_usage_perc", st, "Maximum", "")),
			hidden(s.m("used", "nvidia_smi_memory_used", st, "Maximum", "")),
			hidden(s.m("total", "nvidia_smi_memory_total", st, "Maximum", "")),
		}, Exprs: []cw.Expr{
			{ID: "kvpct", Expression: "100 * kv", Label: "KV cache in use"},
			{ID: "gpumem", Expression: "100 * used / total", Label: "GPU memory used (vLLM reserves gpuMemoryUtilization)"},
		}, YMin: cw.Zero(), Threshold: cw.Ptr(c.AlarmKVCachePercent)},
		{Title: "GPU utilization (%)", Metrics: []cw.Metric{
			s.m("util", "nvidia_smi_utilization_gpu", st, "Average", "mean over GPUs"),
			s.m("utilmin", "nvidia_smi_utilization_gpu", st, "Minimum", "least busy GPU"),
		}, YMin: cw.Zero()},
		vllmFinishedWidget(s, st),
	}
	var filters []telemetry.MetricFilter
	if c.Guardrail {
		if filters, err = telemetry.GatewayAuditFilters(stack); err != nil {
			return nil, err
		}
		alarms = append(alarms, gatewayAlarms(s, c, none, "the vllm log group, then the guardrail log group for upstream errors")...)
		alarms = append(alarms, failOpenAlarm(s, st, "the guardrail log group"))
		widgets = append(widgets, gatewayWidgets(s, stack, none)...)
	}
	if s.err != nil {
		return nil, s.err
	}
	return &observability.Args{Alarms: alarms, Widgets: widgets, Filters: filters}, nil
}

// gatewayAlarms are the alarms on the guardrail's audit-log metrics (the
// same on every target that runs the gateway): dims are their dimensions,
// none for the metric filters' metrics; logs says where the target's vLLM
// and gateway logs are.
func gatewayAlarms(s *metricSet, c *Config, dims map[string]string, logs string) []cw.Alarm {
	return []cw.Alarm{
		alarm("error-rate", fmt.Sprintf("More than %g%% of requests got a 5xx from the gateway over 15 minutes: vLLM "+
			"down, failing or restarting (502/503/504), or a check failing closed (500). First look at %s.",
			c.AlarmErrorRatePercent, logs),
			"GreaterThanThreshold", c.AlarmErrorRatePercent, "notBreaching",
			[]cw.Metric{
				hidden(s.m("errs", telemetry.MetricGatewayServerErrors, dims, "Sum", "")),
				hidden(s.m("reqs", telemetry.MetricGatewayRequests, dims, "Sum", "")),
			}, rate("errpct", "errs", "reqs", "5xx %")),
		alarm("guardrail-block-rate", fmt.Sprintf("The guardrail blocked more than %g%% of requests over 15 minutes: "+
			"an attack, or a policy change that blocks ordinary use. First look at the dashboard's blocks by "+
			"category, then the guardrail-audit log (policy and type of each finding, never the text).", c.AlarmGuardrailBlockPercent),
			"GreaterThanThreshold", c.AlarmGuardrailBlockPercent, "notBreaching",
			[]cw.Metric{
				hidden(s.m("blocked", telemetry.MetricGatewayBlocked, dims, "Sum", "")),
				hidden(s.m("reqs", telemetry.MetricGatewayRequests, dims, "Sum", "")),
			}, rate("blockpct", "blocked", "reqs", "blocked %")),
	}
}

// gatewayWidgets draw the gateway's requests, latency, errors and blocks
// from its audit log's metric filters, and by category where the target
// publishes the gateway's Prometheus metrics (gatewaySearchWidgets).
func gatewayWidgets(s *metricSet, stack string, dims map[string]string) []cw.Widget {
	out := []cw.Widget{
		{Title: "Requests and 5xx (gateway)", Metrics: []cw.Metric{
			s.m("reqs", telemetry.MetricGatewayRequests, dims, "Sum", "requests"),
			s.m("errs", telemetry.MetricGatewayServerErrors, dims, "Sum", "5xx"),
			s.m("blocked", telemetry.MetricGatewayBlocked, dims, "Sum", "blocked"),
		}, Period: alarmPeriod, YMin: cw.Zero()},
		{Title: "Latency as clients see it (ms)", Metrics: []cw.Metric{
			s.m("lat50", telemetry.MetricGatewayLatency, dims, "p50", "non-streamed p50"),
			s.m("lat90", telemetry.MetricGatewayLatency, dims, "p90", "non-streamed p90"),
			s.m("ttfb50", telemetry.MetricGatewayFirstByte, dims, "p50", "streamed first byte p50"),
			s.m("ttfb90", telemetry.MetricGatewayFirstByte, dims, "p90", "streamed first byte p90"),
		}, Period: alarmPeriod, YMin: cw.Zero()},
	}
	return append(out, gatewaySearchWidgets(s, stack)...)
}

// gatewaySearchWidgets draw blocks by category and vLLM errors by kind
// from the gateway's Prometheus metrics (SEARCH over their policy, type,
// action and kind dimensions), where the target's agent publishes them.
func gatewaySearchWidgets(s *metricSet, stack string) []cw.Widget {
	if _, ok := telemetry.Find(s.catalog, "guardrail_interventions_total", telemetry.StackDimension, "policy", "type", "action"); !ok {
		return nil
	}
	ns, _ := telemetry.Namespace(stack)
	return []cw.Widget{
		{Title: "Guardrail blocks by category", Exprs: []cw.Expr{{ID: "bycat",
			Expression: fmt.Sprintf(`SEARCH('{%s,%s,action,policy,type} MetricName="guardrail_interventions_total" action="BLOCKED"', 'Sum', %d)`,
				ns, telemetry.StackDimension, alarmPeriod), Label: ""}}, Period: alarmPeriod, YMin: cw.Zero()},
		{Title: "vLLM errors seen by the gateway", Exprs: []cw.Expr{{ID: "upkind",
			Expression: fmt.Sprintf(`SEARCH('{%s,%s,kind} MetricName="guardrail_upstream_errors_total"', 'Sum', %d)`,
				ns, telemetry.StackDimension, alarmPeriod), Label: ""}}, Period: alarmPeriod, YMin: cw.Zero()},
	}
}

// ec2DashboardText heads the dashboard: what runs, where its logs are.
func ec2DashboardText(d *Deployment, stack string) string {
	groups, _ := telemetry.EC2LogGroups(stack, d.Config.Guardrail)
	var names []string
	for _, g := range groups {
		names = append(names, "`"+g.Name+"`")
	}
	return fmt.Sprintf("## deepseek-r1-cn `%s`: %s on %s (ec2)\nLogs: %s. Follow a request: its `X-Request-Id` is "+
		"`request_id` in the audit log and in vLLM's log (Logs Insights: `fields @timestamp, @message | filter @message like \"<id>\"`).",
		stack, d.Model.Key, d.Decision.InstanceType, strings.Join(names, ", "))
}
