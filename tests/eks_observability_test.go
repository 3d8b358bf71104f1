package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/k8sserving"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// eksLogGroupNames maps the plan's log groups by name to their inputs.
func eksLogGroupNames(p *plan.Plan) map[string]plan.Resource {
	out := map[string]plan.Resource{}
	for _, r := range byType(p, "aws:cloudwatch/logGroup:LogGroup") {
		out[r.Inputs["name"].(string)] = r
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestEKSLogGroupsBeforeTheirWriters: with observability (the default) the
// program creates the control plane's, the add-on's and the sidecar's log
// groups with the configured retention and key, and the cluster and the
// add-on wait for theirs, so that they never create one without a
// retention.
func TestEKSLogGroupsBeforeTheirWriters(t *testing.T) {
	for _, tc := range []struct{ region, arnPrefix string }{{"cn-northwest-1", "arn:aws-cn:"}, {"us-east-1", "arn:aws:"}} {
		t.Run(tc.region, func(t *testing.T) {
			key := tc.arnPrefix + "kms:" + tc.region + ":123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
			p := mustPlan(t, eksCfg(tc.region, "logRetentionDays", "90", "kmsKeyArn", key))
			groups := eksLogGroupNames(p)
			assert.Equal(t, []string{
				"/aws/containerinsights/dsr1-test/application", "/aws/containerinsights/dsr1-test/dataplane",
				"/aws/containerinsights/dsr1-test/host", "/aws/containerinsights/dsr1-test/performance",
				"/aws/eks/dsr1-test/cluster", "/deepseek-r1-cn/test/eks/metrics",
			}, sortedKeys(groups))
			for name, g := range groups {
				assert.EqualValues(t, 90, g.Inputs["retentionInDays"], name)
				assert.Equal(t, key, g.Inputs["kmsKeyId"], name)
			}

			cluster := one(t, p, "eks:index:Cluster")
			assert.Contains(t, cluster.Dependencies, "dsr1-eks-log-cluster", "the control plane's group exists before the cluster")
			addon := observabilityAddon(t, p)
			for _, k := range []string{"application", "dataplane", "host", "performance"} {
				assert.Contains(t, addon.Dependencies, "dsr1-eks-log-"+k)
			}
			assert.ElementsMatch(t, []any{"api", "audit", "authenticator"}, cluster.Inputs["enabledClusterLogTypes"])

			// Without a key, CloudWatch Logs' own encryption.
			for name, g := range eksLogGroupNames(mustPlan(t, eksCfg(tc.region))) {
				assert.NotContains(t, g.Inputs, "kmsKeyId", name)
				assert.EqualValues(t, 30, g.Inputs["retentionInDays"], name)
			}
		})
	}
}

func observabilityAddon(t *testing.T, p *plan.Plan) plan.Resource {
	t.Helper()
	var out []plan.Resource
	for _, a := range byType(p, "aws:eks/addon:Addon") {
		if a.Inputs["addonName"] == eks.AddonCloudWatchObservability {
			out = append(out, a)
		}
	}
	require.Len(t, out, 1)
	return out[0]
}

// TestEKSObservabilityAddon: the add-on runs with an IRSA role that only
// its service account can assume, with the managed policy by the
// partition's ARN, tolerating the GPU nodes' taint, after the node groups;
// its version is EKS's default unless pinned.
func TestEKSObservabilityAddon(t *testing.T) {
	for _, tc := range []struct{ region, partition, dnsSuffix string }{
		{"cn-northwest-1", "aws-cn", "amazonaws.com.cn"}, {"us-east-1", "aws", "amazonaws.com"},
	} {
		t.Run(tc.region, func(t *testing.T) {
			p := mustPlan(t, eksCfg(tc.region))
			addon := observabilityAddon(t, p)
			assert.Equal(t, "dsr1-test", addon.Inputs["clusterName"])
			assert.Equal(t, "OVERWRITE", addon.Inputs["resolveConflictsOnCreate"])
			assert.NotContains(t, addon.Inputs, "addonVersion", "EKS's default version unless pinned")
			assert.Subset(t, addon.Dependencies, []string{"dsr1-eks-system", "dsr1-eks-gpu"})

			role := byName(t, p, "aws:iam/role:Role", "dsr1-eks-cloudwatch-observability")
			assert.Equal(t, "arn:"+tc.partition+":iam::123456789012:role/dsr1-eks-cloudwatch-observability-offline", addon.Inputs["serviceAccountRoleArn"])
			trust := parsePolicy(t, role.Inputs["assumeRolePolicy"])
			require.Len(t, trust.Statement, 1)
			issuer := "oidc.eks." + tc.region + "." + tc.dnsSuffix + "/id/OFFLINE"
			assert.Equal(t, "arn:"+tc.partition+":iam::123456789012:oidc-provider/"+issuer, trust.Statement[0].Principal["Federated"])
			assert.Equal(t, map[string]any{
				issuer + ":sub": "system:serviceaccount:amazon-cloudwatch:cloudwatch-agent",
				issuer + ":aud": "sts.amazonaws.com",
			}, trust.Statement[0].Condition["StringEquals"])
			attach := byName(t, p, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "dsr1-eks-cloudwatch-observability-CloudWatchAgentServerPolicy")
			assert.Equal(t, "arn:"+tc.partition+":iam::aws:policy/CloudWatchAgentServerPolicy", attach.Inputs["policyArn"])
			assert.Equal(t, "dsr1-eks-cloudwatch-observability-offline", attach.Inputs["role"])
			assert.Contains(t, addon.Dependencies, attach.Name, "the role has its policy before the pods start")

			var values struct {
				Tolerations []eks.Toleration `json:"tolerations"`
			}
			require.NoError(t, json.Unmarshal([]byte(addon.Inputs["configurationValues"].(string)), &values))
			assert.True(t, toleratesTaint(values.Tolerations, "nvidia.com/gpu", "NoSchedule"),
				"the add-on's DaemonSets run on the GPU nodes: %v", values.Tolerations)

			assert.Equal(t, map[string]any{"name": "amazon-cloudwatch-observability", "version": "v6.4.0-eksbuild.1", "pinned": false},
				p.Outputs["observabilityAddon"], "EKS's default as the stand-in answers it")

			pinned := mustPlan(t, eksCfg(tc.region, "eksAddonVersions", `{"amazon-cloudwatch-observability": "v4.10.3-eksbuild.1"}`))
			assert.Equal(t, "v4.10.3-eksbuild.1", observabilityAddon(t, pinned).Inputs["addonVersion"])
			assert.Equal(t, true, pinned.Outputs["observabilityAddon"].(map[string]any)["pinned"])
		})
	}
}

// toleratesTaint is Kubernetes' toleration matching for one taint.
func toleratesTaint(tols []eks.Toleration, key, effect string) bool {
	for _, t := range tols {
		if (t.Key == key || (t.Key == "" && t.Operator == "Exists")) && (t.Effect == "" || t.Effect == effect) {
			return true
		}
	}
	return false
}

// withoutAddon is the stand-in of a region whose EKS does not offer the
// CloudWatch Observability add-on.
func withoutAddon(region string) *plan.Catalog {
	c := plan.DefaultCatalog(region, nil)
	delete(c.AddonVersions, eks.AddonCloudWatchObservability)
	return c
}

// TestEKSObservabilityAddonMissingInTheRegion: where EKS does not offer the
// add-on, the preview fails before anything is created and names the key
// that turns it off; with that key off the stack plans without it, keeping
// the control plane's log group and the metrics sidecar.
func TestEKSObservabilityAddonMissingInTheRegion(t *testing.T) {
	_, err := runWith(eksCfg("cn-northwest-1"), withoutAddon("cn-northwest-1"))
	require.Error(t, err)
	var pe *plan.ProgramError
	require.True(t, errors.As(err, &pe))
	assert.Zero(t, pe.Registered, "nothing is created before the refusal")
	for _, want := range []string{`deepseek-r1-cn:eksObservabilityAddon = "true"`, "amazon-cloudwatch-observability",
		"Kubernetes 1.33 in cn-northwest-1", "empty result", "set deepseek-r1-cn:eksObservabilityAddon to false"} {
		assert.Contains(t, err.Error(), want)
	}

	p, err := runWith(eksCfg("cn-northwest-1", "eksObservabilityAddon", "false"), withoutAddon("cn-northwest-1"))
	require.NoError(t, err)
	for _, a := range byType(p, "aws:eks/addon:Addon") {
		assert.NotEqual(t, eks.AddonCloudWatchObservability, a.Inputs["addonName"])
	}
	assert.Equal(t, []string{"/aws/eks/dsr1-test/cluster", "/deepseek-r1-cn/test/eks/metrics"}, sortedKeys(eksLogGroupNames(p)))
	assert.Contains(t, containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))), k8sserving.MetricsAgentContainer)
	assert.NotContains(t, p.Outputs, "observabilityAddon")

	// Without the add-on's DaemonSets on the GPU node, vLLM gets their share back.
	with := containers(podSpec(k8s(t, mustPlan(t, eksCfg("cn-northwest-1")), "kubernetes:apps/v1:Deployment")))["vllm"]
	without := containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment")))["vllm"]
	cpu := func(c map[string]any) int {
		return quantity(t, c["resources"].(map[string]any)["requests"].(map[string]any)["cpu"], "m")
	}
	// (the share is rounded down to 100m)
	assert.InDelta(t, eks.ObservabilityGPUNodeRequests.MilliCPU, cpu(without)-cpu(with), 99)
}

