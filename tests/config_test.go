package tests

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestConfigErrors: every bad config fails before any resource is registered,
// with a message naming the key, the value and what would work.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"region missing", cfg("model", "deepseek-r1-distill-qwen-7b"),
			[]string{"aws:region", "pulumi config set aws:region cn-northwest-1"}},
		{"region typo", cfg("aws:region", "cn-northwest-2"),
			[]string{`aws:region = "cn-northwest-2"`, "cn-north-1 and cn-northwest-1"}},
		{"unknown target", cfg("aws:region", "cn-northwest-1", "target", "lambda"),
			[]string{`deepseek-r1-cn:target = "lambda"`, "ec2, sagemaker, eks"}},
		{"unknown model", cfg("aws:region", "cn-northwest-1", "model", "deepseek-r2"),
			[]string{`deepseek-r1-cn:model = "deepseek-r2"`, "deepseek-r1-distill-qwen-7b"}},
		{"the 671B model", cfg("aws:region", "cn-northwest-1", "model", "deepseek-r1"),
			[]string{`deepseek-r1-cn:model = "deepseek-r1"`, "690 GB", "g5.48xlarge", "deepseek-r1-distill-llama-70b"}},
		{"70B on a 1-GPU instance", cfg("aws:region", "cn-northwest-1", "model", "deepseek-r1-distill-llama-70b", "instanceType", "g5.2xlarge"),
			[]string{`deepseek-r1-cn:instanceType = "g5.2xlarge"`, "131.5 GiB", "best-value instance type offered in cn-northwest-1 that fits is g5.48xlarge"}},
		{"7B on a T4", cfg("aws:region", "cn-north-1", "instanceType", "g4dn.xlarge"),
			[]string{`deepseek-r1-cn:instanceType = "g4dn.xlarge"`, "fits is g5.xlarge"}},
		{"instance type not offered", cfg("aws:region", "cn-northwest-1", "instanceType", "g5.xlarge", "offeredInstanceTypes", `["g4dn.xlarge","g4dn.12xlarge"]`),
			[]string{`deepseek-r1-cn:instanceType = "g5.xlarge"`, "not offered in cn-northwest-1", "g4dn.12xlarge"}},
		{"instance type unknown", cfg("aws:region", "cn-northwest-1", "instanceType", "p4d.24xlarge"),
			[]string{`deepseek-r1-cn:instanceType = "p4d.24xlarge"`, "g5.48xlarge"}},
		{"max model length too long", cfg("aws:region", "cn-northwest-1", "instanceType", "g5.xlarge", "maxModelLen", "131072"),
			[]string{`deepseek-r1-cn:instanceType = "g5.xlarge"`, "max model length of 131072", "at most 67584 fits", "fits is g5.12xlarge"}},
		{"V100 needs a driver the default AMI lacks", cfg("aws:region", "cn-north-1", "instanceType", "p3.2xlarge", "model", "deepseek-r1-distill-qwen-1.5b"),
			[]string{`deepseek-r1-cn:instanceType = "p3.2xlarge"`, "open kernel driver", "amiId"}},
		{"vLLM without V100 support", cfg("aws:region", "cn-north-1", "instanceType", "p3.2xlarge", "model", "deepseek-r1-distill-qwen-1.5b",
			"amiId", "ami-0123456789abcdef0", "vllmVersion", "0.33.0"),
			[]string{`deepseek-r1-cn:vllmVersion = "0.33.0"`, "compute capability 7.0"}},
		{"vLLM too old", cfg("aws:region", "cn-north-1", "vllmVersion", "0.6.6"),
			[]string{`deepseek-r1-cn:vllmVersion = "0.6.6"`, "0.7.1"}},
		{"open ingress", cfg("aws:region", "cn-northwest-1", "allowedCidrs", `["0.0.0.0/0"]`),
			[]string{`deepseek-r1-cn:allowedCidrs = "0.0.0.0/0"`, "allowOpenIngress"}},
		{"not a CIDR", cfg("aws:region", "cn-northwest-1", "allowedCidrs", `["10.0.0.300/8"]`),
			[]string{`deepseek-r1-cn:allowedCidrs = "10.0.0.300/8"`}},
		{"image from Docker Hub", cfg("aws:region", "cn-northwest-1", "vllmImage", "vllm/vllm-openai:v0.11.0"),
			[]string{`deepseek-r1-cn:vllmImage = "vllm/vllm-openai:v0.11.0"`, "ECR", "amazonaws.com.cn"}},
		{"private without an image", cfg("aws:region", "cn-northwest-1", "natGateway", "false"),
			[]string{`deepseek-r1-cn:natGateway = "false"`, "vllmImage"}},
		{"ModelScope without egress", cfg("aws:region", "cn-northwest-1", "natGateway", "false", "weightsSource", "modelscope",
			"vllmImage", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm:1"),
			[]string{`deepseek-r1-cn:weightsSource = "modelscope"`, "natGateway"}},
		{"weights source", cfg("aws:region", "cn-northwest-1", "weightsSource", "huggingface"),
			[]string{`deepseek-r1-cn:weightsSource = "huggingface"`, "s3", "modelscope"}},
		{"weights prefix", cfg("aws:region", "cn-northwest-1", "weightsPrefix", "models/qwen"),
			[]string{`deepseek-r1-cn:weightsPrefix = "models/qwen"`, `end in "/"`}},
		{"subnets without a VPC", cfg("aws:region", "cn-northwest-1", "subnetIds", `["subnet-1"]`),
			[]string{"deepseek-r1-cn:vpcId", "subnetIds"}},
		{"VPC without subnets", cfg("aws:region", "cn-northwest-1", "vpcId", "vpc-1"),
			[]string{"deepseek-r1-cn:subnetIds", `"vpc-1"`}},
		{"KMS key of the other partition", cfg("aws:region", "cn-northwest-1", "kmsKeyArn", "arn:aws:kms:us-east-1:123456789012:key/x"),
			[]string{`deepseek-r1-cn:kmsKeyArn = "arn:aws:kms:us-east-1:123456789012:key/x"`, "aws-cn"}},
		{"zone of another region", cfg("aws:region", "cn-northwest-1", "availabilityZones", `["cn-north-1a"]`),
			[]string{`deepseek-r1-cn:availabilityZones = "cn-north-1a"`}},
		{"port", cfg("aws:region", "cn-northwest-1", "apiPort", "22"),
			[]string{`deepseek-r1-cn:apiPort = "22"`, "1024 and 65535"}},
		{"GPU memory utilization", cfg("aws:region", "cn-northwest-1", "gpuMemoryUtilization", "1.2"),
			[]string{`deepseek-r1-cn:gpuMemoryUtilization = "1.2"`, "at most 0.95"}},
		{"root volume too small", cfg("aws:region", "cn-northwest-1", "model", "deepseek-r1-distill-llama-70b", "rootVolumeGb", "100"),
			[]string{`deepseek-r1-cn:rootVolumeGb = "100"`, "at least 250"}},
		{"pip index over http", cfg("aws:region", "cn-northwest-1", "pipIndexUrl", "http://mirrors.aliyun.com/pypi/simple/"),
			[]string{`deepseek-r1-cn:pipIndexUrl`, "https://"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := configErr(t, c.values)
			assert.Contains(t, err.Error(), "invalid stack config")
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigErrorsAreReportedTogether(t *testing.T) {
	err := configErr(t, cfg("aws:region", "cn-northwest-1", "target", "lambda", "apiPort", "x", "weightsSource", "ftp"))
	for _, k := range []string{"deepseek-r1-cn:target", "deepseek-r1-cn:apiPort", "deepseek-r1-cn:weightsSource"} {
		assert.Contains(t, err.Error(), k)
	}
}
