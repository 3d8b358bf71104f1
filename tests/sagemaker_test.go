package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail/policydigest"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sagemaker"
)

func sagemakerCfg(region string, kv ...string) map[string]string {
	base := []string{"aws:region", region, "target", "sagemaker", "model", "deepseek-r1-distill-qwen-32b",
		"instanceType", "ml.g5.12xlarge", "natGateway", "false"}
	return cfg(append(base, kv...)...)
}

// lmi selects AWS's LMI container instead of the default custom one.
var lmi = []string{"sagemakerContainer", "lmi"}

func TestSageMakerPerPartition(t *testing.T) {
	cases := []struct {
		region, arnPrefix, image string
		mustNotLeak              []string
	}{
		{"cn-northwest-1", "arn:aws-cn:",
			"727897471807.dkr.ecr.cn-northwest-1.amazonaws.com.cn/djl-inference:0.33.0-lmi15.0.0-cu128",
			[]string{"arn:aws:"}},
		{"cn-north-1", "arn:aws-cn:",
			"727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/djl-inference:0.33.0-lmi15.0.0-cu128",
			[]string{"arn:aws:"}},
		{"us-east-1", "arn:aws:",
			"763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128",
			[]string{"arn:aws-cn:", "amazonaws.com.cn", "cn.com.amazonaws", "727897471807"}},
	}
	for _, c := range cases {
		t.Run(c.region, func(t *testing.T) {
			p := mustPlan(t, sagemakerCfg(c.region, lmi...))
			assert.Equal(t, "sagemaker", p.Target)
			assertPartitionClean(t, p, c.arnPrefix, c.mustNotLeak)
			assertNoAdminWildcards(t, p)
			assertWeightsBucketSafe(t, p)
			assertNoOpenIngress(t, p)

			model := one(t, p, "aws:sagemaker/model:Model")
			pc := model.Inputs["primaryContainer"].(map[string]any)
			assert.Equal(t, c.image, pc["image"])
			assert.Regexp(t, "^"+c.arnPrefix+`iam::\d{12}:role/`, model.Inputs["executionRoleArn"])

			role := one(t, p, "aws:iam/role:Role")
			doc := parsePolicy(t, role.Inputs["assumeRolePolicy"])
			require.Len(t, doc.Statement, 1)
			assert.Equal(t, "sagemaker.amazonaws.com", doc.Statement[0].Principal["Service"],
				"SageMaker keeps its global principal in aws-cn")

			// The execution role may pull exactly the LMI repository.
			exec := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
			repo := c.arnPrefix + "ecr:" + c.region + ":" + strings.Split(c.image, ".")[0] + ":repository/djl-inference"
			assert.Equal(t, []string{repo}, statement(t, exec, "PullImage").Resource)
			assert.Equal(t, []string{c.arnPrefix + "logs:" + c.region + ":*:log-group:/aws/sagemaker/Endpoints/*"},
				statement(t, exec, "EndpointLogs").Resource)

			assert.Empty(t, byType(p, "aws:ec2/instance:Instance"), "no EC2 server with the SageMaker target")
			assert.Empty(t, byType(p, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"),
				"no managed policy such as AmazonSageMakerFullAccess")
		})
	}
}

func TestSageMakerModelMatchesSizing(t *testing.T) {
	p := mustPlan(t, sagemakerCfg("cn-northwest-1", lmi...))
	model := one(t, p, "aws:sagemaker/model:Model")
	assert.Equal(t, true, model.Inputs["enableNetworkIsolation"])
	pc := model.Inputs["primaryContainer"].(map[string]any)
	env := pc["environment"].(map[string]any)
	assert.Equal(t, "4", env["OPTION_TENSOR_PARALLEL_DEGREE"], "32B on 4 x A10G: TP 4")
	assert.Equal(t, "bf16", env["OPTION_DTYPE"])
	assert.Equal(t, "43008", env["OPTION_MAX_MODEL_LEN"])
	assert.Equal(t, 43008, p.Sizing.MaxModelLen)
	assert.Equal(t, "deepseek_r1", env["OPTION_REASONING_PARSER"])
	assert.Equal(t, "true", env["OPTION_ENABLE_REASONING"])
	assert.Equal(t, "vllm", env["OPTION_ROLLING_BATCH"])
	assert.Equal(t, "/opt/ml/model", env["HF_MODEL_ID"], "the weights SageMaker mounted, never a Hub id")

	src := pc["modelDataSource"].(map[string]any)["s3DataSources"].([]any)[0].(map[string]any)
	assert.Equal(t, "S3Prefix", src["s3DataType"])
	assert.Equal(t, "None", src["compressionType"], "uncompressed weights, no model.tar.gz")
	assert.Equal(t, "s3://dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/", src["s3Uri"])

	vpc := model.Inputs["vpcConfig"].(map[string]any)
	assert.Len(t, vpc["subnets"], 2)
	assert.Len(t, vpc["securityGroupIds"], 1)
	sg := byName(t, p, "aws:ec2/securityGroup:SecurityGroup", "dsr1-sagemaker")
	assert.NotContains(t, sg.Inputs, "ingress", "invocations come through the SageMaker API, not the interfaces")

	cfgRes := one(t, p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
	v := cfgRes.Inputs["productionVariants"].([]any)[0].(map[string]any)
	assert.Equal(t, "ml.g5.12xlarge", v["instanceType"])
	assert.Equal(t, "AllTraffic", v["variantName"])
	assert.EqualValues(t, 1, v["initialInstanceCount"])
	assert.NotContains(t, v, "volumeSizeInGb", "g5 has local NVMe: SageMaker takes no volume size")
	assert.NotContains(t, cfgRes.Inputs, "kmsKeyArn")
	// 61.09 GiB of weights: 600 s + 20 s/GiB to download (1821), 600 s + 10 s/GiB to start (1210),
	// scaled down to the 3000 s the provider's 60-minute wait leaves after 10 minutes of provisioning.
	assert.EqualValues(t, 1802, v["modelDataDownloadTimeoutInSeconds"])
	assert.EqualValues(t, 1198, v["containerStartupHealthCheckTimeoutInSeconds"])

	t.Run("no NAT: image and weights come through endpoints", func(t *testing.T) {
		assert.Empty(t, byType(p, "aws:ec2/natGateway:NatGateway"))
		names := map[string]any{}
		for _, ep := range byType(p, "aws:ec2/vpcEndpoint:VpcEndpoint") {
			names[ep.Name] = ep.Inputs["serviceName"]
		}
		assert.Equal(t, map[string]any{
			"dsr1-s3":                "com.amazonaws.cn-northwest-1.s3",
			"dsr1-ecr.api":           "cn.com.amazonaws.cn-northwest-1.ecr.api",
			"dsr1-ecr.dkr":           "cn.com.amazonaws.cn-northwest-1.ecr.dkr",
			"dsr1-logs":              "com.amazonaws.cn-northwest-1.logs",
			"dsr1-sagemaker.runtime": "cn.com.amazonaws.cn-northwest-1.sagemaker.runtime",
		}, names)
	})
}

func TestSageMakerAutoscaling(t *testing.T) {
	p := mustPlan(t, sagemakerCfg("cn-northwest-1", "sagemakerMinInstances", "2", "sagemakerMaxInstances", "4",
		"sagemakerInvocationsPerInstance", "25"))
	endpoint := one(t, p, "aws:sagemaker/endpoint:Endpoint")
	cfgRes := one(t, p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
	assert.Equal(t, "dsr1-sagemaker-offline", endpoint.Inputs["endpointConfigName"], "endpoint uses its configuration")
	assert.Equal(t, "dsr1-test", endpoint.Inputs["name"], "named from the stack, so that its log group can be made first")
	_ = cfgRes

	target := one(t, p, "aws:appautoscaling/target:Target")
	// The endpoint's name, as the program sets it.
	assert.Equal(t, "endpoint/dsr1-test/variant/AllTraffic", target.Inputs["resourceId"])
	assert.Equal(t, "sagemaker:variant:DesiredInstanceCount", target.Inputs["scalableDimension"])
	assert.Equal(t, "sagemaker", target.Inputs["serviceNamespace"])
	assert.EqualValues(t, 2, target.Inputs["minCapacity"])
	assert.EqualValues(t, 4, target.Inputs["maxCapacity"])

	policy := one(t, p, "aws:appautoscaling/policy:Policy")
	assert.Equal(t, target.Inputs["resourceId"], policy.Inputs["resourceId"])
	assert.Equal(t, "TargetTrackingScaling", policy.Inputs["policyType"])
	tt := policy.Inputs["targetTrackingScalingPolicyConfiguration"].(map[string]any)
	assert.EqualValues(t, 25, tt["targetValue"])
	assert.Equal(t, "SageMakerVariantInvocationsPerInstance",
		tt["predefinedMetricSpecification"].(map[string]any)["predefinedMetricType"])

	v := cfgRes.Inputs["productionVariants"].([]any)[0].(map[string]any)
	assert.EqualValues(t, 2, v["initialInstanceCount"], "starts at the minimum")
}

func TestSageMakerCustomImage(t *testing.T) {
	image := "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm-sagemaker:0.11.0"
	p := mustPlan(t, sagemakerCfg("cn-northwest-1", "sagemakerImage", image))
	pc := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)
	assert.Equal(t, image, pc["image"])
	env := pc["environment"].(map[string]any)
	assert.Equal(t, "4", env["SM_VLLM_TENSOR_PARALLEL_SIZE"])
	assert.Equal(t, "bfloat16", env["SM_VLLM_DTYPE"])
	assert.Equal(t, "/opt/ml/model", env["SM_VLLM_MODEL"])
	assert.Equal(t, "deepseek_r1", env["SM_VLLM_REASONING_PARSER"])
	assert.Equal(t, "deepseek-r1-distill-qwen-32b", env["SM_VLLM_SERVED_MODEL_NAME"])
	for k := range env {
		assert.False(t, strings.HasPrefix(k, "OPTION_"), "no LMI settings for a custom image: %s", k)
	}
	exec := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	assert.Equal(t, []string{"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/vllm-sagemaker"},
		statement(t, exec, "PullImage").Resource)
}

func TestSageMakerVolumeOnlyWithoutLocalStorage(t *testing.T) {
	kms := "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	p := mustPlan(t, cfg("aws:region", "cn-north-1", "target", "sagemaker", "natGateway", "false",
		"model", "deepseek-r1-distill-qwen-1.5b", "instanceType", "ml.p3.2xlarge", "kmsKeyArn", kms))
	cfgRes := one(t, p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")
	v := cfgRes.Inputs["productionVariants"].([]any)[0].(map[string]any)
	// 3.3 GiB of weights x 1.2, rounded up to 10, plus 30.
	assert.EqualValues(t, 40, v["volumeSizeInGb"], "p3 is EBS-only: the ML volume is sized")
	assert.Equal(t, kms, cfgRes.Inputs["kmsKeyArn"])
	env := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
	assert.Equal(t, "float16", env["SM_VLLM_DTYPE"], "V100 has no bf16")
	exec := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	assert.Equal(t, []string{kms}, statement(t, exec, "UseDataKey").Resource)
}

func TestSageMakerDefaultInstanceAndCost(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "target", "sagemaker", "natGateway", "false",
		"model", "deepseek-r1-distill-llama-70b"))
	assert.Equal(t, "ml.g5.48xlarge", p.Sizing.InstanceType)
	assert.False(t, p.Cost.Known, "no sourced SageMaker price: no invented estimate")
	assert.Contains(t, strings.Join(p.Cost.Notes, " "), "deepseek-r1-cn:pricePerHour")

	p = mustPlan(t, sagemakerCfg("cn-northwest-1", "pricePerHour", "80"))
	assert.True(t, p.Cost.Known)
	assert.InDelta(t, 80*730, p.Cost.PerMonth, 1e-6)
}

func TestSageMakerConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"70B on one A10G", sagemakerCfg("cn-northwest-1", "model", "deepseek-r1-distill-llama-70b", "instanceType", "ml.g5.2xlarge"),
			[]string{`deepseek-r1-cn:instanceType = "ml.g5.2xlarge"`, "cannot serve deepseek-r1-distill-llama-70b", "fits is ml.g5.48xlarge"}},
		{"EC2 type name", sagemakerCfg("cn-northwest-1", "instanceType", "g5.12xlarge"),
			[]string{`deepseek-r1-cn:instanceType = "g5.12xlarge"`, "ml.g5.12xlarge"}},
		{"image from Docker Hub", sagemakerCfg("cn-northwest-1", "sagemakerImage", "vllm/vllm-openai:latest"),
			[]string{`deepseek-r1-cn:sagemakerImage = "vllm/vllm-openai:latest"`, "ECR"}},
		{"weights from ModelScope", sagemakerCfg("cn-northwest-1", "weightsSource", "modelscope"),
			[]string{`deepseek-r1-cn:weightsSource = "modelscope"`, "S3"}},
		{"max below min", sagemakerCfg("cn-northwest-1", "sagemakerMinInstances", "3", "sagemakerMaxInstances", "2"),
			[]string{`deepseek-r1-cn:sagemakerMaxInstances = "2"`, "sagemakerMinInstances (3)"}},
		{"LMI tag", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "lmi", "lmiImageTag", "latest"),
			[]string{`deepseek-r1-cn:lmiImageTag = "latest"`, "0.33.0-lmi15.0.0-cu128"}},
		{"LMI without the reasoning parser", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "lmi", "lmiImageTag", "0.31.0-lmi13.0.0-cu124"),
			[]string{`deepseek-r1-cn:lmiImageTag = "0.31.0-lmi13.0.0-cu124"`, "LMI 13", "reasoning parser"}},
		{"LMI 14 has vLLM 0.7.1, not certain to parse reasoning", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "lmi",
			"lmiImageTag", "0.32.0-lmi14.0.0-cu126"), []string{`deepseek-r1-cn:lmiImageTag = "0.32.0-lmi14.0.0-cu126"`, "LMI 15 or later"}},
		{"unknown container", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "tgi"),
			[]string{`deepseek-r1-cn:sagemakerContainer = "tgi"`, "custom", "lmi"}},
		{"guardrail in LMI", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "lmi", "guardrail", "true"),
			[]string{`deepseek-r1-cn:guardrail = "true"`, "sagemakerContainer to custom"}},
		{"own image with LMI", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "lmi", "sagemakerImage",
			"123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/x:1"), []string{"deepseek-r1-cn:sagemakerImage", "lmiImageTag"}},
		{"moving tag", sagemakerCfg("cn-northwest-1", "sagemakerImage", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/x:latest"),
			[]string{"deepseek-r1-cn:sagemakerImage", "not :latest"}},
		{"LMI cannot pipeline the 7B over 8 GPUs", sagemakerCfg("cn-northwest-1", "sagemakerContainer", "lmi",
			"model", "deepseek-r1-distill-qwen-7b", "instanceType", "ml.g5.48xlarge"),
			[]string{`deepseek-r1-cn:instanceType = "ml.g5.48xlarge"`, "4 of the 8 GPUs", "no pipeline parallelism",
				"the best-value instance type offered in cn-northwest-1 that fits is ml.g5.xlarge"}},
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

// TestSageMakerCustomContainer is the default: the project's image in the
// account's registry, configured for the sizing, and the same guardrail
// policy as the gateway delivered beside the weights with its digest.
func TestSageMakerCustomContainer(t *testing.T) {
	cases := []struct{ region, arnPrefix, registry string }{
		{"cn-northwest-1", "arn:aws-cn:", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"},
		{"us-east-1", "arn:aws:", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
	}
	inProject(t)
	policyYAML, err := os.ReadFile(filepath.Join(policyDir, "policy.yaml"))
	require.NoError(t, err)
	for _, c := range cases {
		t.Run(c.region, func(t *testing.T) {
			p := mustPlan(t, sagemakerCfg(c.region, "guardrail", "true"))
			pc := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)
			assert.Equal(t, c.registry+"/deepseek-r1-cn/sagemaker-vllm:v0.11.0", pc["image"])
			env := pc["environment"].(map[string]any)
			assert.Equal(t, "4", env["SM_VLLM_TENSOR_PARALLEL_SIZE"])
			assert.Equal(t, "43008", env["SM_VLLM_MAX_MODEL_LEN"])
			assert.Equal(t, "true", env["GUARDRAIL_ENABLED"])
			assert.Equal(t, "/opt/ml/model/.guardrail/policy.yaml", env["GUARDRAIL_POLICY"])
			sum := sha256.Sum256(policyYAML)
			assert.Equal(t, hex.EncodeToString(sum[:]), env["GUARDRAIL_POLICY_SHA256"])
			dirSum, err := policydigest.Dir(policyDir)
			require.NoError(t, err)
			assert.Equal(t, dirSum, env["GUARDRAIL_POLICY_DIR_SHA256"], "what the container checks the copied directory against")

			// The policy files go under the weights prefix, which SageMaker copies to /opt/ml/model.
			prefix := "models/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/.guardrail/"
			keys := map[string]bool{}
			for _, o := range byType(p, "aws:s3/bucketObjectv2:BucketObjectv2") {
				keys[o.Inputs["key"].(string)] = true
				assert.Equal(t, "dsr1-weights-offline", o.Inputs["bucket"])
			}
			assert.True(t, keys[prefix+"policy.yaml"], "%v", keys)
			assert.Greater(t, len(keys), 1, "the word lists travel with the policy")

			exec := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
			assert.Equal(t, []string{c.arnPrefix + "ecr:" + c.region + ":123456789012:repository/deepseek-r1-cn/sagemaker-vllm"},
				statement(t, exec, "PullImage").Resource)
			assert.Contains(t, statement(t, exec, "DescribeNetwork").Action, "ec2:DescribeVpcEndpoints",
				"the VPC hosting guide's list (host-vpc.md)")
			assert.Equal(t, []string{c.arnPrefix + "s3:::dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/*"},
				statement(t, exec, "ReadWeights").Resource, "the policy is read with the weights, nothing more")
		})
	}
	t.Run("without the guardrail", func(t *testing.T) {
		p := mustPlan(t, sagemakerCfg("cn-northwest-1"))
		env := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
		assert.Equal(t, "false", env["GUARDRAIL_ENABLED"])
		assert.NotContains(t, env, "GUARDRAIL_POLICY")
		assert.Empty(t, byType(p, "aws:s3/bucketObjectv2:BucketObjectv2"))
	})
}

// TestSageMakerParallelismPerContainer: LMI gets tensor parallelism only;
// the custom container serves with vLLM's own pipeline parallelism.
func TestSageMakerParallelismPerContainer(t *testing.T) {
	seven := []string{"model", "deepseek-r1-distill-qwen-7b"}
	for _, model := range []string{"deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-7b", "deepseek-r1-distill-qwen-14b",
		"deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-70b"} {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "target", "sagemaker", "natGateway", "false",
			"model", model, "sagemakerContainer", "lmi"))
		assert.Equal(t, 1, p.Sizing.PipelineParallelSize, model)
		assert.Equal(t, p.Sizing.GPUs, p.Sizing.TensorParallelSize, "%s: every GPU in use", model)
		for _, s := range allStrings(p) {
			assert.NotContains(t, s, "PIPELINE_PARALLEL")
		}
		env := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
		assert.NotContains(t, env, "OPTION_PIPELINE_PARALLEL_DEGREE")
	}
	p := mustPlan(t, sagemakerCfg("cn-northwest-1", append(seven, "instanceType", "ml.g5.48xlarge")...))
	env := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
	assert.Equal(t, "4", env["SM_VLLM_TENSOR_PARALLEL_SIZE"])
	assert.Equal(t, "2", env["SM_VLLM_PIPELINE_PARALLEL_SIZE"])
}