// TestEKSWithoutObservability: observability off removes the log groups,
// the add-on, the sidecar and its permission, and asks AWS nothing about
// the add-on.
func TestEKSWithoutObservability(t *testing.T) {
	for _, region := range []string{"cn-northwest-1", "us-east-1"} {
		t.Run(region, func(t *testing.T) {
			p, err := runWith(eksCfg(region, "observability", "false"), withoutAddon(region))
			require.NoError(t, err)
			assert.Empty(t, byType(p, "aws:cloudwatch/logGroup:LogGroup"))
			assert.Len(t, byType(p, "aws:eks/addon:Addon"), 3)
			assert.Len(t, planImages(p), 3, "no sidecar")
			assert.NotContains(t, containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))), k8sserving.MetricsAgentContainer)
			for _, rp := range byType(p, "aws:iam/rolePolicy:RolePolicy") {
				assert.NotEqual(t, "dsr1-serving-metrics", rp.Name)
			}
			assert.NotContains(t, p.Outputs, "logGroups")
		})
	}
}

// TestEKSMetricsSidecar: each vLLM pod runs the CloudWatch agent from ECR
// in the region, without probes, sized like the other containers, reading
// the configuration the catalog renders for this stack and cluster, and
// writing the metrics log group the program created, which is all its
// role's new statement allows.
func TestEKSMetricsSidecar(t *testing.T) {
	cases := []struct {
		region, partition, registry string
		guardrail                   bool
		targets                     []string
	}{
		{"cn-northwest-1", "aws-cn", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", false, []string{"127.0.0.1:8000"}},
		{"cn-northwest-1", "aws-cn", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", true, []string{"127.0.0.1:8001", "127.0.0.1:8000"}},
		{"us-east-1", "aws", "123456789012.dkr.ecr.us-east-1.amazonaws.com", false, []string{"127.0.0.1:8000"}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s guardrail %v", tc.region, tc.guardrail), func(t *testing.T) {
			inProject(t)
			p := mustPlan(t, eksCfg(tc.region, "guardrail", fmt.Sprint(tc.guardrail)))
			spec := podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))
			cs := containers(spec)
			agent, ok := cs[k8sserving.MetricsAgentContainer]
			require.True(t, ok)
			assert.Equal(t, tc.registry+"/cloudwatch-agent/cloudwatch-agent:1.300070.0b1586", agent["image"])
			for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
				assert.NotContains(t, agent, probe, "a sidecar's probe would take vLLM out of the Service")
			}
			res := agent["resources"].(map[string]any)
			assert.Equal(t, res["limits"], res["requests"], "Guaranteed QoS kept")
			assert.Equal(t, map[string]any{"cpu": "200m", "memory": "256Mi"}, res["limits"])
			env := map[string]any{}
			for _, e := range agent["env"].([]any) {
				env[e.(map[string]any)["name"].(string)] = e.(map[string]any)["value"]
			}
			assert.Equal(t, map[string]any{"RUN_IN_CONTAINER": "True", "RUN_WITH_IRSA": "True", "AWS_REGION": tc.region,
				"AWS_STS_REGIONAL_ENDPOINTS": "regional", "GOMEMLIMIT": "204MiB"}, env)
			sc := agent["securityContext"].(map[string]any)
			assert.Equal(t, false, sc["allowPrivilegeEscalation"])
			assert.Equal(t, []any{"ALL"}, sc["capabilities"].(map[string]any)["drop"])
			assert.Equal(t, "vllm", spec["serviceAccountName"], "the pod's one service account")

			mounts := map[string]string{}
			for _, m := range agent["volumeMounts"].([]any) {
				mounts[m.(map[string]any)["name"].(string)] = m.(map[string]any)["mountPath"].(string)
			}
			assert.Equal(t, "/etc/cwagentconfig", mounts["cloudwatch-agent-config"])
			assert.Equal(t, "/etc/prometheusconfig", mounts["cloudwatch-agent-scrape"])
			assert.Equal(t, []any{map[string]any{"key": "cwagentconfig.json", "path": "cwagentconfig.json"}},
				volume(t, spec, "cloudwatch-agent-config")["configMap"].(map[string]any)["items"])

			cm := byName(t, p, "kubernetes:core/v1:ConfigMap", "dsr1-serving-cloudwatch-agent").Inputs
			assert.Equal(t, "cloudwatch-agent", cm["metadata"].(map[string]any)["name"])
			data := cm["data"].(map[string]any)
			var config struct {
				Agent struct {
					Region string `json:"region"`
				} `json:"agent"`
				Logs struct {
					MetricsCollected struct {
						Prometheus struct {
							ClusterName          string `json:"cluster_name"`
							LogGroupName         string `json:"log_group_name"`
							PrometheusConfigPath string `json:"prometheus_config_path"`
							EMFProcessor         struct {
								MetricNamespace   string `json:"metric_namespace"`
								MetricDeclaration []struct {
									LabelMatcher    string   `json:"label_matcher"`
									MetricSelectors []string `json:"metric_selectors"`
								} `json:"metric_declaration"`
							} `json:"emf_processor"`
						} `json:"prometheus"`
					} `json:"metrics_collected"`
				} `json:"logs"`
			}
			require.NoError(t, json.Unmarshal([]byte(data["cwagentconfig.json"].(string)), &config))
			prom := config.Logs.MetricsCollected.Prometheus
			assert.Equal(t, tc.region, config.Agent.Region)
			assert.Equal(t, k8sCluster(t, p)["name"], prom.ClusterName, "the cluster's own name")
			assert.Contains(t, eksLogGroupNames(p), prom.LogGroupName, "a group the program creates")
			assert.Equal(t, "/deepseek-r1-cn/test/eks/metrics", prom.LogGroupName)
			assert.Equal(t, "DeepSeekR1CN/test", prom.EMFProcessor.MetricNamespace)
			assert.Equal(t, "/etc/prometheusconfig/prometheus.yaml", prom.PrometheusConfigPath)

			// The declared metrics are the catalog's, which the lead's alarms read.
			catalog, err := telemetry.EKSMetrics(telemetry.EKSOptions{Stack: "test", Gateway: tc.guardrail})
			require.NoError(t, err)
			var want, got []string
			for _, m := range catalog {
				if !slices.Contains(want, m.Name) {
					want = append(want, m.Name)
				}
			}
			for _, d := range prom.EMFProcessor.MetricDeclaration {
				for _, s := range d.MetricSelectors {
					name := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(s, "^"), "$"), `\.`, ".")
					if !slices.Contains(got, name) {
						got = append(got, name)
					}
				}
			}
			assert.ElementsMatch(t, want, got)

			var scrape struct {
				ScrapeConfigs []struct {
					StaticConfigs []struct {
						Targets []string          `yaml:"targets"`
						Labels  map[string]string `yaml:"labels"`
					} `yaml:"static_configs"`
				} `yaml:"scrape_configs"`
			}
			require.NoError(t, yaml.Unmarshal([]byte(data["prometheus.yaml"].(string)), &scrape))
			var targets []string
			for _, j := range scrape.ScrapeConfigs {
				targets = append(targets, j.StaticConfigs[0].Targets...)
				assert.Equal(t, map[string]string{"Stack": "test"}, j.StaticConfigs[0].Labels)
			}
			assert.Equal(t, tc.targets, targets, "vLLM and the gateway on the pod's loopback")

			rp := byName(t, p, "aws:iam/rolePolicy:RolePolicy", "dsr1-serving-metrics")
			assert.Equal(t, "dsr1-serving-weights-offline", rp.Inputs["role"], "the vllm service account's role")
			doc := parsePolicy(t, rp.Inputs["policy"])
			require.Len(t, doc.Statement, 1)
			arn := "arn:" + tc.partition + ":logs:" + tc.region + ":123456789012:log-group:/deepseek-r1-cn/test/eks/metrics"
			assert.Equal(t, []string{arn, arn + ":*"}, doc.Statement[0].Resource)
			assert.Equal(t, []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, doc.Statement[0].Action)

			assert.Equal(t, tc.registry+"/cloudwatch-agent/cloudwatch-agent:1.300070.0b1586",
				p.Outputs["images"].(map[string]any)["cloudwatchAgent"])
			assert.Equal(t, "DeepSeekR1CN/test", p.Outputs["metricsNamespace"])
			assert.Equal(t, "/deepseek-r1-cn/test/eks/metrics", p.Outputs["logGroups"].(map[string]any)["metrics"])
		})
	}
}

