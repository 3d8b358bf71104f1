package telemetry

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func testAgent(gateway bool) EC2Agent {
	a := EC2Agent{Region: "cn-northwest-1", Stack: "prod", VLLMPort: 8000}
	if gateway {
		a.VLLMPort, a.GatewayPort = 8001, 8000
	}
	return a
}

// agentJSON renders and parses the agent configuration into plain maps:
// the test reads it by the key names of the agent's schema, not through
// the renderer's own types.
func agentJSON(t *testing.T, a EC2Agent) map[string]any {
	t.Helper()
	s, err := a.AgentConfig()
	require.NoError(t, err)
	assert.NotContains(t, s, "\n", "compact: it travels in the user data")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

// at walks a path of object keys and array indexes.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "not an object at %v", p)
			v, ok = m[k]
			require.True(t, ok, "no key %q", k)
		case int:
			a, ok := v.([]any)
			require.True(t, ok, "not an array at %v", p)
			require.Less(t, k, len(a))
			v = a[k]
		}
	}
	return v
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	a, ok := v.([]any)
	require.True(t, ok, "not an array: %v", v)
	var out []string
	for _, e := range a {
		s, ok := e.(string)
		require.True(t, ok)
		out = append(out, s)
	}
	return out
}

func TestAgentConfigAgentSection(t *testing.T) {
	m := agentJSON(t, testAgent(true))
	assert.Equal(t, "cn-northwest-1", at(t, m, "agent", "region"))
	assert.Equal(t, true, at(t, m, "agent", "omit_hostname"), "no host dimension: it changes with the instance")
	assert.Equal(t, "DeepSeekR1CN/prod", at(t, m, "metrics", "namespace"))
	assert.Equal(t, "DeepSeekR1CN/prod", at(t, m, "logs", "metrics_collected", "prometheus", "emf_processor", "metric_namespace"))
}

// The files the agent ships are the log groups' files, into those groups;
// no retention is set by the agent (the program owns it).
func TestAgentConfigLogs(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprint("gateway ", gateway), func(t *testing.T) {
			m := agentJSON(t, testAgent(gateway))
			groups, err := EC2LogGroups("prod", gateway)
			require.NoError(t, err)
			var want, got []string
			for _, g := range groups {
				if g.File != "" {
					want = append(want, g.File+" > "+g.Name+" / "+g.Stream)
				}
			}
			list := at(t, m, "logs", "logs_collected", "files", "collect_list").([]any)
			for i := range list {
				e := at(t, list, i).(map[string]any)
				got = append(got, fmt.Sprintf("%s > %s / %s", e["file_path"], e["log_group_name"], e["log_stream_name"]))
				assert.NotContains(t, e, "retention_in_days")
			}
			assert.Equal(t, want, got)
			metrics, _ := LogGroupByKey(groups, LogMetrics)
			assert.Equal(t, metrics.Name, at(t, m, "logs", "metrics_collected", "prometheus", "log_group_name"))
			assert.Equal(t, ScrapeConfigFile, at(t, m, "logs", "metrics_collected", "prometheus", "prometheus_config_path"))
		})
	}
}

