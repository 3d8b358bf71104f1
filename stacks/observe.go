package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability/cw"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// Alarm periods: five-minute datapoints, three of them (15 minutes) for the
// conditions the issue names "keeps growing" or "above a threshold", so
// that a burst does not page anyone.
const (
	alarmPeriod     = 300
	alarmPeriods    = 3
	minRequestsRate = 20 // requests in a period before a rate means anything
)

// accountID is the deploying account, asked of STS once, before anything
// is registered (alert key policy, agent permissions, registry).
func accountID(ctx *pulumi.Context, d *Deployment) (string, error) {
	if d.accountID != "" {
		return d.accountID, nil
	}
	id, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("look up the account (sts:GetCallerIdentity): %w", err)
	}
	d.accountID = id.AccountId
	return d.accountID, nil
}

// catalogMetric is a metric of the target's catalog as an alarm or a graph
// uses it: a name and dimensions the catalog does not have are an error,
// so that a renamed metric fails the plan rather than silently drawing
// nothing. dims maps each of the metric's dimensions to its value.
func catalogMetric(catalog []telemetry.Metric, id, name string, dims map[string]string, stat, label string) (cw.Metric, error) {
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	m, ok := telemetry.Find(catalog, name, names...)
	if !ok {
		return cw.Metric{}, fmt.Errorf("metric %s %v is not in the target's telemetry catalog", name, names)
	}
	out := cw.Metric{ID: id, Namespace: m.Namespace, Name: m.Name, Stat: stat, Label: label}
	if out.Stat == "" {
		out.Stat = m.Statistic
	}
	for _, dn := range m.Dimensions {
		out.Dimensions = append(out.Dimensions, cw.Dim{Name: dn, Value: dims[dn]})
	}
	return out, nil
}

// metricSet collects catalog lookups and the first error, so that builders
// read as a list.
type metricSet struct {
	catalog []telemetry.Metric
	err     error
}

func (s *metricSet) m(id, name string, dims map[string]string, stat, label string) cw.Metric {
	m, err := catalogMetric(s.catalog, id, name, dims, stat, label)
	if err != nil && s.err == nil {
		s.err = err
	}
	return m
}

func hidden(m cw.Metric) cw.Metric { m.Hidden = true; return m }

// dashboardName is the stack's dashboard: letters, digits, - and _.
func dashboardName(stack string) string {
	return strings.Trim(regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(baseName+"-"+stack, "-"), "-")
}

// alarm fills in what every alarm shares.
func alarm(key, description string, comparison string, threshold float64, treatMissing string, metrics []cw.Metric, exprs ...cw.Expr) cw.Alarm {
	return cw.Alarm{Key: key, Description: description, Metrics: metrics, Exprs: exprs, Period: alarmPeriod,
		Comparison: comparison, Threshold: threshold, EvaluationPeriods: alarmPeriods, DatapointsToAlarm: alarmPeriods,
		TreatMissingData: treatMissing}
}

// rate is 100 x part / whole, and 0 while fewer than minRequestsRate
// requests came in the period (a rate of 1 in 2 is no signal).
func rate(id, part, whole, label string) cw.Expr {
	return cw.Expr{ID: id, Label: label,
		Expression: fmt.Sprintf("IF(%s >= %d, 100 * %s / %s, 0)", whole, minRequestsRate, part, whole)}
}

// newObservability makes the alert topic, alarms, events and dashboard, and
// the metric filters over the target's created log groups (by key, as the
// groups' outputs so that a filter waits for its group); it exports the
// dashboard's URL and the topic.
func newObservability(ctx *pulumi.Context, d *Deployment, args *observability.Args, filterGroups map[string]pulumi.StringInput) error {
	c := d.Config
	account, err := accountID(ctx, d)
	if err != nil {
		return err
	}
	args.AccountID = account
	args.FilterGroups = filterGroups
	args.Region = d.Region
	args.Name = dashboardName(ctx.Stack())
	args.AlarmEmail = c.AlarmEmail
	args.KMSKeyARN = c.KMSKeyARN
	o, err := observability.New(ctx, baseName+"-observability", args)
	if err != nil {
		return err
	}
	d.export(ctx, "dashboardUrl", o.DashboardURL)
	d.export(ctx, "alertTopicArn", o.TopicARN)
	return nil
}

// newLogGroups creates a target's log groups with the stack's retention
// and key, before anything writes to them.
func newLogGroups(ctx *pulumi.Context, d *Deployment, groups []telemetry.LogGroup) (*observability.LogGroups, error) {
	return observability.NewLogGroups(ctx, baseName+"-logs", &observability.LogGroupsArgs{
		Groups: groups, RetentionDays: d.Config.LogRetentionDays, KMSKeyARN: d.Config.KMSKeyARN,
	})
}

