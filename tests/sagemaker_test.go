package tests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sagemakerCfg(region string, kv ...string) map[string]string {
	base := []string{"aws:region", region, "target", "sagemaker", "model", "deepseek-r1-distill-qwen-32b",
		"instanceType", "ml.g5.12xlarge", "natGateway", "false"}
	return cfg(append(base, kv...)...)
}

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
			p := mustPlan(t, sagemakerCfg(c.region))
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
	p := mustPlan(t, sagemakerCfg("cn-northwest-1"))
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
	// 61.09 GiB of weights: 600 s + 20 s/GiB to download, 600 s + 10 s/GiB to start (whole seconds).
	assert.EqualValues(t, 1821, v["modelDataDownloadTimeoutInSeconds"])
	assert.EqualValues(t, 1210, v["containerStartupHealthCheckTimeoutInSeconds"])

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
	_ = cfgRes

	target := one(t, p, "aws:appautoscaling/target:Target")
	// The endpoint's name is the stand-in the mock gave the Endpoint.
	assert.Equal(t, "endpoint/dsr1-sagemaker-offline/variant/AllTraffic", target.Inputs["resourceId"])
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
	assert.Equal(t, "fp16", env["OPTION_DTYPE"], "V100 has no bf16")
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
		{"LMI tag", sagemakerCfg("cn-northwest-1", "lmiImageTag", "latest"),
			[]string{`deepseek-r1-cn:lmiImageTag = "latest"`, "0.33.0-lmi15.0.0-cu128"}},
		{"LMI without the reasoning parser", sagemakerCfg("cn-northwest-1", "lmiImageTag", "0.31.0-lmi13.0.0-cu124"),
			[]string{`deepseek-r1-cn:lmiImageTag = "0.31.0-lmi13.0.0-cu124"`, "LMI 13", "reasoning parser"}},
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