// TestSageMakerTimeoutsInsideProviderWait keeps SageMaker's own timeouts
// inside the AWS provider's 60-minute wait for InService, less provisioning.
func TestSageMakerTimeoutsInsideProviderWait(t *testing.T) {
	for _, model := range []string{"deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-32b", "deepseek-r1-distill-llama-70b"} {
		p := mustPlan(t, cfg("aws:region", "cn-north-1", "target", "sagemaker", "natGateway", "false", "model", model))
		v := one(t, p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").Inputs["productionVariants"].([]any)[0].(map[string]any)
		dl, st := v["modelDataDownloadTimeoutInSeconds"].(float64), v["containerStartupHealthCheckTimeoutInSeconds"].(float64)
		assert.LessOrEqual(t, dl+st, 3000.0, model)
		assert.GreaterOrEqual(t, dl, 600.0, model)
		assert.GreaterOrEqual(t, st, 600.0, model)
	}
}

// TestSageMakerAttentionBackendOnT4: the custom container on ml.g4dn gets the
// attention backend the EC2 server gets there (vLLM #25528).
func TestSageMakerAttentionBackendOnT4(t *testing.T) {
	p := mustPlan(t, sagemakerCfg("cn-north-1", "model", "deepseek-r1-distill-qwen-1.5b", "instanceType", "ml.g4dn.xlarge"))
	env := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
	assert.Equal(t, "TRITON_ATTN_VLLM_V1", env["VLLM_ATTENTION_BACKEND"])
	assert.Contains(t, strings.Join(p.Sizing.Notes, " "), "FlexAttention")
	p = mustPlan(t, sagemakerCfg("cn-north-1"))
	env = one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
	assert.NotContains(t, env, "VLLM_ATTENTION_BACKEND", "A10G has FlashAttention")
}

// TestSageMakerEndpointName: the endpoint is named from the stack, so that
// its log group can exist (with a retention) before SageMaker writes to it.
func TestSageMakerEndpointName(t *testing.T) {
	cases := map[string]string{
		"cn-northwest-1-sagemaker": "dsr1-cn-northwest-1-sagemaker",
		"team_a.prod":              "dsr1-team-a-prod",
		"--x--":                    "dsr1-x",
		strings.Repeat("s", 80):    "dsr1-" + strings.Repeat("s", 58),
	}
	for stack, want := range cases {
		got := sagemaker.EndpointName("dsr1", stack)
		assert.Equal(t, want, got, stack)
		assert.Regexp(t, `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`, got)
	}
}

// TestSageMakerHostDriver: SageMaker's default host AMI for ml.g4dn and
// ml.g5 endpoints has NVIDIA driver 470 (CUDA 11.4; "Best practices to
// minimize interruptions during GPU driver upgrades"), too old for vLLM's
// CUDA 12 images, so the endpoint configuration names a host AMI with a
// CUDA 12 driver (ProductionVariant InferenceAmiVersion).
func TestSageMakerHostDriver(t *testing.T) {
	cases := []struct {
		name, want string
		values     map[string]string
	}{
		{"default on ml.g5", "al2-ami-sagemaker-inference-gpu-3-1", sagemakerCfg("cn-northwest-1")},
		{"lmi too", "al2-ami-sagemaker-inference-gpu-3-1", sagemakerCfg("cn-north-1", "sagemakerContainer", "lmi")},
		{"explicit", "al2-ami-sagemaker-inference-gpu-2-1",
			sagemakerCfg("cn-northwest-1", "sagemakerInferenceAmiVersion", "al2-ami-sagemaker-inference-gpu-2-1")},
		{"none leaves SageMaker's default", "", sagemakerCfg("us-east-1", "sagemakerInferenceAmiVersion", "none")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inProject(t)
			p := mustPlan(t, c.values)
			v := one(t, p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").Inputs["productionVariants"].([]any)[0].(map[string]any)
			if c.want == "" {
				assert.NotContains(t, v, "inferenceAmiVersion")
				assert.Contains(t, strings.Join(p.Sizing.Notes, "\n"), "driver 470")
			} else {
				assert.Equal(t, c.want, v["inferenceAmiVersion"])
			}
		})
	}
	err := configErr(t, sagemakerCfg("cn-northwest-1", "sagemakerInferenceAmiVersion", "al2-ami-sagemaker-inference-gpu-9"))
	assert.Contains(t, err.Error(), `deepseek-r1-cn:sagemakerInferenceAmiVersion = "al2-ami-sagemaker-inference-gpu-9"`)
	assert.Contains(t, err.Error(), "al2-ami-sagemaker-inference-gpu-3-1")
}

// TestSageMakerAutoscalingOnlyWhenItCanScale: SageMaker refuses an
// UpdateEndpoint that changes the instance type of a variant registered
// with Application Auto Scaling ("Update endpoints that use auto scaling"),
// so a target is registered only where it can do something (max > min),
// and the plan says how to change the type when it is.
func TestSageMakerAutoscalingOnlyWhenItCanScale(t *testing.T) {
	inProject(t)
	fixed := mustPlan(t, sagemakerCfg("cn-northwest-1", "sagemakerMinInstances", "1", "sagemakerMaxInstances", "1"))
	assert.Empty(t, byType(fixed, "aws:appautoscaling/target:Target"))
	assert.Empty(t, byType(fixed, "aws:appautoscaling/policy:Policy"))
	scaling := mustPlan(t, sagemakerCfg("cn-northwest-1", "sagemakerMinInstances", "1", "sagemakerMaxInstances", "2"))
	one(t, scaling, "aws:appautoscaling/target:Target")
	assert.Contains(t, strings.Join(scaling.Sizing.Notes, "\n"), "sagemakerMaxInstances")
}
