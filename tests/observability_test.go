package tests

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// catalogOf is what the target publishes, by the telemetry catalog (whose
// names are cited from vLLM's, the gateway's and AWS's sources and whose
// agent configuration is rendered from the same list).
func catalogOf(t *testing.T, target, stack string, gateway bool) map[string]bool {
	t.Helper()
	var metrics []telemetry.Metric
	switch target {
	case "ec2":
		var err error
		metrics, err = telemetry.EC2Metrics(telemetry.EC2Options{Stack: stack, Gateway: gateway})
		require.NoError(t, err)
	case "eks", "eks-no-addon":
		var err error
		metrics, err = telemetry.EKSMetrics(telemetry.EKSOptions{Stack: stack, Gateway: gateway, ContainerInsights: target == "eks"})
		require.NoError(t, err)
	case "sagemaker":
		metrics = telemetry.SageMakerMetrics()
		if gateway {
			filters, err := telemetry.GatewayAuditFilters(stack)
			require.NoError(t, err)
			for _, f := range filters {
				metrics = append(metrics, f.Metric)
			}
		}
	}
	out := map[string]bool{}
	for _, m := range metrics {
		out[seriesKey(m.Namespace, m.Name, m.Dimensions)] = true
	}
	return out
}

// seriesKey names a CloudWatch metric as the set it is: namespace, name
// and the set of dimension names.
func seriesKey(namespace, name string, dims []string) string {
	d := append([]string(nil), dims...)
	sort.Strings(d)
	return namespace + " " + name + " |" + strings.Join(d, ",")
}

// alarmMetricKeys are the series an alarm reads.
func alarmMetricKeys(t *testing.T, alarm plan.Resource) []string {
	t.Helper()
	var out []string
	for _, q := range alarm.Inputs["metricQueries"].([]any) {
		m, ok := q.(map[string]any)["metric"].(map[string]any)
		if !ok {
			continue
		}
		var dims []string
		for k := range m["dimensions"].(map[string]any) {
			dims = append(dims, k)
		}
		out = append(out, seriesKey(m["namespace"].(string), m["metricName"].(string), dims))
	}
	return out
}

// alarmDims are the dimensions of the first metric an alarm reads.
func alarmDims(t *testing.T, p *plan.Plan, name string) map[string]any {
	t.Helper()
	for _, a := range byType(p, "aws:cloudwatch/metricAlarm:MetricAlarm") {
		if a.Inputs["name"] != name {
			continue
		}
		for _, q := range a.Inputs["metricQueries"].([]any) {
			if m, ok := q.(map[string]any)["metric"].(map[string]any); ok {
				return m["dimensions"].(map[string]any)
			}
		}
	}
	require.Failf(t, "no alarm", "no alarm %s with a metric", name)
	return nil
}

