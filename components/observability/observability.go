// Package observability is what an operator needs of a deployment, in the
// region: log groups with a retention and encryption, alarms that notify an
// SNS topic (and by e-mail when asked), EventBridge rules for replacements
// and failures, and one CloudWatch dashboard. What is alarmed on and drawn
// comes from each target as data (package cw, with the names the target
// really publishes in package telemetry).
package observability

import (
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability/cw"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// Event is an EventBridge rule whose matches go to the topic.
type Event struct {
	Key         string
	Description string
	// Pattern is the event pattern (JSON), which may hold deploy-time
	// values such as a group's name.
	Pattern pulumi.StringInput
}

// Args configures an Observability.
type Args struct {
	Region region.Info
	// Name prefixes the alarms and names the dashboard (letters, digits,
	// "-" and "_").
	Name      string
	AccountID string
	// KMSKeyARN, when set, encrypts the alert topic (its key policy must
	// let CloudWatch and EventBridge use it); "" makes a key for it.
	KMSKeyARN string
	// AlarmEmail, when set, subscribes an address to the topic (the
	// recipient confirms it once).
	AlarmEmail string
	Alarms     []cw.Alarm
	Widgets    []cw.Widget
	Events     []Event
	// Filters turn log events into metrics (the guardrail's audit log into
	// requests, errors, blocks and latency); FilterGroups names the log
	// group of each filter's LogGroupKey, as the created group's output,
	// so that a filter waits for its group (CloudWatch Logs refuses a
	// filter on a group that does not exist yet).
	Filters      []telemetry.MetricFilter
	FilterGroups map[string]pulumi.StringInput
	// Refs are the deploy-time values the alarms' and widgets' "${ref}"
	// dimension values stand for.
	Refs map[string]pulumi.StringInput
}

// Observability is the component.
type Observability struct {
	pulumi.ResourceState

	TopicARN      pulumi.StringOutput `pulumi:"topicArn"`
	DashboardName pulumi.StringOutput `pulumi:"dashboardName"`
	DashboardURL  pulumi.StringOutput `pulumi:"dashboardUrl"`
}

// retentionDays are the values CloudWatch Logs accepts.
var retentionDays = map[int]bool{1: true, 3: true, 5: true, 7: true, 14: true, 30: true, 60: true, 90: true,
	120: true, 150: true, 180: true, 365: true, 400: true, 545: true, 731: true, 1096: true, 1827: true,
	2192: true, 2557: true, 2922: true, 3288: true, 3653: true}

// RetentionDaysValid says whether CloudWatch Logs accepts a retention.
func RetentionDaysValid(days int) bool { return retentionDays[days] }

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	var errs []error
	if a.Name == "" || a.AccountID == "" {
		errs = append(errs, errors.New("a name and the account id are required"))
	}
	for _, f := range a.Filters {
		if _, ok := a.FilterGroups[f.LogGroupKey]; !ok {
			errs = append(errs, fmt.Errorf("metric filter %s: no log group %q", f.Name, f.LogGroupKey))
		}
		errs = append(errs, f.Validate())
	}
	keys := map[string]bool{}
	for _, al := range a.Alarms {
		if keys[al.Key] {
			errs = append(errs, fmt.Errorf("alarm key %s twice", al.Key))
		}
		keys[al.Key] = true
		errs = append(errs, al.Validate())
	}
	for _, ref := range cw.RefNames(a.Widgets, a.Alarms) {
		if _, ok := a.Refs[ref]; !ok {
			errs = append(errs, fmt.Errorf("no value for ${%s}", ref))
		}
	}
	return errors.Join(errs...)
}

