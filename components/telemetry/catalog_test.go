package telemetry

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// catalogs are every metric list of the package.
func catalogs(t *testing.T) map[string][]Metric {
	t.Helper()
	ec2, err := EC2Metrics(EC2Options{Stack: "prod"})
	require.NoError(t, err)
	ec2g, err := EC2Metrics(EC2Options{Stack: "prod", Gateway: true})
	require.NoError(t, err)
	eks, err := EKSMetrics(EKSOptions{Stack: "prod", ContainerInsights: true})
	require.NoError(t, err)
	eksg, err := EKSMetrics(EKSOptions{Stack: "prod", Gateway: true, ContainerInsights: true})
	require.NoError(t, err)
	return map[string][]Metric{"ec2": ec2, "ec2 with gateway": ec2g, "sagemaker": SageMakerMetrics(),
		"eks": eks, "eks with gateway": eksg}
}

// Every metric follows CloudWatch's rules and is there once.
func TestCatalogsAreValid(t *testing.T) {
	for name, c := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			require.NotEmpty(t, c)
			seen := map[string]bool{}
			for _, m := range c {
				assert.NoError(t, m.Validate(), m.Key())
				assert.False(t, seen[m.Key()], "listed twice: %s", m.Key())
				seen[m.Key()] = true
			}
		})
	}
}

// Validate catches what CloudWatch would refuse: a check that cannot fail
// would prove nothing.
func TestMetricValidateCatches(t *testing.T) {
	good := Metric{Namespace: "DeepSeekR1CN/p", Name: "m", Dimensions: []string{"Stack"}, Unit: "Count", Statistic: "Sum",
		Meaning: "x", Source: "y", Origin: OriginLogFilter}
	require.NoError(t, good.Validate())
	tests := []struct {
		name   string
		mutate func(*Metric)
	}{
		{"reserved namespace", func(m *Metric) { m.Namespace = ":x" }},
		{"empty name", func(m *Metric) { m.Name = "" }},
		{"unit", func(m *Metric) { m.Unit = "Percentage" }},
		{"statistic", func(m *Metric) { m.Statistic = "Avg" }},
		{"dimension", func(m *Metric) { m.Dimensions = []string{"has space"} }},
		{"no meaning", func(m *Metric) { m.Meaning = "" }},
		{"prometheus without a job", func(m *Metric) { m.Origin = OriginPrometheus }},
		{"origin", func(m *Metric) { m.Origin = "somewhere" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			tc.mutate(&m)
			assert.Error(t, m.Validate())
		})
	}
	p99 := good
	p99.Statistic = "p99.9"
	assert.NoError(t, p99.Validate())
}

// The agent publishes only gauges and counters (it drops histograms), and
// a dimension can only be a label the metric has (or Stack, the scrape
// target's label): each Prometheus metric of the catalog must be one the
// endpoint exposes, of a type that reaches CloudWatch.
func TestPrometheusMetricsReachCloudWatch(t *testing.T) {
	exposed := map[string]PromMetric{}
	for _, p := range append(VLLMPrometheusMetrics(), GatewayPrometheusMetrics()...) {
		exposed[p.Name] = p
	}
	for _, name := range []string{"ec2 with gateway", "eks with gateway"} {
		t.Run(name, func(t *testing.T) { assertPrometheusMetricsExposed(t, exposed, catalogs(t)[name]) })
	}
}

func assertPrometheusMetricsExposed(t *testing.T, exposed map[string]PromMetric, c []Metric) {
	t.Helper()
	n := 0
	for _, m := range c {
		if m.Origin != OriginPrometheus {
			continue
		}
		n++
		p, ok := exposed[m.Name]
		require.True(t, ok, "%s is not exposed by vLLM or the gateway", m.Name)
		assert.Contains(t, []PromType{Counter, Gauge}, p.Type, "%s is a %s: the agent drops it", m.Name, p.Type)
		assert.Equal(t, StackDimension, m.Dimensions[0], m.Key())
		for _, d := range m.Dimensions[1:] {
			assert.Contains(t, p.Labels, d, "%s has no label %s", m.Name, d)
		}
		if p.Type == Counter {
			assert.Equal(t, "Sum", m.Statistic, "%s: a counter arrives as per-scrape deltas", m.Name)
		}
		assert.Equal(t, m.Namespace, "DeepSeekR1CN/prod")
	}
	assert.Equal(t, 15, n)
}

// Without the gateway, nothing of it is promised.
func TestEC2CatalogWithoutGateway(t *testing.T) {
	for _, m := range catalogs(t)["ec2"] {
		assert.NotEqual(t, JobGateway, m.Job, m.Key())
		assert.NotEqual(t, OriginLogFilter, m.Origin, m.Key())
	}
}