func TestObservabilityPerTarget(t *testing.T) {
	cases := []struct {
		name, target string
		values       map[string]string
		gateway      bool
		consoleHost  string
		arnPrefix    string
		groups       []string
		alarms       []string
		events       int
	}{
		{"ec2 cn-northwest-1 with the gateway", "ec2", cfg("aws:region", "cn-northwest-1", "guardrail", "true"), true,
			"console.amazonaws.cn", "arn:aws-cn:",
			[]string{"/deepseek-r1-cn/test/ec2/boot", "/deepseek-r1-cn/test/ec2/vllm", "/deepseek-r1-cn/test/ec2/guardrail",
				"/deepseek-r1-cn/test/ec2/guardrail-audit", "/deepseek-r1-cn/test/ec2/metrics"},
			[]string{"not-answering", "no-instance", "instance-replaced", "queue-growing", "kv-cache-full", "error-rate", "guardrail-block-rate",
				"checks-skipped"}, 1},
		{"ec2 us-east-1", "ec2", cfg("aws:region", "us-east-1"), false, "console.aws.amazon.com", "arn:aws:",
			[]string{"/deepseek-r1-cn/test/ec2/boot", "/deepseek-r1-cn/test/ec2/vllm", "/deepseek-r1-cn/test/ec2/metrics"},
			[]string{"not-answering", "no-instance", "instance-replaced", "queue-growing", "kv-cache-full"}, 1},
		{"sagemaker cn-north-1 with the gateway", "sagemaker", sagemakerCfg("cn-north-1", "guardrail", "true"), true,
			"console.amazonaws.cn", "arn:aws-cn:", []string{"/aws/sagemaker/Endpoints/dsr1-test"},
			[]string{"invocation-errors", "gpu-memory", "error-rate", "guardrail-block-rate"}, 1},
		{"sagemaker us-east-1", "sagemaker", sagemakerCfg("us-east-1"), false, "console.aws.amazon.com", "arn:aws:",
			[]string{"/aws/sagemaker/Endpoints/dsr1-test"}, []string{"invocation-errors", "gpu-memory"}, 1},
		// EKS: vLLM's and the gateway's metrics come from the pods' agent
		// sidecar; node, GPU and pod metrics from Container Insights when
		// the add-on runs. No EventBridge rule: the node group's own
		// health shows in node-failing.
		{"eks cn-northwest-1 with the gateway and the add-on", "eks", eksCfg("cn-northwest-1", "guardrail", "true"), true,
			"console.amazonaws.cn", "arn:aws-cn:",
			[]string{"/aws/eks/dsr1-test/cluster", "/aws/containerinsights/dsr1-test/application",
				"/aws/containerinsights/dsr1-test/dataplane", "/aws/containerinsights/dsr1-test/host",
				"/aws/containerinsights/dsr1-test/performance", "/deepseek-r1-cn/test/eks/metrics"},
			[]string{"not-answering", "queue-growing", "kv-cache-full", "pods-restarting", "node-failing", "gpu-memory",
				"upstream-error-rate", "guardrail-block-rate", "checks-skipped"}, 0},
		{"eks us-east-1 without the add-on", "eks-no-addon", eksCfg("us-east-1", "eksObservabilityAddon", "false"), false,
			"console.aws.amazon.com", "arn:aws:",
			[]string{"/aws/eks/dsr1-test/cluster", "/deepseek-r1-cn/test/eks/metrics"},
			[]string{"not-answering", "queue-growing", "kv-cache-full"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inProject(t)
			c.values[stacksKey("logRetentionDays")] = "90"
			p := mustPlan(t, c.values)
			assertPartitionClean(t, p, c.arnPrefix, nil)

			var groups []string
			for _, g := range byType(p, "aws:cloudwatch/logGroup:LogGroup") {
				groups = append(groups, g.Inputs["name"].(string))
				assert.EqualValues(t, 90, g.Inputs["retentionInDays"], g.Name)
				assert.NotContains(t, g.Inputs, "kmsKeyId", "CloudWatch Logs' own encryption without kmsKeyArn")
			}
			assert.ElementsMatch(t, c.groups, groups)

			catalog := catalogOf(t, c.target, "test", c.gateway)
			topic := one(t, p, "aws:sns/topic:Topic")
			var alarms []string
			for _, a := range byType(p, "aws:cloudwatch/metricAlarm:MetricAlarm") {
				alarms = append(alarms, strings.TrimPrefix(a.Inputs["name"].(string), "dsr1-test-"))
				assert.NotEmpty(t, a.Inputs["alarmDescription"])
				assert.Contains(t, a.Inputs["alarmDescription"], "First look at", "every alarm says what to look at first")
				assert.Equal(t, []any{c.arnPrefix + "sns:" + p.Region + ":123456789012:dsr1-observability-alerts-offline"},
					a.Inputs["alarmActions"], "alarms notify the stack's topic")
				for _, k := range alarmMetricKeys(t, a) {
					assert.True(t, catalog[k], "alarm %s uses %s, which the target does not publish", a.Name, k)
				}
			}
			assert.ElementsMatch(t, c.alarms, alarms)
			if c.target == "eks" {
				// Container Insights names the pods' restarts by their Service.
				svc := k8s(t, p, "kubernetes:core/v1:Service")["metadata"].(map[string]any)
				restarts := alarmDims(t, p, "dsr1-test-pods-restarting")
				assert.Equal(t, svc["name"], restarts["Service"])
				assert.Equal(t, svc["namespace"], restarts["Namespace"])
				assert.Equal(t, "dsr1-test", restarts["ClusterName"])
			}
			// The gateway's audit records feed five metric filters wherever
			// they reach a log group: EC2's audit group, the SageMaker
			// endpoint's group, the EKS add-on's application group.
			filters := byType(p, "aws:cloudwatch/logMetricFilter:LogMetricFilter")
			if c.target == "eks" {
				assert.Contains(t, containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))), "guardrail",
					"the filters select the gateway's container by its name")
			}
			if c.gateway && c.target != "eks-no-addon" {
				assert.Len(t, filters, 5)
			} else {
				assert.Empty(t, filters)
			}
			for _, f := range filters {
				assert.Contains(t, c.groups, f.Inputs["logGroupName"])
				if c.target == "eks" {
					assert.Equal(t, "/aws/containerinsights/dsr1-test/application", f.Inputs["logGroupName"])
					assert.Contains(t, f.Inputs["pattern"], `$.kubernetes.container_name = "guardrail"`)
					assert.Contains(t, f.Inputs["pattern"], `$.kubernetes.namespace_name = "`+
						k8s(t, p, "kubernetes:apps/v1:Deployment")["metadata"].(map[string]any)["namespace"].(string)+`"`)
				}
			}
			if strings.HasPrefix(c.target, "eks") {
				// No scrape of any replica's vLLM is the alarm, not a quiet OK.
				for _, a := range byType(p, "aws:cloudwatch/metricAlarm:MetricAlarm") {
					if a.Inputs["name"] == "dsr1-test-not-answering" {
						assert.Equal(t, "breaching", a.Inputs["treatMissingData"])
					}
				}
			}

			// The dashboard is valid JSON and draws only published metrics.
			dash := one(t, p, "aws:cloudwatch/dashboard:Dashboard")
			var body struct {
				Widgets []struct {
					Type       string
					Properties struct {
						Region  string
						Metrics [][]any
					}
				}
			}
			require.NoError(t, json.Unmarshal([]byte(dash.Inputs["dashboardBody"].(string)), &body))
			drawn := 0
			for _, w := range body.Widgets {
				if w.Type != "metric" {
					continue
				}
				assert.Equal(t, p.Region, w.Properties.Region)
				for _, row := range w.Properties.Metrics {
					if _, expr := row[0].(map[string]any); expr {
						e := row[0].(map[string]any)["expression"].(string)
						if strings.HasPrefix(e, "SEARCH(") {
							assert.Contains(t, e, "{DeepSeekR1CN/test,", "a search stays in the stack's namespace")
						}
						continue
					}
					// [namespace, name, dim, value, dim, value, ..., options]
					var dims []string
					for i := 2; i < len(row)-1; i += 2 {
						dims = append(dims, row[i].(string))
					}
					k := seriesKey(row[0].(string), row[1].(string), dims)
					assert.True(t, catalog[k], "the dashboard draws %s, which the target does not publish", k)
					drawn++
				}
			}
			assert.Greater(t, drawn, 5)
			assert.Equal(t, "https://"+c.consoleHost+"/cloudwatch/home?region="+p.Region+"#dashboards:name=dsr1-test", p.Outputs["dashboardUrl"])

			// The alert topic is encrypted with a key CloudWatch and EventBridge may use.
			key := one(t, p, "aws:kms/key:Key")
			assert.True(t, strings.HasPrefix(topic.Inputs["kmsMasterKeyId"].(string), c.arnPrefix+"kms:"+p.Region+":123456789012:key/"),
				"the topic is encrypted with the stack's key")
			kp := parsePolicy(t, key.Inputs["policy"])
			assert.ElementsMatch(t, []any{"cloudwatch.amazonaws.com", "events.amazonaws.com"}, statement(t, kp, "AlarmsAndEventsPublish").Principal["Service"])
			if c.events > 0 {
				tp := parsePolicy(t, one(t, p, "aws:sns/topicPolicy:TopicPolicy").Inputs["policy"])
				ev := statement(t, tp, "EventBridgePublishes")
				assert.NotEmpty(t, ev.Condition["ArnEquals"]["aws:SourceArn"], "EventBridge publishes for the stack's own rules only")
			}
			assertNoAdminWildcards(t, p)
			assert.Len(t, byType(p, "aws:cloudwatch/eventRule:EventRule"), c.events)
			assert.Empty(t, byType(p, "aws:sns/topicSubscription:TopicSubscription"), "nobody is subscribed unless asked")
		})
	}
}

