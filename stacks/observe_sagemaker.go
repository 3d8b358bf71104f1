package stacks

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability/cw"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sagemaker"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// sageMakerObservability alarms on and draws what SageMaker publishes for
// the endpoint (telemetry.SageMakerMetrics) and, with the guardrail inside
// the custom container, the gateway's audit records, which reach the
// endpoint's log group on the container's stdout. SageMaker answers the
// container's /ping itself and replaces an instance that fails it; the
// endpoint's state changes (Failed, Updating, InService) arrive as events.
func sageMakerObservability(ctx *pulumi.Context, d *Deployment, endpoint string, groups *observability.LogGroups) error {
	args, err := sageMakerObservabilityArgs(d, ctx.Stack(), endpoint)
	if err != nil {
		return err
	}
	args.Events = []observability.Event{{
		Key:         "endpoint-state",
		Description: "The SageMaker endpoint changed state (InService, Updating, Failed, ...)",
		Pattern: pulumi.String(fmt.Sprintf(`{"source":["aws.sagemaker"],"detail-type":["SageMaker Endpoint State Change"],`+
			`"detail":{"EndpointName":[%q]}}`, endpoint)),
	}}
	return newObservability(ctx, d, args, groups.Created)
}

// sageMakerObservabilityArgs builds the alarms, widgets and filters.
func sageMakerObservabilityArgs(d *Deployment, stack, endpoint string) (*observability.Args, error) {
	c := d.Config
	catalog := telemetry.SageMakerMetrics()
	var filters []telemetry.MetricFilter
	if c.Guardrail {
		var err error
		if filters, err = telemetry.GatewayAuditFilters(stack); err != nil {
			return nil, err
		}
		// The audit records are in the endpoint's own log group.
		for i := range filters {
			filters[i].LogGroupKey = sageMakerLogKey
			catalog = append(catalog, filters[i].Metric)
		}
	}
	s := &metricSet{catalog: catalog}
	ep := map[string]string{telemetry.DimEndpointName: endpoint, telemetry.DimVariantName: sagemaker.VariantName}
	gpus := float64(d.Decision.GPUs)

	alarms := []cw.Alarm{
		alarm("invocation-errors", fmt.Sprintf("More than %g%% of invocations got a 5xx from the container over 15 "+
			"minutes: vLLM not ready or failing, or the instance being replaced. First look at the endpoint's log group "+
			"(/aws/sagemaker/Endpoints/%s: sagemaker-serve and vLLM), then describe-endpoint's FailureReason.",
			c.AlarmErrorRatePercent, endpoint),
			"GreaterThanThreshold", c.AlarmErrorRatePercent, "notBreaching",
			[]cw.Metric{hidden(s.m("err5", "Invocation5XXErrors", ep, "Average", ""))},
			cw.Expr{ID: "errpct", Expression: "100 * err5", Label: "5xx %"}),
		alarm("gpu-memory", fmt.Sprintf("GPU memory stayed over %g%% of the instance's %d GPUs for 15 minutes, above "+
			"what vLLM reserves for itself (gpuMemoryUtilization): something else holds GPU memory, or vLLM is short of it. "+
			"First look at the endpoint's log for CUDA out-of-memory errors.", c.AlarmKVCachePercent, d.Decision.GPUs),
			"GreaterThanThreshold", c.AlarmKVCachePercent*gpus, "notBreaching",
			[]cw.Metric{s.m("gpumem", "GPUMemoryUtilization", ep, "Maximum", "GPU memory (sum over GPUs)")}),
	}
	widgets := []cw.Widget{
		{Markdown: fmt.Sprintf("## deepseek-r1-cn `%s`: %s on %s (sagemaker)\nEndpoint `%s`; logs in "+
			"`/aws/sagemaker/Endpoints/%s` (sagemaker-serve, vLLM and the guardrail's audit records). GPU figures are "+
			"sums over the instance's %d GPUs (up to %d%%).", stack, d.Model.Key, d.Decision.InstanceType, endpoint, endpoint,
			d.Decision.GPUs, 100*d.Decision.GPUs), Width: 24, Height: 3},
		{Title: "Invocations and errors", Metrics: []cw.Metric{
			s.m("calls", "Invocations", ep, "Sum", "invocations"),
			hidden(s.m("err4", "Invocation4XXErrors", ep, "Average", "")),
			hidden(s.m("err5", "Invocation5XXErrors", ep, "Average", "")),
		}, Exprs: []cw.Expr{
			{ID: "pct4", Expression: "100 * err4", Label: "4xx %"},
			{ID: "pct5", Expression: "100 * err5", Label: "5xx %"},
		}, Period: alarmPeriod, YMin: cw.Zero()},
		{Title: "Latency (ms)", Metrics: []cw.Metric{
			hidden(s.m("model", "ModelLatency", ep, "Average", "")),
			hidden(s.m("model90", "ModelLatency", ep, "p90", "")),
			hidden(s.m("overhead", "OverheadLatency", ep, "Average", "")),
		}, Exprs: []cw.Expr{
			{ID: "modelms", Expression: "model / 1000", Label: "model, mean"},
			{ID: "model90ms", Expression: "model90 / 1000", Label: "model, p90"},
			{ID: "overheadms", Expression: "overhead / 1000", Label: "SageMaker overhead"},
		}, Period: alarmPeriod, YMin: cw.Zero()},
		{Title: "GPU (% summed over GPUs)", Metrics: []cw.Metric{
			s.m("gpu", "GPUUtilization", ep, "Average", "utilization"),
			s.m("gpumem", "GPUMemoryUtilization", ep, "Maximum", "memory"),
		}, YMin: cw.Zero(), Threshold: cw.Ptr(c.AlarmKVCachePercent * gpus)},
		{Title: "Instance (% summed over cores)", Metrics: []cw.Metric{
			s.m("cpu", "CPUUtilization", ep, "Average", "CPU"),
			s.m("mem", "MemoryUtilization", ep, "Maximum", "memory"),
			s.m("disk", "DiskUtilization", ep, "Maximum", "disk"),
		}, YMin: cw.Zero()},
	}
	if c.Guardrail {
		none := map[string]string{}
		alarms = append(alarms, gatewayAlarms(s, c, none, "the endpoint's log group /aws/sagemaker/Endpoints/"+endpoint+
			" (vLLM's and sagemaker-serve's lines around the failing request_id)")...)
		widgets = append(widgets, gatewayWidgets(s, stack, none)...)
	}
	if s.err != nil {
		return nil, s.err
	}
	return &observability.Args{Alarms: alarms, Widgets: widgets, Filters: filters}, nil
}

// sageMakerLogKey is the endpoint's log group's key (telemetry.SageMakerLogGroups).
const sageMakerLogKey = "endpoint"
