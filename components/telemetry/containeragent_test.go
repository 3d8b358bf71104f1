package telemetry

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

func testSidecar(gateway bool) ContainerAgent {
	a := ContainerAgent{Region: "cn-northwest-1", Stack: "prod", Cluster: "dsr1-prod", VLLMPort: 8000}
	if gateway {
		a.VLLMPort, a.GatewayPort = 8001, 8000
	}
	return a
}

func sidecarJSON(t *testing.T, a ContainerAgent) map[string]any {
	t.Helper()
	s, err := a.AgentConfig()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

// The sidecar's configuration has the agent and the Prometheus sections
// only: no metrics section (no nvidia_gpu: the add-on's DCGM exporter
// covers the GPUs, and the sidecar needs no cloudwatch:PutMetricData) and
// no files (the add-on's Fluent Bit ships the containers' output).
func TestSidecarConfigShape(t *testing.T) {
	m := sidecarJSON(t, testSidecar(true))
	keys := func(v any) []string {
		var out []string
		for k := range v.(map[string]any) {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	assert.Equal(t, []string{"agent", "logs"}, keys(m))
	assert.Equal(t, []string{"force_flush_interval", "metrics_collected"}, keys(m["logs"]))
	assert.Equal(t, []string{"prometheus"}, keys(at(t, m, "logs", "metrics_collected")))
	assert.Equal(t, "cn-northwest-1", at(t, m, "agent", "region"))
	prom := at(t, m, "logs", "metrics_collected", "prometheus")
	assert.Equal(t, "dsr1-prod", at(t, prom, "cluster_name"), "required in a container")
	groups, err := EKSOwnLogGroups("prod")
	require.NoError(t, err)
	metrics, ok := LogGroupByKey(groups, LogMetrics)
	require.True(t, ok)
	assert.Equal(t, "/deepseek-r1-cn/prod/eks/metrics", metrics.Name)
	assert.Equal(t, metrics.Name, at(t, prom, "log_group_name"))
	assert.Equal(t, "/etc/prometheusconfig/prometheus.yaml", at(t, prom, "prometheus_config_path"))
	assert.Equal(t, "DeepSeekR1CN/prod", at(t, prom, "emf_processor", "metric_namespace"))
	assert.NotEqual(t, ContainerConfigDir, ContainerScrapeDir, "the start command takes YAML files of the config dir for OTel configurations")
}

// The sidecar declares exactly the catalog's Prometheus metrics, and the
// same declarations as the EC2 agent: what an alarm names on one target it
// finds on the other.
func TestSidecarDeclaresTheEC2Metrics(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprint("gateway ", gateway), func(t *testing.T) {
			a := testSidecar(gateway)
			got := declared(t, sidecarJSON(t, a))
			catalog, err := EKSMetrics(EKSOptions{Stack: "prod", Gateway: gateway, ContainerInsights: true})
			require.NoError(t, err)
			var want []string
			for _, c := range catalog {
				if c.Origin == OriginPrometheus {
					want = append(want, fmt.Sprintf("%s %s [%s]", c.Job, c.Name, joinDims(c.Dimensions)))
				}
			}
			slices.Sort(want)
			assert.Equal(t, want, got)
			assert.Equal(t, declared(t, agentJSON(t, testAgent(gateway))), got, "the EC2 agent's declarations")

			ec2, err := testAgent(gateway).AgentConfig()
			require.NoError(t, err)
			var ec2m map[string]any
			require.NoError(t, json.Unmarshal([]byte(ec2), &ec2m))
			assert.Equal(t, at(t, ec2m, "logs", "metrics_collected", "prometheus", "emf_processor", "metric_unit"),
				at(t, sidecarJSON(t, a), "logs", "metrics_collected", "prometheus", "emf_processor", "metric_unit"))
		})
	}
}

func joinDims(d []string) string {
	out := ""
	for i, s := range d {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// The scrape is the EC2 one: the same jobs on the pod's loopback, labelled
// with the stack, keeping the catalog's metrics.
func TestSidecarScrapeConfig(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprint("gateway ", gateway), func(t *testing.T) {
			got, err := testSidecar(gateway).ScrapeConfig()
			require.NoError(t, err)
			want, err := testAgent(gateway).ScrapeConfig()
			require.NoError(t, err)
			assert.Equal(t, want, got)
			var s scrape
			require.NoError(t, yaml.Unmarshal([]byte(got), &s))
			for _, j := range s.ScrapeConfigs {
				assert.Regexp(t, `^127\.0\.0\.1:\d+$`, j.StaticConfigs[0].Targets[0])
				assert.Equal(t, map[string]string{StackDimension: "prod"}, j.StaticConfigs[0].Labels)
			}
			if gateway {
				require.Len(t, s.ScrapeConfigs, 2)
				assert.Equal(t, []string{"127.0.0.1:8000"}, s.ScrapeConfigs[1].StaticConfigs[0].Targets)
			} else {
				require.Len(t, s.ScrapeConfigs, 1)
			}
		})
	}
}

func TestSidecarValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*ContainerAgent)
		want   string
	}{
		{"no region", func(a *ContainerAgent) { a.Region = "" }, "the region is empty"},
		{"no cluster", func(a *ContainerAgent) { a.Cluster = "" }, "the cluster name is empty"},
		{"bad stack", func(a *ContainerAgent) { a.Stack = "a*b" }, "is not allowed"},
		{"no vLLM port", func(a *ContainerAgent) { a.VLLMPort = 0 }, "vLLM port 0"},
		{"same ports", func(a *ContainerAgent) { a.GatewayPort = a.VLLMPort }, "apart from vLLM's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := testSidecar(true)
			tc.mutate(&a)
			_, err := a.AgentConfig()
			assert.ErrorContains(t, err, tc.want)
			_, err = a.ScrapeConfig()
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestContainerAgentEnv(t *testing.T) {
	env := map[string]string{}
	for _, kv := range ContainerAgentEnv("cn-north-1") {
		env[kv[0]] = kv[1]
	}
	// The agent compares with "True" exactly (cfg/envconfig TrueValue).
	assert.Equal(t, map[string]string{"RUN_IN_CONTAINER": "True", "RUN_WITH_IRSA": "True", "AWS_REGION": "cn-north-1"}, env)
}

// The sidecar may write its one log group and nothing else, in either
// partition.
func TestContainerAgentStatements(t *testing.T) {
	for _, tc := range []struct{ region, partition string }{{"cn-northwest-1", "aws-cn"}, {"us-east-1", "aws"}} {
		t.Run(tc.region, func(t *testing.T) {
			r, err := region.Lookup(tc.region)
			require.NoError(t, err)
			st, err := ContainerAgentStatements(r, "123456789012", "prod")
			require.NoError(t, err)
			require.Len(t, st, 1)
			arn := "arn:" + tc.partition + ":logs:" + tc.region + ":123456789012:log-group:/deepseek-r1-cn/prod/eks/metrics"
			assert.Equal(t, []string{arn, arn + ":*"}, st[0].Resource)
			assert.Equal(t, []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, st[0].Action)
			assert.Equal(t, "Allow", st[0].Effect)
		})
	}
	_, err := ContainerAgentStatements(region.Info{}, "*", "a b")
	assert.Error(t, err)
}
