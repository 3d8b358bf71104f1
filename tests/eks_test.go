package tests

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// testEgress is the deployer's egress network the EKS tests configure: an
// RFC 5737 documentation address, which plans (with a warning) and which
// `pulumi up` refuses (TestEKSPlaceholderRefusedAtDeploy).
const testEgress = "198.51.100.7/32"

// eksCfg is an EKS stack; kv may override any key, eksPublicAccessCidrs too.
func eksCfg(region string, kv ...string) map[string]string {
	base := []string{"aws:region", region, "target", "eks", "model", "deepseek-r1-distill-qwen-14b", "instanceType", "g5.12xlarge",
		"eksPublicAccessCidrs", `["` + testEgress + `"]`}
	return cfg(append(base, kv...)...)
}

// k8s returns the one Kubernetes resource of a kind.
func k8s(t *testing.T, p *plan.Plan, typ string) map[string]any {
	t.Helper()
	return one(t, p, typ).Inputs
}

// volume finds a pod spec's volume by name.
func volume(t *testing.T, spec map[string]any, name string) map[string]any {
	t.Helper()
	for _, v := range spec["volumes"].([]any) {
		if v.(map[string]any)["name"] == name {
			return v.(map[string]any)
		}
	}
	require.Failf(t, "no volume", "no volume %s", name)
	return nil
}

// podSpec digs the pod spec out of a Deployment or DaemonSet.
func podSpec(obj map[string]any) map[string]any {
	return obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
}