// TestEKSCloudWatchAgentImage: the sidecar's image is configurable, and,
// like the other images, must be in the region's ECR with a fixed tag.
func TestEKSCloudWatchAgentImage(t *testing.T) {
	const reg = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"
	digest := reg + "/mirror/cloudwatch-agent@sha256:" + strings.Repeat("cd", 32)
	p := mustPlan(t, eksCfg("cn-northwest-1", "cloudwatchAgentImage", digest))
	assert.Equal(t, digest, containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment")))[k8sserving.MetricsAgentContainer]["image"])
	p = mustPlan(t, eksCfg("cn-northwest-1", "imageRegistry", "210987654321.dkr.ecr.cn-northwest-1.amazonaws.com.cn"))
	assert.Equal(t, "210987654321.dkr.ecr.cn-northwest-1.amazonaws.com.cn/cloudwatch-agent/cloudwatch-agent:1.300070.0b1586",
		containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment")))[k8sserving.MetricsAgentContainer]["image"])

	for _, tc := range []struct{ image, want string }{
		{"public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300070.0b1586", "mirror it into ECR first"},
		{"cloudwatch-agent/cloudwatch-agent:1.300070.0b1586", "mirror it into ECR first"},
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/cloudwatch-agent/cloudwatch-agent:1.300070.0b1586", "private ECR registry of cn-northwest-1"},
		{reg + "/cloudwatch-agent/cloudwatch-agent:latest", "never latest"},
		{reg + "/cloudwatch-agent/cloudwatch-agent", "never latest"},
	} {
		t.Run(tc.image, func(t *testing.T) {
			err := configErr(t, eksCfg("cn-northwest-1", "cloudwatchAgentImage", tc.image))
			assert.Contains(t, err.Error(), `deepseek-r1-cn:cloudwatchAgentImage = "`+tc.image+`"`)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	err := configErr(t, eksCfg("cn-northwest-1", "eksAddonVersions", `{"amazon-cloudwatch-observability": "4.10.3"}`))
	assert.Contains(t, err.Error(), "must be an EKS add-on version such as v1.2.3-eksbuild.1")
	err = configErr(t, eksCfg("cn-northwest-1", "eksAddonVersions", `{"cloudwatch": "v4.10.3-eksbuild.1"}`))
	assert.Contains(t, err.Error(), "amazon-cloudwatch-observability")
	err = configErr(t, eksCfg("cn-northwest-1", "eksObservabilityAddon", "maybe"))
	assert.Contains(t, err.Error(), `deepseek-r1-cn:eksObservabilityAddon = "maybe": must be true or false`)
}

// TestStandinAddonVersion: the stand-in answers getAddonVersion like the
// AWS provider: the default version of an add-on the region offers, the
// provider's "empty result" for any other name or an unknown Kubernetes
// version, so that the program's refusal path is exercised, not assumed.
func TestStandinAddonVersion(t *testing.T) {
	ask := func(name, k8s string) (string, error) {
		var got string
		_, err := plan.RunStandins("cn-northwest-1", func(ctx *pulumi.Context) error {
			v, err := awseks.GetAddonVersion(ctx, &awseks.GetAddonVersionArgs{AddonName: name, KubernetesVersion: k8s})
			if err != nil {
				return err
			}
			got = v.Version
			return nil
		})
		return got, err
	}
	v, err := ask("amazon-cloudwatch-observability", "1.33")
	require.NoError(t, err)
	assert.Regexp(t, eks.AddonVersionPattern, v)
	v, err = ask("coredns", "1.33")
	require.NoError(t, err)
	assert.Equal(t, eks.DefaultAddonVersions[eks.AddonCoreDNS], v)
	_, err = ask("amazon-cloudwatch-observabilty", "1.33")
	assert.ErrorContains(t, err, "reading EKS Add-On version info (amazon-cloudwatch-observabilty, 1.33): empty result")
	_, err = ask("coredns", "latest")
	assert.ErrorContains(t, err, "empty result")
}