func stacksKey(k string) string { return "deepseek-r1-cn:" + k }

// TestEC2AgentPermissions: the agent may write only its stack's log groups
// and namespace, and the instances wait for the groups.
func TestEC2AgentPermissions(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true"))
	doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	logs := statement(t, doc, "AgentLogs")
	assert.ElementsMatch(t, []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, logs.Action)
	for _, r := range logs.Resource {
		assert.Regexp(t, `^arn:aws-cn:logs:cn-northwest-1:123456789012:log-group:/deepseek-r1-cn/test/ec2/[a-z-]+(:\*)?$`, r)
	}
	metrics := statement(t, doc, "AgentMetrics")
	assert.Equal(t, map[string]map[string]any{"StringEquals": {"cloudwatch:namespace": "DeepSeekR1CN/test"}}, metrics.Condition)

	ud := bootScript(t, p)
	assert.Contains(t, ud, "deepseek-r1-cn-telemetry.service", "the agent is installed and configured by a retrying unit")
	for _, ep := range []string{"dsr1-logs", "dsr1-monitoring"} {
		assert.NotEmpty(t, byName(t, p, "aws:ec2/vpcEndpoint:VpcEndpoint", ep).Inputs["serviceName"])
	}
	filters := map[string]string{}
	for _, f := range byType(p, "aws:cloudwatch/logMetricFilter:LogMetricFilter") {
		filters[f.Inputs["name"].(string)] = f.Inputs["logGroupName"].(string)
	}
	assert.Equal(t, map[string]string{
		"GatewayRequests": "/deepseek-r1-cn/test/ec2/guardrail-audit", "GatewayServerErrors": "/deepseek-r1-cn/test/ec2/guardrail-audit",
		"GatewayBlockedRequests": "/deepseek-r1-cn/test/ec2/guardrail-audit", "GatewayLatency": "/deepseek-r1-cn/test/ec2/guardrail-audit",
		"GatewayTimeToFirstByte": "/deepseek-r1-cn/test/ec2/guardrail-audit",
	}, filters)
}

