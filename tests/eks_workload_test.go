package tests

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// containers maps a pod spec's containers (and init containers) by name.
func containers(spec map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, list := range []string{"containers", "initContainers"} {
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			ct := c.(map[string]any)
			out[ct["name"].(string)] = ct
		}
	}
	return out
}

// quantity reads "1500m" as 1500 and "2048Mi" as 2048.
func quantity(t *testing.T, v any, unit string) int {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%v is not a quantity", v)
	n, err := strconv.Atoi(strings.TrimSuffix(s, unit))
	require.NoError(t, err, s)
	return n
}

// TestEKSPodHygiene: every container of the vLLM pod has CPU and memory
// with requests equal to limits (Guaranteed QoS, last to be evicted), vLLM
// takes the lion's share of the node, probes wait longer than the 1 s
// default, a PodDisruptionBudget allows one pod down at a time, and
// `pulumi up` does not wait for the model to load.
func TestEKSPodHygiene(t *testing.T) {
	inProject(t)
	cases := []struct {
		name         string
		cfg          map[string]string
		nodeMilliCPU int
		nodeMiB      int
		perNode      int
	}{
		{"14B TP 4 on g5.12xlarge with the guardrail", eksCfg("cn-northwest-1", "guardrail", "true"), 48000, 192 * 1024, 1},
		{"7B on g5.xlarge", eksCfg("cn-northwest-1", "model", "deepseek-r1-distill-qwen-7b", "instanceType", "g5.xlarge"),
			4000, 16 * 1024, 1},
		{"1.5B on g4dn.xlarge, us-east-1", eksCfg("us-east-1", "model", "deepseek-r1-distill-qwen-1.5b", "instanceType", "g4dn.xlarge"),
			4000, 16 * 1024, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, c.cfg)
			dep := k8s(t, p, "kubernetes:apps/v1:Deployment")
			assert.Equal(t, "true", dep["metadata"].(map[string]any)["annotations"].(map[string]any)["pulumi.com/skipAwait"])
			spec := podSpec(dep)
			cs := containers(spec)
			sumCPU, sumMem := 0, 0
			for name, ct := range cs {
				res, ok := ct["resources"].(map[string]any)
				require.True(t, ok, "%s has no resources", name)
				assert.Equal(t, res["limits"], res["requests"], "%s: requests equal limits", name)
				lim := res["limits"].(map[string]any)
				cpu, mem := quantity(t, lim["cpu"], "m"), quantity(t, lim["memory"], "Mi")
				assert.Positive(t, cpu, name)
				assert.Positive(t, mem, name)
				if name != "fetch-weights" { // init containers run before the others
					sumCPU += cpu
					sumMem += mem
				}
			}
			vllm := cs["vllm"]["resources"].(map[string]any)["limits"].(map[string]any)
			vCPU, vMem := quantity(t, vllm["cpu"], "m"), quantity(t, vllm["memory"], "Mi")
			// The CloudWatch Observability add-on's DaemonSets run on the GPU
			// node as system-node-critical: the pods leave them room, or
			// they would preempt vLLM.
			addon := eks.ObservabilityGPUNodeRequests
			nodeCPU, nodeMiB := c.nodeMilliCPU-addon.MilliCPU, c.nodeMiB-addon.MemoryMiB
			assert.LessOrEqual(t, sumCPU*c.perNode, nodeCPU-100, "the node keeps CPU for the kubelet and DaemonSets")
			assert.LessOrEqual(t, sumMem*c.perNode, nodeMiB-1024, "the node keeps memory for the kubelet and DaemonSets")
			assert.Greater(t, vCPU*10, nodeCPU*7/c.perNode, "vLLM gets the lion's share of the CPU")
			assert.Greater(t, vMem*10, nodeMiB*8/c.perNode, "and of the memory")
			if gw, ok := cs["guardrail"]; ok {
				gwLim := gw["resources"].(map[string]any)["limits"].(map[string]any)
				assert.Less(t, quantity(t, gwLim["cpu"], "m"), vCPU/4)
				for _, probe := range []string{"readinessProbe", "livenessProbe"} {
					assert.Greater(t, gw[probe].(map[string]any)["timeoutSeconds"], 1.0, "guardrail %s", probe)
				}
			}
			for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
				assert.Greater(t, cs["vllm"][probe].(map[string]any)["timeoutSeconds"], 1.0, "vLLM %s", probe)
			}
			shm := volume(t, spec, "shm")
			assert.Less(t, quantity(t, shm["emptyDir"].(map[string]any)["sizeLimit"], "Mi"), vMem,
				"/dev/shm is memory charged to vLLM, below its limit")

			pdb := k8s(t, p, "kubernetes:policy/v1:PodDisruptionBudget")
			assert.Equal(t, "deepseek-r1", pdb["metadata"].(map[string]any)["namespace"])
			assert.Equal(t, 1.0, pdb["spec"].(map[string]any)["maxUnavailable"], "never blocks a drain with one replica")
			assert.Equal(t, spec["nodeSelector"], map[string]any{"deepseek-r1-cn/node-role": "gpu"})
			assert.Equal(t, map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "vllm"}},
				pdb["spec"].(map[string]any)["selector"])

			plugin := podSpec(k8s(t, p, "kubernetes:apps/v1:DaemonSet"))["containers"].([]any)[0].(map[string]any)
			assert.Contains(t, plugin, "resources", "the device plugin asks for its share too")
		})
	}
}