// New creates the topic, log groups, alarms, event rules and dashboard.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Observability, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("observability %s: %w", name, err)
	}
	o := &Observability{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:observability:Observability", name, o, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(o)

	if err := filters(ctx, name, args, parent); err != nil {
		return nil, fmt.Errorf("observability %s: %w", name, err)
	}
	topic, err := alertTopic(ctx, name, args, parent)
	if err != nil {
		return nil, fmt.Errorf("observability %s: %w", name, err)
	}
	if err := alarms(ctx, name, args, topic, parent); err != nil {
		return nil, fmt.Errorf("observability %s: %w", name, err)
	}
	if err := events(ctx, name, args, topic, parent); err != nil {
		return nil, fmt.Errorf("observability %s: %w", name, err)
	}
	dashboard, err := cloudwatch.NewDashboard(ctx, name, &cloudwatch.DashboardArgs{
		DashboardName: pulumi.String(args.Name),
		DashboardBody: resolved(args.Refs, func(refs cw.Refs) (string, error) {
			return cw.DashboardBody(args.Region.Name, args.Widgets, refs)
		}),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("observability %s: dashboard: %w", name, err)
	}

	o.TopicARN = topic.Arn
	o.DashboardName = dashboard.DashboardName
	o.DashboardURL = pulumi.Sprintf("%s", dashboard.DashboardName.ApplyT(func(n string) string {
		return cw.DashboardURL(args.Region.ConsoleHost(), args.Region.Name, n)
	}))
	if err := ctx.RegisterResourceOutputs(o, pulumi.Map{
		"topicArn": o.TopicARN, "dashboardName": o.DashboardName, "dashboardUrl": o.DashboardURL,
	}); err != nil {
		return nil, err
	}
	return o, nil
}

// filters creates the log metric filters. A filter's metric carries no
// dimensions: its namespace is the stack's.
func filters(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) error {
	for _, f := range args.Filters {
		tr := cloudwatch.LogMetricFilterMetricTransformationArgs{
			Name: pulumi.String(f.Metric.Name), Namespace: pulumi.String(f.Metric.Namespace), Value: pulumi.String(f.Value),
		}
		if f.Metric.Unit != "" && f.Metric.Unit != "None" {
			tr.Unit = pulumi.String(f.Metric.Unit)
		}
		if f.DefaultValue != nil {
			tr.DefaultValue = pulumi.String(strconv.FormatFloat(*f.DefaultValue, 'f', -1, 64))
		}
		if _, err := cloudwatch.NewLogMetricFilter(ctx, name+"-"+f.Name, &cloudwatch.LogMetricFilterArgs{
			Name: pulumi.String(f.Name), LogGroupName: args.FilterGroups[f.LogGroupKey],
			Pattern: pulumi.String(f.Pattern), MetricTransformation: tr,
		}, parent); err != nil {
			return fmt.Errorf("metric filter %s: %w", f.Name, err)
		}
	}
	return nil
}

// resolved waits for every ref and renders with their values.
func resolved(refs map[string]pulumi.StringInput, render func(cw.Refs) (string, error)) pulumi.StringOutput {
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	inputs := make([]any, len(names))
	for i, n := range names {
		inputs[i] = refs[n]
	}
	return pulumi.All(inputs...).ApplyT(func(v []any) (string, error) {
		r := cw.Refs{}
		for i, n := range names {
			r[n] = v[i].(string)
		}
		return render(r)
	}).(pulumi.StringOutput)
}

// alertTopic is where alarms and events go. It is encrypted: with the
// configured key, or with a key of its own whose policy lets CloudWatch and
// EventBridge publish, since neither can publish to a topic encrypted with
// the AWS managed SNS key (alias/aws/sns), whose policy cannot be changed.
func alertTopic(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) (*sns.Topic, error) {
	keyID := pulumi.StringInput(pulumi.String(args.KMSKeyARN))
	if args.KMSKeyARN == "" {
		r := args.Region
		policy := iamdoc.New(
			iamdoc.Statement{Sid: "AccountAdministers", Effect: "Allow",
				Principal: map[string]any{"AWS": r.ARN("iam", "", args.AccountID, "root")},
				Action:    []string{"kms:*"}, Resource: []string{"*"}},
			iamdoc.Statement{Sid: "AlarmsAndEventsPublish", Effect: "Allow",
				Principal: map[string]any{"Service": []string{"cloudwatch.amazonaws.com", "events.amazonaws.com"}},
				Action:    []string{"kms:Decrypt", "kms:GenerateDataKey*"}, Resource: []string{"*"}},
		)
		key, err := kms.NewKey(ctx, name+"-alerts", &kms.KeyArgs{
			Description:       pulumi.String("Encrypts the deepseek-r1-cn alert topic; CloudWatch and EventBridge may use it"),
			EnableKeyRotation: pulumi.Bool(true),
			Policy:            pulumi.String(policy.JSON()),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("alert key: %w", err)
		}
		keyID = key.Arn
	}
	topic, err := sns.NewTopic(ctx, name+"-alerts", &sns.TopicArgs{KmsMasterKeyId: keyID}, parent)
	if err != nil {
		return nil, fmt.Errorf("alert topic: %w", err)
	}
	if args.AlarmEmail != "" {
		if _, err := sns.NewTopicSubscription(ctx, name+"-alerts-email", &sns.TopicSubscriptionArgs{
			Topic: topic.Arn, Protocol: pulumi.String("email"), Endpoint: pulumi.String(args.AlarmEmail),
		}, parent); err != nil {
			return nil, fmt.Errorf("e-mail subscription: %w", err)
		}
	}
	return topic, nil
}

// alarms creates the alarms, each notifying the topic when it fires and when
// it recovers.
func alarms(ctx *pulumi.Context, name string, args *Args, topic *sns.Topic, parent pulumi.ResourceOption) error {
	for _, al := range args.Alarms {
		queries := cloudwatch.MetricAlarmMetricQueryArray{}
		for _, m := range al.Metrics {
			dims := pulumi.StringMap{}
			for _, d := range m.Dimensions {
				dims[d.Name] = resolved(args.Refs, func(refs cw.Refs) (string, error) { return refs.Resolve(d.Value) })
			}
			q := cloudwatch.MetricAlarmMetricQueryArgs{
				Id: pulumi.String(m.ID),
				Metric: cloudwatch.MetricAlarmMetricQueryMetricArgs{
					Namespace: pulumi.String(m.Namespace), MetricName: pulumi.String(m.Name),
					Dimensions: dims, Period: pulumi.Int(al.Period), Stat: pulumi.String(m.Stat),
				},
				ReturnData: pulumi.Bool(!m.Hidden),
			}
			if m.Label != "" {
				q.Label = pulumi.String(m.Label)
			}
			queries = append(queries, q)
		}
		for _, e := range al.Exprs {
			queries = append(queries, cloudwatch.MetricAlarmMetricQueryArgs{
				Id: pulumi.String(e.ID), Expression: pulumi.String(e.Expression), Label: pulumi.String(e.Label),
				ReturnData: pulumi.Bool(!e.Hidden),
			})
		}
		if _, err := cloudwatch.NewMetricAlarm(ctx, name+"-"+al.Key, &cloudwatch.MetricAlarmArgs{
			Name:               pulumi.String(args.Name + "-" + al.Key),
			AlarmDescription:   pulumi.String(al.Description),
			MetricQueries:      queries,
			ComparisonOperator: pulumi.String(al.Comparison),
			Threshold:          pulumi.Float64(al.Threshold),
			EvaluationPeriods:  pulumi.Int(al.EvaluationPeriods),
			DatapointsToAlarm:  pulumi.Int(al.DatapointsToAlarm),
			TreatMissingData:   pulumi.String(al.TreatMissingData),
			AlarmActions:       pulumi.Array{topic.Arn},
			OkActions:          pulumi.Array{topic.Arn},
		}, parent); err != nil {
			return fmt.Errorf("alarm %s: %w", al.Key, err)
		}
	}
	return nil
}

// events routes EventBridge rules to the topic, which lets EventBridge
// publish for exactly those rules.
func events(ctx *pulumi.Context, name string, args *Args, topic *sns.Topic, parent pulumi.ResourceOption) error {
	var ruleARNs pulumi.StringArray
	for _, ev := range args.Events {
		rule, err := cloudwatch.NewEventRule(ctx, name+"-"+ev.Key, &cloudwatch.EventRuleArgs{
			Description: pulumi.String(ev.Description), EventPattern: ev.Pattern,
		}, parent)
		if err != nil {
			return fmt.Errorf("event rule %s: %w", ev.Key, err)
		}
		if _, err := cloudwatch.NewEventTarget(ctx, name+"-"+ev.Key, &cloudwatch.EventTargetArgs{
			Rule: rule.Name, Arn: topic.Arn,
		}, parent); err != nil {
			return fmt.Errorf("event target %s: %w", ev.Key, err)
		}
		ruleARNs = append(ruleARNs, rule.Arn)
	}
	if len(ruleARNs) == 0 {
		return nil
	}
	policy := pulumi.All(topic.Arn, ruleARNs).ApplyT(func(v []any) string {
		var rules []any
		for _, r := range v[1].([]string) {
			rules = append(rules, r)
		}
		return iamdoc.New(iamdoc.Statement{Sid: "EventBridgePublishes", Effect: "Allow",
			Principal: map[string]any{"Service": "events.amazonaws.com"},
			Action:    []string{"sns:Publish"}, Resource: []string{v[0].(string)},
			Condition: map[string]map[string]any{"ArnEquals": {"aws:SourceArn": rules}},
		}, iamdoc.Statement{Sid: "AlarmsPublish", Effect: "Allow",
			Principal: map[string]any{"Service": "cloudwatch.amazonaws.com"},
			Action:    []string{"sns:Publish"}, Resource: []string{v[0].(string)},
			Condition: map[string]map[string]any{"StringEquals": {"aws:SourceAccount": args.AccountID}},
		}).JSON()
	}).(pulumi.StringOutput)
	if _, err := sns.NewTopicPolicy(ctx, name+"-alerts", &sns.TopicPolicyArgs{Arn: topic.Arn, Policy: policy}, parent); err != nil {
		return fmt.Errorf("topic policy: %w", err)
	}
	return nil
}