func TestObservabilityOptions(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "observability", "false"))
		for _, typ := range []string{"aws:cloudwatch/logGroup:LogGroup", "aws:cloudwatch/metricAlarm:MetricAlarm",
			"aws:cloudwatch/dashboard:Dashboard", "aws:sns/topic:Topic"} {
			assert.Empty(t, byType(p, typ), typ)
		}
		assert.NotContains(t, bootScript(t, p), "amazon-cloudwatch-agent")
		assert.NotContains(t, p.Outputs, "dashboardUrl")
	})
	t.Run("e-mail and a customer managed key", func(t *testing.T) {
		kms := "arn:aws-cn:kms:cn-northwest-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "alarmEmail", "oncall@example.com", "kmsKeyArn", kms))
		sub := one(t, p, "aws:sns/topicSubscription:TopicSubscription")
		assert.Equal(t, "email", sub.Inputs["protocol"])
		assert.Equal(t, "oncall@example.com", sub.Inputs["endpoint"])
		assert.Empty(t, byType(p, "aws:kms/key:Key"), "the configured key encrypts the topic")
		assert.Equal(t, kms, one(t, p, "aws:sns/topic:Topic").Inputs["kmsMasterKeyId"])
		for _, g := range byType(p, "aws:cloudwatch/logGroup:LogGroup") {
			assert.Equal(t, kms, g.Inputs["kmsKeyId"], g.Name)
		}
	})
	t.Run("thresholds from config", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "alarmWaitingRequests", "25", "alarmKvCachePercent", "90"))
		for _, a := range byType(p, "aws:cloudwatch/metricAlarm:MetricAlarm") {
			switch a.Inputs["name"] {
			case "dsr1-test-queue-growing":
				assert.EqualValues(t, 25, a.Inputs["threshold"])
			case "dsr1-test-kv-cache-full":
				assert.EqualValues(t, 90, a.Inputs["threshold"])
			}
		}
	})
	t.Run("bad values", func(t *testing.T) {
		err := configErr(t, cfg("aws:region", "cn-northwest-1", "logRetentionDays", "42"))
		assert.Contains(t, err.Error(), `deepseek-r1-cn:logRetentionDays = "42"`)
		err = configErr(t, cfg("aws:region", "cn-northwest-1", "alarmEmail", "a@b.c, d@e.f"))
		assert.Contains(t, err.Error(), "deepseek-r1-cn:alarmEmail")
	})
}

// TestMetricFiltersWaitForTheirLogGroups: CloudWatch Logs refuses a metric
// filter on a log group that does not exist yet (ResourceNotFoundException),
// so each filter must depend on the creation of the group it names; Pulumi
// otherwise creates them in parallel.
func TestMetricFiltersWaitForTheirLogGroups(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]string
	}{
		{"ec2", cfg("aws:region", "cn-northwest-1", "guardrail", "true")},
		{"sagemaker", sagemakerCfg("cn-north-1", "guardrail", "true")},
		{"eks", eksCfg("cn-northwest-1", "guardrail", "true")},
	} {
		t.Run(c.name, func(t *testing.T) {
			inProject(t)
			p := mustPlan(t, c.values)
			groups := map[string]string{} // name -> logical name
			for _, g := range byType(p, "aws:cloudwatch/logGroup:LogGroup") {
				groups[g.Inputs["name"].(string)] = g.Name
			}
			filters := byType(p, "aws:cloudwatch/logMetricFilter:LogMetricFilter")
			require.NotEmpty(t, filters)
			for _, f := range filters {
				g, ok := groups[f.Inputs["logGroupName"].(string)]
				require.True(t, ok, "filter %s is on %s, which the program does not create", f.Name, f.Inputs["logGroupName"])
				assert.Contains(t, dependencyClosure(p, f.Name), g, "filter %s waits for its log group", f.Name)
			}
		})
	}
}

// dependencyClosure is every resource a resource waits for, directly or
// through the resources it waits for.
func dependencyClosure(p *plan.Plan, name string) map[string]bool {
	byName := map[string]plan.Resource{}
	for _, r := range p.Resources {
		byName[r.Name] = r
	}
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for _, d := range byName[n].Dependencies {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(name)
	return seen
}