func TestEKSPerPartition(t *testing.T) {
	cases := []struct {
		region, arnPrefix, registry string
		nodeTrust                   []any
		mustNotLeak                 []string
	}{
		{"cn-northwest-1", "arn:aws-cn:", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/",
			[]any{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"}, []string{"arn:aws:"}},
		{"us-east-1", "arn:aws:", "123456789012.dkr.ecr.us-east-1.amazonaws.com/",
			[]any{"ec2.amazonaws.com"}, []string{"arn:aws-cn:", "amazonaws.com.cn", "cn.com.amazonaws"}},
	}
	for _, c := range cases {
		t.Run(c.region, func(t *testing.T) {
			p := mustPlan(t, eksCfg(c.region))
			assertPartitionClean(t, p, c.arnPrefix, c.mustNotLeak)
			assertNoAdminWildcards(t, p)
			assertWeightsBucketSafe(t, p)
			assertNoOpenIngress(t, p)
			assertNoOpenIngress(t, mustPlan(t, eksCfg(c.region, "eksInternalLoadBalancer", "true")))

			clusterRole := byName(t, p, "aws:iam/role:Role", "dsr1-eks-cluster")
			doc := parsePolicy(t, clusterRole.Inputs["assumeRolePolicy"])
			assert.Equal(t, "eks.amazonaws.com", doc.Statement[0].Principal["Service"],
				"IAM rejects eks.amazonaws.com.cn")
			nodeRole := byName(t, p, "aws:iam/role:Role", "dsr1-eks-node")
			doc = parsePolicy(t, nodeRole.Inputs["assumeRolePolicy"])
			got := doc.Statement[0].Principal["Service"]
			if s, ok := got.(string); ok {
				got = []any{s}
			}
			assert.ElementsMatch(t, c.nodeTrust, got)

			policies := map[string]bool{}
			for _, a := range byType(p, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
				policies[a.Inputs["policyArn"].(string)] = true
			}
			for _, name := range []string{"AmazonEKSClusterPolicy", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
				"AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"} {
				assert.True(t, policies[c.arnPrefix+"iam::aws:policy/"+name], name)
			}

			// Every image comes from ECR in the region, and so would the
			// VPC CNI's: the stand-in of pulumi-eks shows its own manifest's
			// images unless useDefaultVpcCni is set.
			images := planImages(p)
			for _, img := range images {
				assert.True(t, strings.HasPrefix(img.image, c.registry), "%s: %s", img.where, img.image)
			}
			assert.Len(t, images, 4, "device plugin, weights fetcher, vLLM, its CloudWatch agent sidecar")
			assert.Empty(t, byType(p, "eks:index:VpcCni"), "pulumi-eks must not apply its us-west-2 VPC CNI manifest")

			cluster := k8sCluster(t, p)
			assert.Equal(t, true, cluster["useDefaultVpcCni"])
			assert.Equal(t, "API", cluster["authenticationMode"], "no aws-auth ConfigMap written from the deployer")
			assert.Equal(t, []any{}, cluster["instanceRoles"], "given and empty: pulumi-eks makes no instance role of its own")
			assert.NotContains(t, cluster, "vpcCniOptions")
			assert.Equal(t, true, cluster["endpointPublicAccess"], "reachable by the deployer")
			assert.Equal(t, []any{testEgress}, cluster["publicAccessCidrs"])
			assertManagedAddons(t, p)

			kc := providerKubeconfig(t, mustPlan(t, eksCfg(c.region, "aws:profile", "china")))
			assert.Equal(t, []any{"eks", "get-token", "--cluster-name", "dsr1-test", "--region", c.region, "--output", "json"},
				kc.exec["args"])
			assert.Equal(t, []any{map[string]any{"name": "AWS_PROFILE", "value": "china"}}, kc.exec["env"])
		})
	}
}

func TestEKSClusterAndNodeGroups(t *testing.T) {
	p := mustPlan(t, eksCfg("cn-northwest-1"))
	cluster := k8sCluster(t, p)
	assert.Equal(t, true, cluster["skipDefaultNodeGroup"])
	assert.Equal(t, true, cluster["createOidcProvider"])
	assert.Equal(t, true, cluster["endpointPrivateAccess"], "the nodes use the private endpoint")
	assert.Equal(t, false, cluster["nodeAssociatePublicIpAddress"])
	assert.Equal(t, "1.33", cluster["version"])
	assert.Len(t, cluster["privateSubnetIds"], 2)
	assert.Contains(t, cluster["serviceRole"], "dsr1-eks-cluster", "our own cluster role")

	gpu := byName(t, p, "eks:index:ManagedNodeGroup", "dsr1-eks-gpu").Inputs
	assert.Equal(t, "AL2023_x86_64_NVIDIA", gpu["amiType"])
	assert.Equal(t, []any{"g5.12xlarge"}, gpu["instanceTypes"])
	assert.Equal(t, []any{map[string]any{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}}, gpu["taints"])
	assert.Equal(t, map[string]any{"minSize": 1.0, "desiredSize": 1.0, "maxSize": 1.0}, gpu["scalingConfig"])
	assert.Equal(t, map[string]any{"deepseek-r1-cn/node-role": "gpu"}, gpu["labels"])
	// 27.6 GiB of weights: a 50 GiB pod volume (x1.1 = 30.3, rounded up to 40, +10), plus 100 GiB.
	assert.EqualValues(t, 150, gpu["diskSize"])

	system := byName(t, p, "eks:index:ManagedNodeGroup", "dsr1-eks-system").Inputs
	assert.Equal(t, "AL2023_x86_64_STANDARD", system["amiType"])
	assert.NotContains(t, system, "taints", "add-ons run on the untainted system nodes")
	assert.Equal(t, map[string]any{"deepseek-r1-cn/node-role": "system"}, system["labels"])

	// The cluster and the node groups wait for their roles' policies, so
	// that destroying them detaches the policies last (a node group whose
	// role lost its policies first can end DELETE_FAILED).
	attachments := map[string][]string{}
	for _, a := range byType(p, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
		for _, role := range []string{"dsr1-eks-cluster-", "dsr1-eks-node-"} {
			if strings.HasPrefix(a.Name, role) {
				attachments[role] = append(attachments[role], a.Name)
			}
		}
	}
	require.Len(t, attachments["dsr1-eks-cluster-"], 1)
	require.Len(t, attachments["dsr1-eks-node-"], 4)
	assert.Subset(t, one(t, p, "eks:index:Cluster").Dependencies, attachments["dsr1-eks-cluster-"])
	for _, ng := range []string{"dsr1-eks-gpu", "dsr1-eks-system"} {
		assert.Subset(t, byName(t, p, "eks:index:ManagedNodeGroup", ng).Dependencies, attachments["dsr1-eks-node-"], ng)
	}
}

func k8sCluster(t *testing.T, p *plan.Plan) map[string]any {
	t.Helper()
	return one(t, p, "eks:index:Cluster").Inputs
}

func TestEKSWorkloadMatchesSizing(t *testing.T) {
	cases := []struct {
		model, instanceType, gpus string
		args                      []string
	}{
		{"deepseek-r1-distill-qwen-14b", "g5.12xlarge", "4", []string{"--tensor-parallel-size 4", "--dtype bfloat16"}},
		{"deepseek-r1-distill-qwen-7b", "g5.xlarge", "1", []string{"--tensor-parallel-size 1", "--dtype bfloat16"}},
		// 28 heads on 8 GPUs: TP 4 x PP 2 asks for all 8.
		{"deepseek-r1-distill-qwen-7b", "g5.48xlarge", "8", []string{"--tensor-parallel-size 4", "--pipeline-parallel-size 2"}},
	}
	for _, c := range cases {
		t.Run(c.model+" on "+c.instanceType, func(t *testing.T) {
			p := mustPlan(t, eksCfg("cn-northwest-1", "model", c.model, "instanceType", c.instanceType))
			spec := podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))
			vllm := spec["containers"].([]any)[0].(map[string]any)
			res := vllm["resources"].(map[string]any)
			assert.Equal(t, c.gpus, res["limits"].(map[string]any)["nvidia.com/gpu"])
			assert.Equal(t, res["limits"], res["requests"], "Guaranteed: requests equal limits")
			var args []string
			for _, a := range vllm["args"].([]any) {
				args = append(args, a.(string))
			}
			line := strings.Join(args, " ")
			assert.True(t, strings.HasPrefix(line, "serve /models/model "), line)
			for _, w := range c.args {
				assert.Contains(t, line, w)
			}
			assert.Contains(t, line, "--served-model-name "+c.model)
			assert.Contains(t, line, "--reasoning-parser deepseek_r1")
			assert.NotContains(t, line, "--api-key")
			assert.Contains(t, line, "--max-model-len "+strconv.Itoa(p.Sizing.MaxModelLen))
		})
	}
}