// TestEKSGuardrailImagePinned: the gateway's image has a fixed tag, never
// latest, and config that would float it is refused.
func TestEKSGuardrailImagePinned(t *testing.T) {
	inProject(t)
	gw := containers(podSpec(k8s(t, mustPlan(t, eksCfg("cn-northwest-1", "guardrail", "true")), "kubernetes:apps/v1:Deployment")))["guardrail"]
	assert.Equal(t, "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/deepseek-r1-cn/guardrail:0.1.0", gw["image"])

	gw = containers(podSpec(k8s(t, mustPlan(t, eksCfg("cn-northwest-1", "guardrail", "true", "guardrailImageTag", "2026.08.1")),
		"kubernetes:apps/v1:Deployment")))["guardrail"]
	assert.True(t, strings.HasSuffix(gw["image"].(string), "/deepseek-r1-cn/guardrail:2026.08.1"))

	const reg = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"
	digest := reg + "/deepseek-r1-cn/guardrail@sha256:" + strings.Repeat("ab", 32)
	gw = containers(podSpec(k8s(t, mustPlan(t, eksCfg("cn-northwest-1", "guardrail", "true", "guardrailImage", digest)),
		"kubernetes:apps/v1:Deployment")))["guardrail"]
	assert.Equal(t, digest, gw["image"])

	cases := map[string][]string{
		`deepseek-r1-cn:guardrailImageTag = "latest"`:                                   {"guardrailImageTag", "latest"},
		`deepseek-r1-cn:guardrailImage = "` + reg + `/deepseek-r1-cn/guardrail:latest"`: {"guardrailImage", reg + "/deepseek-r1-cn/guardrail:latest"},
		`deepseek-r1-cn:vllmImage = "` + reg + `/vllm/vllm-openai"`:                     {"vllmImage", reg + "/vllm/vllm-openai"},
	}
	for want, kv := range cases {
		t.Run(kv[0], func(t *testing.T) {
			err := configErr(t, eksCfg("cn-northwest-1", "guardrail", "true", kv[0], kv[1]))
			assert.Contains(t, err.Error(), want)
			assert.Contains(t, err.Error(), "never latest")
		})
	}
}