// vllmAlarms alarm on vLLM's own metrics, which the CloudWatch agent
// publishes alike on EC2 and from the EKS sidecar: a queue that keeps
// growing and a full KV cache. server names what serves ("the server",
// "the busiest replica"), scale what adds capacity.
func vllmAlarms(s *metricSet, c *Config, st map[string]string, server, scale string) []cw.Alarm {
	return []cw.Alarm{
		alarm("queue-growing", fmt.Sprintf("More than %d requests have waited for the GPUs of %s for 15 minutes: "+
			"more load than it takes, or long contexts filling the KV cache. First look at the dashboard's queue and "+
			"KV-cache graphs, then %s.", c.AlarmWaitingRequests, server, scale),
			"GreaterThanThreshold", float64(c.AlarmWaitingRequests), "notBreaching",
			[]cw.Metric{s.m("waiting", "vllm:num_requests_waiting", st, "Maximum", "waiting")}),
		alarm("kv-cache-full", fmt.Sprintf("The KV cache (the GPU memory vLLM keeps for contexts) of %s stayed over "+
			"%g%% full for 15 minutes: requests queue or are preempted. First look at the waiting requests and "+
			"preemptions on the dashboard; lower maxModelLen, or %s.", server, c.AlarmKVCachePercent, scale),
			"GreaterThanThreshold", c.AlarmKVCachePercent, "notBreaching",
			[]cw.Metric{hidden(s.m("kv", "vllm:kv_cache_usage_perc", st, "Maximum", ""))},
			cw.Expr{ID: "kvpct", Expression: "100 * kv", Label: "KV cache %"}),
	}
}

// failOpenAlarm fires on the first text the gateway let through unchecked
// because a check failed in fail-open mode (the policy's failMode, or the
// guard model's: a timeout or an unreachable guard). With fail-closed,
// such failures are 5xx and error-rate catches them; with fail-open they
// are invisible to clients, so one is enough. st are the dimensions of the
// gateway's Prometheus metrics; logs says where to look.
func failOpenAlarm(s *metricSet, st map[string]string, logs string) cw.Alarm {
	return cw.Alarm{Key: "checks-skipped", Description: "The guardrail let texts through unchecked because a check " +
		"failed in fail-open mode (the guard model timing out or unreachable, or a detector failing). First look at " +
		logs + " for the failing check; with a colocated guard model, at its vLLM (vllm-guard.service, or the vllm " +
		"container's log) and the guard's share of GPU memory.",
		Metrics: []cw.Metric{s.m("skipped", "guardrail_fail_open_total", st, "Sum", "texts passed unchecked")},
		Period:  alarmPeriod, Comparison: "GreaterThanThreshold", Threshold: 0, EvaluationPeriods: 1, DatapointsToAlarm: 1,
		TreatMissingData: "notBreaching"}
}

// vllmTokensWidget draws generated and prompt tokens per second.
func vllmTokensWidget(s *metricSet, st map[string]string, title string) cw.Widget {
	return cw.Widget{Title: title, Metrics: []cw.Metric{
		hidden(s.m("gen", "vllm:generation_tokens_total", st, "Sum", "")),
		hidden(s.m("prompt", "vllm:prompt_tokens_total", st, "Sum", "")),
	}, Exprs: []cw.Expr{
		{ID: "gentps", Expression: "gen / PERIOD(gen)", Label: "generated tokens/s"},
		{ID: "prompttps", Expression: "prompt / PERIOD(prompt)", Label: "prompt tokens/s"},
	}, YMin: cw.Zero()}
}

// vllmQueueWidget draws running, waiting and preempted requests against
// the queue alarm's threshold.
func vllmQueueWidget(s *metricSet, c *Config, st map[string]string, title string) cw.Widget {
	return cw.Widget{Title: title, Metrics: []cw.Metric{
		s.m("running", "vllm:num_requests_running", st, "Maximum", "running"),
		s.m("waiting", "vllm:num_requests_waiting", st, "Maximum", "waiting"),
		s.m("preempted", "vllm:num_preemptions_total", st, "Sum", "preempted"),
	}, YMin: cw.Zero(), Threshold: cw.Ptr(float64(c.AlarmWaitingRequests))}
}

// vllmFinishedWidget draws the requests vLLM finished.
func vllmFinishedWidget(s *metricSet, st map[string]string) cw.Widget {
	return cw.Widget{Title: "Requests finished by vLLM", Metrics: []cw.Metric{
		s.m("done", "vllm:request_success_total", st, "Sum", "finished"),
	}, Period: alarmPeriod, YMin: cw.Zero()}
}