// The GPU metrics published are the catalog's, with its units, under
// [Stack] only.
func TestAgentConfigGPU(t *testing.T) {
	m := agentJSON(t, testAgent(false))
	gpu := at(t, m, "metrics", "metrics_collected", "nvidia_gpu")
	var got []string
	for _, e := range gpu.(map[string]any)["measurement"].([]any) {
		got = append(got, GPUMetricPrefix+e.(map[string]any)["name"].(string)+" "+e.(map[string]any)["unit"].(string))
	}
	var want []string
	catalog, err := EC2Metrics(EC2Options{Stack: "prod"})
	require.NoError(t, err)
	for _, c := range catalog {
		if c.Origin == OriginNvidiaGPU {
			want = append(want, c.Name+" "+c.Unit)
			assert.Equal(t, []string{StackDimension}, c.Dimensions)
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, map[string]any{"Stack": "prod"}, at(t, gpu, "append_dimensions"))
	assert.Equal(t, []any{[]any{"Stack"}}, at(t, m, "metrics", "aggregation_dimensions"))
	var measured []string
	for _, w := range got {
		name, _, _ := strings.Cut(strings.TrimPrefix(w, GPUMetricPrefix), " ")
		measured = append(measured, name)
	}
	assert.Equal(t, measured, strs(t, at(t, gpu, "drop_original_metrics")), "the per-GPU originals are dropped")
}

// declared reads the metric declarations back as "job name [dims]", and
// checks the selectors are exact names.
func declared(t *testing.T, m map[string]any) []string {
	t.Helper()
	exact := regexp.MustCompile(`^\^(.+)\$$`)
	var out []string
	for _, d := range at(t, m, "logs", "metrics_collected", "prometheus", "emf_processor", "metric_declaration").([]any) {
		assert.Equal(t, []string{"job"}, strs(t, at(t, d, "source_labels")))
		matcher := at(t, d, "label_matcher").(string)
		job := exact.FindStringSubmatch(matcher)
		require.NotNil(t, job, "label matcher %q must match one job exactly", matcher)
		dims := at(t, d, "dimensions").([]any)
		require.Len(t, dims, 1)
		for _, sel := range strs(t, at(t, d, "metric_selectors")) {
			name := exact.FindStringSubmatch(sel)
			require.NotNil(t, name, "selector %q must match one name exactly", sel)
			assert.Equal(t, regexp.QuoteMeta(unquote(name[1])), name[1], "a literal name, not a pattern")
			out = append(out, fmt.Sprintf("%s %s [%s]", job[1], unquote(name[1]), strings.Join(strs(t, dims[0]), ",")))
		}
	}
	sort.Strings(out)
	return out
}

// unquote undoes regexp.QuoteMeta for the names the catalog has.
func unquote(s string) string { return strings.ReplaceAll(s, `\.`, ".") }

// Every catalog metric of the Prometheus path is declared, with its
// dimension set and under its job, and nothing else is: the declarations
// are what CloudWatch extracts metrics from.
func TestAgentConfigDeclaresExactlyTheCatalog(t *testing.T) {
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprint("gateway ", gateway), func(t *testing.T) {
			a := testAgent(gateway)
			catalog, err := EC2Metrics(a.Options())
			require.NoError(t, err)
			var want []string
			units := map[string]any{}
			for _, c := range catalog {
				if c.Origin == OriginPrometheus {
					want = append(want, fmt.Sprintf("%s %s [%s]", c.Job, c.Name, strings.Join(c.Dimensions, ",")))
					if c.Unit != "None" {
						units[c.Name] = c.Unit
					}
				}
			}
			sort.Strings(want)
			m := agentJSON(t, a)
			assert.Equal(t, want, declared(t, m))
			assert.Equal(t, units, at(t, m, "logs", "metrics_collected", "prometheus", "emf_processor", "metric_unit"))
		})
	}
}

// The declarations would catch a renamed metric: the test above fails when
// the catalog and the declarations disagree.
func TestDeclaredCatchesDrift(t *testing.T) {
	m := agentJSON(t, testAgent(true))
	decl := at(t, m, "logs", "metrics_collected", "prometheus", "emf_processor", "metric_declaration").([]any)
	sel := at(t, decl[0], "metric_selectors").([]any)
	sel[0] = "^vllm:num_requests_runnin$"
	got := declared(t, m)
	assert.Contains(t, got, "vllm vllm:num_requests_runnin [Stack]")
	assert.NotContains(t, got, "vllm vllm:num_requests_running [Stack]")
}