// TestEKSInternalLoadBalancerInPrivateSubnets: the internal NLB is placed in
// the private subnets by name, with the annotations the AWS cloud
// provider's service controller reads, for a new and an existing VPC.
func TestEKSInternalLoadBalancerInPrivateSubnets(t *testing.T) {
	cases := []struct {
		name    string
		cfg     map[string]string
		subnets string
	}{
		{"new VPC, cn-northwest-1", eksCfg("cn-northwest-1", "eksInternalLoadBalancer", "true"),
			"subnet-dsr1-private-cn-northwest-1a,subnet-dsr1-private-cn-northwest-1b"},
		{"new VPC, us-east-1", eksCfg("us-east-1", "eksInternalLoadBalancer", "true"),
			"subnet-dsr1-private-us-east-1a,subnet-dsr1-private-us-east-1b"},
		{"existing VPC", eksCfg("cn-northwest-1", "eksInternalLoadBalancer", "true", "vpcId", "vpc-0abc1234",
			"subnetIds", `["subnet-0aaa1111", "subnet-0bbb2222"]`), "subnet-0aaa1111,subnet-0bbb2222"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, c.cfg)
			svc := k8s(t, p, "kubernetes:core/v1:Service")
			assert.Equal(t, "LoadBalancer", svc["spec"].(map[string]any)["type"])
			assert.Equal(t, map[string]any{
				"service.beta.kubernetes.io/aws-load-balancer-type":     "nlb",
				"service.beta.kubernetes.io/aws-load-balancer-internal": "true",
				"service.beta.kubernetes.io/aws-load-balancer-subnets":  c.subnets,
			}, svc["metadata"].(map[string]any)["annotations"])
			assert.Equal(t, c.subnets, strings.Join(toStrings(k8sCluster(t, p)["privateSubnetIds"]), ","),
				"the NLB's subnets are the cluster's private subnets")
			assert.NotContains(t, c.subnets, "dsr1-public", "never the NAT gateway's public subnet")
		})
	}
}

// TestEKSReplicasFitDesiredNodes: replicas are checked against the nodes
// the group starts with; the maximum only matters when someone scales.
func TestEKSReplicasFitDesiredNodes(t *testing.T) {
	p := mustPlan(t, eksCfg("cn-northwest-1", "eksReplicas", "2", "eksGpuNodesDesired", "2", "eksGpuNodesMax", "3"))
	assert.Equal(t, 2.0, podSpecOwner(k8s(t, p, "kubernetes:apps/v1:Deployment"))["replicas"])
	gpu := byName(t, p, "eks:index:ManagedNodeGroup", "dsr1-eks-gpu").Inputs
	assert.Equal(t, map[string]any{"minSize": 1.0, "desiredSize": 2.0, "maxSize": 3.0}, gpu["scalingConfig"])
}

func podSpecOwner(obj map[string]any) map[string]any { return obj["spec"].(map[string]any) }

// TestEKSOnV100: the AL2023 NVIDIA AMI loads NVIDIA's proprietary kernel
// module for GPUs the open one does not support, Volta among them, so p3
// nodes are allowed on EKS.
func TestEKSOnV100(t *testing.T) {
	p := mustPlan(t, eksCfg("cn-north-1", "instanceType", "p3.8xlarge", "model", "deepseek-r1-distill-qwen-7b"))
	gpu := byName(t, p, "eks:index:ManagedNodeGroup", "dsr1-eks-gpu").Inputs
	assert.Equal(t, "AL2023_x86_64_NVIDIA", gpu["amiType"])
	assert.Equal(t, []any{"p3.8xlarge"}, gpu["instanceTypes"])
	assert.Equal(t, "float16", p.Sizing.DType, "V100 has no bfloat16")
}

// TestEKSAttentionBackendOnT4: vLLM on T4 nodes gets the attention backend
// the EC2 server gets there (vLLM #25528); A10G nodes leave it to vLLM.
func TestEKSAttentionBackendOnT4(t *testing.T) {
	env := func(p *plan.Plan) map[string]string {
		out := map[string]string{}
		for _, ct := range podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))["containers"].([]any) {
			c := ct.(map[string]any)
			if c["name"] != "vllm" {
				continue
			}
			for _, e := range c["env"].([]any) {
				e := e.(map[string]any)
				if v, ok := e["value"].(string); ok {
					out[e["name"].(string)] = v
				}
			}
		}
		return out
	}
	p := mustPlan(t, eksCfg("cn-northwest-1", "instanceType", "g4dn.12xlarge"))
	assert.Equal(t, "TRITON_ATTN_VLLM_V1", env(p)["VLLM_ATTENTION_BACKEND"])
	assert.Contains(t, strings.Join(p.Sizing.Notes, " "), "FlexAttention")
	assert.NotContains(t, env(mustPlan(t, eksCfg("cn-northwest-1")))["VLLM_ATTENTION_BACKEND"], "TRITON")
}