func TestEKSWorkloadSafety(t *testing.T) {
	const key = "sk-eks-test-key-never-plain"
	p := mustPlan(t, eksCfg("cn-northwest-1", "apiKey", key), "deepseek-r1-cn:apiKey")
	b, err := p.JSON()
	require.NoError(t, err)
	assert.NotContains(t, string(b), key)

	secret := k8s(t, p, "kubernetes:core/v1:Secret")
	assert.Equal(t, plan.SecretMask, secret["stringData"])
	// The kubeconfig holds no credential (the AWS CLI makes a token at
	// each call), so the plan shows it.
	assert.NotContains(t, providerKubeconfig(t, p).raw, key)

	spec := podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))
	vllm := spec["containers"].([]any)[0].(map[string]any)
	env := map[string]any{}
	for _, e := range vllm["env"].([]any) {
		env[e.(map[string]any)["name"].(string)] = e
	}
	assert.Equal(t, map[string]any{"secretKeyRef": map[string]any{"name": "vllm-api-key", "key": "VLLM_API_KEY"}},
		env["VLLM_API_KEY"].(map[string]any)["valueFrom"])
	assert.Equal(t, "vllm", spec["serviceAccountName"])
	assert.Equal(t, []any{map[string]any{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}}, spec["tolerations"])
	assert.Equal(t, map[string]any{"deepseek-r1-cn/node-role": "gpu"}, spec["nodeSelector"])
	for _, probe := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
		assert.Equal(t, "/health", vllm[probe].(map[string]any)["httpGet"].(map[string]any)["path"], probe)
		assert.Greater(t, vllm[probe].(map[string]any)["timeoutSeconds"], 1.0, probe)
	}
	// 27.6 GiB: 600 s + 20 s/GiB, checked every 10 s.
	assert.EqualValues(t, 116, vllm["startupProbe"].(map[string]any)["failureThreshold"])
	shm := volume(t, spec, "shm")
	assert.Equal(t, "Memory", shm["emptyDir"].(map[string]any)["medium"])

	init := spec["initContainers"].([]any)[0].(map[string]any)
	initEnv := map[string]any{}
	for _, e := range init["env"].([]any) {
		initEnv[e.(map[string]any)["name"].(string)] = e.(map[string]any)["value"]
	}
	assert.Equal(t, "dsr1-weights-offline", initEnv["WEIGHTS_BUCKET"])
	assert.Equal(t, "models/deepseek-ai/DeepSeek-R1-Distill-Qwen-14B/", initEnv["WEIGHTS_PREFIX"])
	assert.Equal(t, "cn-northwest-1", initEnv["AWS_REGION"])
	script := init["command"].([]any)[2].(string)
	assert.Contains(t, script, `until aws s3api head-object --bucket "$WEIGHTS_BUCKET" --key "${WEIGHTS_PREFIX}config.json"`,
		"waits for the weights: an init container runs once per pod")
	assert.Contains(t, script, `aws s3 sync "s3://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX" "$MODEL_DIR"`)

	t.Run("device plugin tolerates the GPU taint", func(t *testing.T) {
		ds := k8s(t, p, "kubernetes:apps/v1:DaemonSet")
		assert.Equal(t, "kube-system", ds["metadata"].(map[string]any)["namespace"])
		spec := podSpec(ds)
		assert.Equal(t, []any{map[string]any{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}}, spec["tolerations"])
		assert.Contains(t, spec["containers"].([]any)[0].(map[string]any)["image"], "nvidia/k8s-device-plugin:")
	})

	t.Run("IRSA: one service account, read the weights only", func(t *testing.T) {
		role := byName(t, p, "aws:iam/role:Role", "dsr1-serving-weights")
		trust := parsePolicy(t, role.Inputs["assumeRolePolicy"])
		require.Len(t, trust.Statement, 1)
		st := trust.Statement[0]
		assert.Equal(t, []string{"sts:AssumeRoleWithWebIdentity"}, st.Action)
		issuer := "oidc.eks.cn-northwest-1.amazonaws.com.cn/id/OFFLINE"
		assert.Equal(t, "arn:aws-cn:iam::123456789012:oidc-provider/"+issuer, st.Principal["Federated"])
		assert.Equal(t, map[string]any{
			issuer + ":sub": "system:serviceaccount:deepseek-r1:vllm",
			issuer + ":aud": "sts.amazonaws.com",
		}, st.Condition["StringEquals"], "the token audience is sts.amazonaws.com in China too")

		doc := parsePolicy(t, byName(t, p, "aws:iam/rolePolicy:RolePolicy", "dsr1-serving-weights").Inputs["policy"])
		assert.Equal(t, []string{"arn:aws-cn:s3:::dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-14B/*"},
			statement(t, doc, "ReadWeights").Resource)
		assert.Len(t, doc.Statement, 2)

		sa := k8s(t, p, "kubernetes:core/v1:ServiceAccount")
		assert.Equal(t, "arn:aws-cn:iam::123456789012:role/dsr1-serving-weights-offline",
			sa["metadata"].(map[string]any)["annotations"].(map[string]any)["eks.amazonaws.com/role-arn"])
	})

	t.Run("ClusterIP by default, internal NLB on request", func(t *testing.T) {
		svc := k8s(t, p, "kubernetes:core/v1:Service")
		assert.Equal(t, "ClusterIP", svc["spec"].(map[string]any)["type"])

		p := mustPlan(t, eksCfg("cn-northwest-1", "eksInternalLoadBalancer", "true"))
		svc = k8s(t, p, "kubernetes:core/v1:Service")
		spec := svc["spec"].(map[string]any)
		assert.Equal(t, "LoadBalancer", spec["type"])
		assert.Equal(t, []any{"10.0.0.0/16"}, spec["loadBalancerSourceRanges"], "the VPC only, by default")
		assert.Equal(t, "true", svc["metadata"].(map[string]any)["annotations"].(map[string]any)["service.beta.kubernetes.io/aws-load-balancer-internal"])
	})
}

func TestEKSConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"replicas beyond the desired nodes", eksCfg("cn-northwest-1", "eksReplicas", "3", "eksGpuNodesMax", "3", "eksGpuNodesDesired", "1"),
			[]string{`deepseek-r1-cn:eksReplicas = "3"`, "needs 3 GPU nodes", "eksGpuNodesDesired (1)", "no cluster autoscaler"}},
		{"replicas that only the maximum holds", eksCfg("cn-northwest-1", "eksReplicas", "2", "eksGpuNodesMax", "2", "eksGpuNodesDesired", "1"),
			[]string{`deepseek-r1-cn:eksReplicas = "2"`, "needs 2 GPU nodes", "eksGpuNodesDesired (1)"}},
		{"no GPU node to start with", eksCfg("cn-northwest-1", "eksGpuNodesMin", "0", "eksGpuNodesDesired", "0"),
			[]string{`deepseek-r1-cn:eksReplicas = "1"`, "eksGpuNodesDesired (0)"}},
		{"image from Docker Hub", eksCfg("cn-northwest-1", "vllmImage", "vllm/vllm-openai:v0.11.0"),
			[]string{`deepseek-r1-cn:vllmImage = "vllm/vllm-openai:v0.11.0"`, "ECR"}},
		{"device plugin from nvcr.io", eksCfg("cn-northwest-1", "devicePluginImage", "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"),
			[]string{`deepseek-r1-cn:devicePluginImage = "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"`}},
		{"registry of another region", eksCfg("cn-northwest-1", "imageRegistry", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
			[]string{`deepseek-r1-cn:imageRegistry = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"`}},
		{"Kubernetes version", eksCfg("cn-northwest-1", "eksKubernetesVersion", "latest"),
			[]string{`deepseek-r1-cn:eksKubernetesVersion = "latest"`, "1.33"}},
		{"public API for everyone", eksCfg("cn-northwest-1", "eksPublicAccessCidrs", `["0.0.0.0/0"]`),
			[]string{`deepseek-r1-cn:eksPublicAccessCidrs = "0.0.0.0/0"`, "never 0.0.0.0/0"}},
		{"desired outside min..max", eksCfg("cn-northwest-1", "eksGpuNodesDesired", "3", "eksGpuNodesMax", "2"),
			[]string{`deepseek-r1-cn:eksGpuNodesDesired = "3"`}},
		{"70B on 4 GPUs", eksCfg("cn-northwest-1", "model", "deepseek-r1-distill-llama-70b"),
			[]string{`deepseek-r1-cn:instanceType = "g5.12xlarge"`, "fits is g5.48xlarge"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := configErr(t, c.values)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