type scrape struct {
	Global struct {
		ScrapeInterval string `yaml:"scrape_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
		MetricRelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			Regex        string   `yaml:"regex"`
			Action       string   `yaml:"action"`
		} `yaml:"metric_relabel_configs"`
	} `yaml:"scrape_configs"`
}

// The scrape configuration scrapes vLLM and the gateway on loopback, labels
// them with the stack, and keeps exactly the catalog's metrics of each job.
func TestScrapeConfig(t *testing.T) {
	exposed := map[string][]string{}
	for _, p := range VLLMPrometheusMetrics() {
		exposed[JobVLLM] = append(exposed[JobVLLM], p.Name, p.Name+"_bucket", p.Name+"_created")
	}
	for _, p := range GatewayPrometheusMetrics() {
		exposed[JobGateway] = append(exposed[JobGateway], p.Name, p.Name+"_sum", p.Name+"_count")
	}
	exposed[JobGateway] = append(exposed[JobGateway], "go_goroutines", "process_cpu_seconds_total")
	for _, gateway := range []bool{false, true} {
		t.Run(fmt.Sprint("gateway ", gateway), func(t *testing.T) {
			a := testAgent(gateway)
			out, err := a.ScrapeConfig()
			require.NoError(t, err)
			var s scrape
			require.NoError(t, yaml.Unmarshal([]byte(out), &s))
			assert.Equal(t, "60s", s.Global.ScrapeInterval)
			wantJobs := []string{JobVLLM}
			ports := map[string]int{JobVLLM: a.VLLMPort}
			if gateway {
				wantJobs = append(wantJobs, JobGateway)
				ports[JobGateway] = a.GatewayPort
			}
			catalog, err := EC2Metrics(a.Options())
			require.NoError(t, err)
			var jobs []string
			for _, j := range s.ScrapeConfigs {
				jobs = append(jobs, j.JobName)
				require.Len(t, j.StaticConfigs, 1)
				assert.Equal(t, []string{fmt.Sprintf("127.0.0.1:%d", ports[j.JobName])}, j.StaticConfigs[0].Targets)
				assert.Equal(t, map[string]string{StackDimension: "prod"}, j.StaticConfigs[0].Labels)
				require.Len(t, j.MetricRelabelConfigs, 1)
				r := j.MetricRelabelConfigs[0]
				assert.Equal(t, "keep", r.Action)
				assert.Equal(t, []string{"__name__"}, r.SourceLabels)
				// Prometheus anchors relabel regexes at both ends.
				keep := regexp.MustCompile("^(?:" + r.Regex + ")$")
				var kept, want []string
				for _, n := range exposed[j.JobName] {
					if keep.MatchString(n) {
						kept = append(kept, n)
					}
				}
				for _, c := range catalog {
					if c.Origin == OriginPrometheus && c.Job == j.JobName && !slices.Contains(want, c.Name) {
						want = append(want, c.Name)
					}
				}
				assert.ElementsMatch(t, want, kept)
			}
			assert.Equal(t, wantJobs, jobs)
		})
	}
}

func TestAgentValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*EC2Agent)
		want   string
	}{
		{"no region", func(a *EC2Agent) { a.Region = "" }, "the region is empty"},
		{"bad stack", func(a *EC2Agent) { a.Stack = "a*b" }, "is not allowed"},
		{"no vLLM port", func(a *EC2Agent) { a.VLLMPort = 0 }, "vLLM port 0"},
		{"same ports", func(a *EC2Agent) { a.GatewayPort = a.VLLMPort }, "apart from vLLM's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := testAgent(true)
			tc.mutate(&a)
			_, err := a.AgentConfig()
			assert.ErrorContains(t, err, tc.want)
			_, err = a.ScrapeConfig()
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// The same input renders the same bytes: the user data, and with it the
// launch template, must not change between previews.
func TestAgentConfigIsStable(t *testing.T) {
	a := testAgent(true)
	first, err := a.AgentConfig()
	require.NoError(t, err)
	scrape, err := a.ScrapeConfig()
	require.NoError(t, err)
	for range 20 {
		again, _ := a.AgentConfig()
		assert.Equal(t, first, again)
		s, _ := a.ScrapeConfig()
		assert.Equal(t, scrape, s)
	}
}

func TestDefaultAgentPackage(t *testing.T) {
	assert.Equal(t, "s3://amazoncloudwatch-agent-cn-northwest-1/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb",
		DefaultAgentPackage("cn-northwest-1"))
}