// Every metric of the EC2 target's own namespace that the agent publishes
// carries Stack, never an instance's id or host, so that alarms survive
// the Auto Scaling group replacing the instance; the audit-log metrics have
// no dimension at all.
func TestEC2MetricsSurviveReplacement(t *testing.T) {
	for _, m := range catalogs(t)["ec2 with gateway"] {
		for _, d := range m.Dimensions {
			assert.NotContains(t, []string{"InstanceId", "host", "index", "name", "instance"}, d, m.Key())
		}
		switch m.Origin {
		case OriginPrometheus, OriginNvidiaGPU:
			assert.Contains(t, m.Dimensions, StackDimension, m.Key())
		case OriginLogFilter:
			assert.Empty(t, m.Dimensions, m.Key())
		}
	}
}

func TestFind(t *testing.T) {
	c := catalogs(t)["ec2 with gateway"]
	m, ok := Find(c, "guardrail_interventions_total", "action", "type", "policy", "Stack")
	require.True(t, ok)
	assert.Equal(t, []string{"Stack", "policy", "type", "action"}, m.Dimensions)
	_, ok = Find(c, "guardrail_interventions_total", "Stack", "source")
	assert.False(t, ok)
	_, ok = Find(c, "HealthyHostCount", DimLoadBalancer, DimTargetGroup)
	assert.True(t, ok)
}

func TestSageMakerAndEKSDimensions(t *testing.T) {
	for _, m := range SageMakerMetrics() {
		assert.Equal(t, []string{DimEndpointName, DimVariantName}, m.Dimensions, m.Name)
		assert.Contains(t, []string{SageMakerNamespace, SageMakerEndpointNamespace}, m.Namespace)
	}
	for _, name := range []string{"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "OverheadLatency",
		"GPUUtilization", "GPUMemoryUtilization", "CPUUtilization", "MemoryUtilization", "DiskUtilization"} {
		assert.True(t, slices.ContainsFunc(SageMakerMetrics(), func(m Metric) bool { return m.Name == name }), name)
	}
	eks := catalogs(t)["eks with gateway"]
	insights, filtered := 0, 0
	for _, m := range eks {
		switch m.Origin {
		case OriginAWS:
			insights++
			assert.Equal(t, ContainerInsightsNamespace, m.Namespace, m.Key())
			assert.Equal(t, DimClusterName, m.Dimensions[0], m.Key())
		case OriginLogFilter:
			// The gateway's audit records in the add-on's application group.
			filtered++
			assert.Empty(t, m.Dimensions, m.Key())
		default:
			assert.Equal(t, OriginPrometheus, m.Origin, "%s: the sidecar publishes only its scrape", m.Key())
			assert.Equal(t, []string{StackDimension}, m.Dimensions[:1], m.Key())
		}
	}
	assert.Equal(t, 6, insights)
	assert.Equal(t, 5, filtered)
	noAddon, err := EKSMetrics(EKSOptions{Stack: "prod", Gateway: true})
	require.NoError(t, err)
	for _, m := range noAddon {
		assert.NotEqual(t, OriginLogFilter, m.Origin, "%s: without the add-on no log reaches CloudWatch to filter", m.Key())
	}
}

// The EKS sidecar publishes vLLM's and the gateway's metrics exactly as
// the EC2 agent does: same namespace, names, dimensions, units and
// statistics, so that one alarm definition fits both targets.
func TestEKSPrometheusMetricsAreEC2s(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprint("gateway ", gateway), func(t *testing.T) {
			ec2, err := EC2Metrics(EC2Options{Stack: "prod", Gateway: gateway})
			require.NoError(t, err)
			eks, err := EKSMetrics(EKSOptions{Stack: "prod", Gateway: gateway, ContainerInsights: true})
			require.NoError(t, err)
			prom := func(c []Metric) []Metric {
				var out []Metric
				for _, m := range c {
					if m.Origin == OriginPrometheus {
						out = append(out, m)
					}
				}
				return out
			}
			require.NotEmpty(t, prom(eks))
			assert.Equal(t, prom(ec2), prom(eks))
		})
	}
}

// Without the add-on there are no Container Insights metrics to alarm on,
// and without the gateway none of its metrics.
func TestEKSCatalogOptions(t *testing.T) {
	c, err := EKSMetrics(EKSOptions{Stack: "prod"})
	require.NoError(t, err)
	for _, m := range c {
		assert.NotEqual(t, ContainerInsightsNamespace, m.Namespace, m.Key())
		assert.NotEqual(t, JobGateway, m.Job, m.Key())
	}
	_, ok := Find(c, "vllm:num_requests_waiting", StackDimension)
	assert.True(t, ok)
	_, err = EKSMetrics(EKSOptions{Stack: ""})
	assert.Error(t, err)
}
