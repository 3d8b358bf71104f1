package tests

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// partitions are the regions the EC2 stack is checked in, with what each
// must and must not contain. The expectations are spelled out here, not
// derived from the region package under test.
var partitions = []struct {
	region       string
	partition    string
	arnPrefix    string
	ec2Trust     []string
	mustNotLeak  []string
	pipIndex     string
	endpointName map[string]string
}{
	{
		region: "cn-northwest-1", partition: "aws-cn", arnPrefix: "arn:aws-cn:",
		ec2Trust:    []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"},
		mustNotLeak: []string{"arn:aws:"},
		pipIndex:    "https://mirrors.aliyun.com/pypi/simple/",
		endpointName: map[string]string{
			"dsr1-s3": "com.amazonaws.cn-northwest-1.s3", "dsr1-ssm": "com.amazonaws.cn-northwest-1.ssm",
			"dsr1-secretsmanager": "com.amazonaws.cn-northwest-1.secretsmanager",
		},
	},
	{
		region: "cn-north-1", partition: "aws-cn", arnPrefix: "arn:aws-cn:",
		ec2Trust:    []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"},
		mustNotLeak: []string{"arn:aws:"},
		pipIndex:    "https://mirrors.aliyun.com/pypi/simple/",
		endpointName: map[string]string{
			"dsr1-s3": "com.amazonaws.cn-north-1.s3", "dsr1-ec2messages": "com.amazonaws.cn-north-1.ec2messages",
		},
	},
	{
		region: "us-east-1", partition: "aws", arnPrefix: "arn:aws:",
		ec2Trust:    []string{"ec2.amazonaws.com"},
		mustNotLeak: []string{"arn:aws-cn:", "amazonaws.com.cn", "cn.com.amazonaws", "aliyun", "cn-north"},
		pipIndex:    "https://pypi.org/simple/",
		endpointName: map[string]string{
			"dsr1-s3": "com.amazonaws.us-east-1.s3", "dsr1-ssm": "com.amazonaws.us-east-1.ssm",
		},
	},
}

func TestEC2StackPerPartition(t *testing.T) {
	for _, pt := range partitions {
		t.Run(pt.region, func(t *testing.T) {
			p := mustPlan(t, cfg("aws:region", pt.region, "model", "deepseek-r1-distill-qwen-7b", "instanceType", "g5.xlarge"))
			assert.Equal(t, pt.partition, p.Partition)

			t.Run("partition strings", func(t *testing.T) {
				assertPartitionClean(t, p, pt.arnPrefix, pt.mustNotLeak)
			})

			t.Run("instance role trusts EC2 in the partition", func(t *testing.T) {
				role := one(t, p, "aws:iam/role:Role")
				doc := parsePolicy(t, role.Inputs["assumeRolePolicy"])
				require.Len(t, doc.Statement, 1)
				st := doc.Statement[0]
				assert.Equal(t, []string{"sts:AssumeRole"}, st.Action)
				var got []string
				switch v := st.Principal["Service"].(type) {
				case string:
					got = []string{v}
				case []any:
					for _, e := range v {
						got = append(got, e.(string))
					}
				}
				assert.ElementsMatch(t, pt.ec2Trust, got)
			})

			t.Run("managed policy ARN", func(t *testing.T) {
				att := one(t, p, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
				assert.Equal(t, pt.arnPrefix+"iam::aws:policy/AmazonSSMManagedInstanceCore", att.Inputs["policyArn"])
			})

			t.Run("VPC endpoint service names", func(t *testing.T) {
				names := map[string]any{}
				for _, ep := range byType(p, "aws:ec2/vpcEndpoint:VpcEndpoint") {
					names[ep.Name] = ep.Inputs["serviceName"]
				}
				for name, want := range pt.endpointName {
					assert.Equal(t, want, names[name], name)
				}
				assert.Len(t, names, 7, "s3 + ssm, ssmmessages, ec2messages, secretsmanager + logs, monitoring (the CloudWatch agent)")
			})

			t.Run("pip index", func(t *testing.T) {
				assert.Contains(t, bootScript(t, p), pt.pipIndex)
			})
		})
	}
}

func TestEC2SecureByDefault(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "model", "deepseek-r1-distill-qwen-7b"))
	lts := launchTemplates(t, p)
	require.Len(t, lts, 3, "the decided type and two fallbacks")

	for _, lt := range lts {
		t.Run(lt.Name, func(t *testing.T) {
			in := lt.Inputs
			t.Run("IMDSv2 only", func(t *testing.T) {
				md := in["metadataOptions"].(map[string]any)
				assert.Equal(t, "required", md["httpTokens"])
				assert.EqualValues(t, 1, md["httpPutResponseHopLimit"])
			})
			t.Run("no SSH key, no public address", func(t *testing.T) {
				assert.NotContains(t, in, "keyName")
				nics := in["networkInterfaces"].([]any)
				require.Len(t, nics, 1)
				assert.Equal(t, "false", nics[0].(map[string]any)["associatePublicIpAddress"])
				assert.Equal(t, []any{"securitygroup-dsr1-vllm"}, nics[0].(map[string]any)["securityGroups"])
			})
			t.Run("encrypted gp3 root volume sized for the weights", func(t *testing.T) {
				bdm := in["blockDeviceMappings"].([]any)
				require.Len(t, bdm, 1)
				m := bdm[0].(map[string]any)
				assert.Equal(t, "/dev/sda1", m["deviceName"], "the AMI's root device, as the stand-in DescribeImages says")
				ebs := m["ebs"].(map[string]any)
				assert.Equal(t, "true", ebs["encrypted"])
				assert.Equal(t, "gp3", ebs["volumeType"])
				// 100 GiB base + 14.2 GiB x 1.1 rounded up to 10 = 120.
				assert.EqualValues(t, 120, ebs["volumeSize"])
			})
			t.Run("a new AMI release does not roll the server", func(t *testing.T) {
				assert.Contains(t, lt.Options, "ignoreChanges: imageId")
				assert.Equal(t, "ami-0123456789abcdef0", in["imageId"])
			})
		})
	}
	for _, sn := range byType(p, "aws:ec2/subnet:Subnet") {
		assert.Equal(t, false, sn.Inputs["mapPublicIpOnLaunch"], sn.Name)
	}
	t.Run("no open ingress and no SSH", func(t *testing.T) {
		assertNoOpenIngress(t, p)
		api := byName(t, p, "aws:ec2/securityGroup:SecurityGroup", "dsr1-vllm")
		rules := api.Inputs["ingress"].([]any)
		require.Len(t, rules, 1)
		rule := rules[0].(map[string]any)
		assert.Equal(t, []any{"10.0.0.0/16"}, rule["cidrBlocks"], "defaults to the VPC CIDR, once")
		assert.EqualValues(t, 8000, rule["fromPort"])
		assert.EqualValues(t, 8000, rule["toPort"])
	})
	t.Run("the load balancer is internal", func(t *testing.T) {
		nlb := one(t, p, "aws:lb/loadBalancer:LoadBalancer")
		assert.Equal(t, true, nlb.Inputs["internal"])
		assert.Equal(t, "network", nlb.Inputs["loadBalancerType"])
		assert.ElementsMatch(t, []any{"subnet-dsr1-private-cn-northwest-1a", "subnet-dsr1-private-cn-northwest-1b"},
			nlb.Inputs["subnets"], "the private subnets only")
	})
	t.Run("no Action * on Resource *", func(t *testing.T) {
		assertNoAdminWildcards(t, p)
	})
	t.Run("instance reads only its weights prefix and its key", func(t *testing.T) {
		doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
		got := map[string][]string{}
		for _, st := range doc.Statement {
			got[st.Sid] = st.Resource
			assert.Equal(t, "Allow", st.Effect)
		}
		prefix := "models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/"
		assert.Equal(t, []string{"arn:aws-cn:s3:::dsr1-weights-offline/" + prefix + "*"}, got["ReadWeights"])
		assert.Equal(t, []string{"arn:aws-cn:s3:::dsr1-weights-offline"}, got["ListWeights"])
		require.Len(t, got["ReadApiKey"], 1)
		assert.Regexp(t, `^arn:aws-cn:secretsmanager:cn-northwest-1:\d{12}:secret:dsr1-api-key-`, got["ReadApiKey"][0])
		assert.Len(t, doc.Statement, 6, "weights (list, read), key, and the CloudWatch agent's logs, metrics and package")
	})
	t.Run("weights bucket is private, encrypted, versioned, TLS-only and retained", func(t *testing.T) {
		assertWeightsBucketSafe(t, p)
	})
}

func TestEC2VLLMArgumentsMatchSizing(t *testing.T) {
	cases := []struct {
		model, instanceType string
		want                []string
		absent              []string
	}{
		{"deepseek-r1-distill-qwen-7b", "g5.xlarge",
			[]string{"--tensor-parallel-size 1 ", "--dtype bfloat16 ", "--served-model-name deepseek-r1-distill-qwen-7b "},
			[]string{"--pipeline-parallel-size"}},
		{"deepseek-r1-distill-qwen-32b", "g5.12xlarge",
			[]string{"--tensor-parallel-size 4 ", "--dtype bfloat16 "}, []string{"--pipeline-parallel-size"}},
		{"deepseek-r1-distill-qwen-14b", "g4dn.12xlarge",
			[]string{"--tensor-parallel-size 4 ", "--dtype float16 "}, nil},
		// 28 attention heads cannot be split 8 ways: TP 4 x PP 2.
		{"deepseek-r1-distill-qwen-7b", "g5.48xlarge",
			[]string{"--tensor-parallel-size 4 ", "--pipeline-parallel-size 2 "}, nil},
		{"deepseek-r1-distill-llama-70b", "g5.48xlarge",
			[]string{"--tensor-parallel-size 8 ", "--dtype bfloat16 "}, []string{"--pipeline-parallel-size"}},
	}
	for _, c := range cases {
		t.Run(c.model+" on "+c.instanceType, func(t *testing.T) {
			p := mustPlan(t, cfg("aws:region", "cn-north-1", "model", c.model, "instanceType", c.instanceType))
			serve := serveLine(t, bootScript(t, p))
			for _, w := range c.want {
				assert.Contains(t, serve, w)
			}
			for _, a := range c.absent {
				assert.NotContains(t, serve, a)
			}
			assert.Contains(t, serve, fmt.Sprintf("--max-model-len %d ", p.Sizing.MaxModelLen))
			assert.Contains(t, serve, " --reasoning-parser deepseek_r1 ")
			// Each request's id in vLLM's log, to follow it from the audit log; never its text.
			assert.True(t, strings.HasSuffix(serve, "--enable-log-requests --max-log-len 0"), serve)
			assert.Equal(t, c.instanceType, launchTemplates(t, p)[0].Inputs["instanceType"])
		})
	}
}

func TestEC2APIKeyNeverInPlainText(t *testing.T) {
	const key = "sk-test-5f1c0ffee-do-not-leak"
	values := cfg("aws:region", "cn-northwest-1", "apiKey", key)
	p := mustPlan(t, values, "deepseek-r1-cn:apiKey")
	b, err := p.JSON()
	require.NoError(t, err)
	assert.NotContains(t, string(b), key, "the key leaked into the planned inputs")

	version := one(t, p, "aws:secretsmanager/secretVersion:SecretVersion")
	assert.Equal(t, plan.SecretMask, version.Inputs["secretString"])
	assert.Empty(t, byType(p, "random:index/randomPassword:RandomPassword"), "a configured key is not generated")

	for _, lt := range launchTemplates(t, p) {
		ud := lt.Inputs["userData"].(string)
		assert.NotContains(t, ud, "--api-key")
		assert.NotContains(t, ud, key)
		assert.Contains(t, ud, "aws secretsmanager get-secret-value")
	}

	t.Run("generated when not configured", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1"))
		pw := one(t, p, "random:index/randomPassword:RandomPassword")
		assert.EqualValues(t, 48, pw.Inputs["length"])
		assert.Equal(t, plan.SecretMask, one(t, p, "aws:secretsmanager/secretVersion:SecretVersion").Inputs["secretString"])
	})
	t.Run("refused in plain text", func(t *testing.T) {
		err := configErr(t, values)
		assert.Contains(t, err.Error(), "deepseek-r1-cn:apiKey")
		assert.Contains(t, err.Error(), "pulumi config set --secret")
		assert.NotContains(t, err.Error(), key, "the error must not echo the key")
	})
}

// TestEC2ChoosesBestValueInstance: the lowest price per unit of expected
// decode throughput (GPU memory bandwidth relative to an A10G: T4 320/600).
// By hand, cn-north-1 prices: 1.5B g4dn.xlarge 5.223/0.533 = 9.79 against
// g5.xlarge 9.514/1; 14B g4dn.12xlarge 38.849/(4 x 0.533) = 18.2 against
// g5.12xlarge 53.641/4 = 13.4.
func TestEC2ChoosesBestValueInstance(t *testing.T) {
	cases := []struct{ model, want string }{
		{"deepseek-r1-distill-qwen-1.5b", "g5.xlarge"},
		{"deepseek-r1-distill-qwen-7b", "g5.xlarge"},
		{"deepseek-r1-distill-llama-8b", "g5.xlarge"},
		{"deepseek-r1-distill-qwen-14b", "g5.12xlarge"},
		{"deepseek-r1-distill-qwen-32b", "g5.12xlarge"},
		{"deepseek-r1-distill-llama-70b", "g5.48xlarge"},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "model", c.model))
			assert.Equal(t, c.want, p.Sizing.InstanceType)
			assert.Equal(t, c.want, launchTemplates(t, p)[0].Inputs["instanceType"])
			assert.True(t, p.Cost.Known)
			assert.Equal(t, "CNY", p.Cost.Currency)
		})
	}
}

func TestEC2CostEstimate(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-north-1", "instanceType", "g5.12xlarge", "model", "deepseek-r1-distill-qwen-32b"))
	assert.InDelta(t, 53.64092, p.Cost.PerHour, 1e-9)
	assert.InDelta(t, 53.64092*730, p.Cost.PerMonth, 0.01)
	assert.Contains(t, p.Cost.Basis, "2024-11-06")

	p = mustPlan(t, cfg("aws:region", "cn-northwest-1", "instanceType", "g5.12xlarge", "model", "deepseek-r1-distill-qwen-32b",
		"pricePerHour", "50.5"))
	assert.InDelta(t, 50.5, p.Cost.PerHour, 1e-9)
	assert.Equal(t, "deepseek-r1-cn:pricePerHour", p.Cost.Basis)
}

func TestEC2ExistingNetworkAndBucket(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1",
		"vpcId", "vpc-0abc1234", "subnetIds", `["subnet-1","subnet-2"]`, "routeTableIds", `["rtb-1"]`,
		"weightsBucket", "my-weights", "weightsPrefix", "r1/qwen7b/",
		"allowedCidrs", `["10.20.0.0/16","192.168.1.0/24"]`))
	assert.Empty(t, byType(p, "aws:ec2/vpc:Vpc"))
	assert.Empty(t, byType(p, "aws:ec2/natGateway:NatGateway"))
	assert.Empty(t, byType(p, "aws:s3/bucketV2:BucketV2"), "an existing bucket is used, not created")

	group := one(t, p, "aws:autoscaling/group:Group")
	assert.Equal(t, []any{"subnet-1", "subnet-2"}, group.Inputs["vpcZoneIdentifiers"])
	assert.Equal(t, []any{"subnet-1", "subnet-2"}, one(t, p, "aws:lb/loadBalancer:LoadBalancer").Inputs["subnets"])
	assert.Contains(t, bootScript(t, p), "WEIGHTS_S3_URI=s3://my-weights/r1/qwen7b/\n")

	s3 := byName(t, p, "aws:ec2/vpcEndpoint:VpcEndpoint", "dsr1-s3")
	assert.Equal(t, []any{"rtb-1"}, s3.Inputs["routeTableIds"])

	api := byName(t, p, "aws:ec2/securityGroup:SecurityGroup", "dsr1-vllm")
	rule := api.Inputs["ingress"].([]any)[0].(map[string]any)
	assert.Equal(t, []any{"10.20.0.0/16", "192.168.1.0/24", "10.0.0.0/16"}, rule["cidrBlocks"],
		"the clients, then the VPC for the load balancer's health checks (the stand-in's VPC is 10.0.0.0/16)")

	doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	assert.Equal(t, []string{"arn:aws-cn:s3:::my-weights/r1/qwen7b/*"}, doc.Statement[1].Resource)
}

func TestEC2FullyPrivateWithECRImage(t *testing.T) {
	image := "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm/vllm-openai:v0.11.0"
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "natGateway", "false", "vllmImage", image))
	assert.Empty(t, byType(p, "aws:ec2/natGateway:NatGateway"))
	assert.Empty(t, byType(p, "aws:ec2/internetGateway:InternetGateway"))

	names := map[string]any{}
	for _, ep := range byType(p, "aws:ec2/vpcEndpoint:VpcEndpoint") {
		names[ep.Name] = ep.Inputs["serviceName"]
	}
	assert.Equal(t, "cn.com.amazonaws.cn-northwest-1.ecr.dkr", names["dsr1-ecr.dkr"])
	assert.Equal(t, "cn.com.amazonaws.cn-northwest-1.ecr.api", names["dsr1-ecr.api"])

	ud := bootScript(t, p)
	assert.Contains(t, ud, image)
	assert.NotContains(t, ud, "pip install")

	doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	var repo []string
	for _, st := range doc.Statement {
		if st.Sid == "PullVllmImage" {
			repo = st.Resource
		}
	}
	assert.Equal(t, []string{"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/vllm/vllm-openai"}, repo)
}

func TestEC2WeightsFromModelScope(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "weightsSource", "modelscope"))
	assert.Empty(t, byType(p, "aws:s3/bucketV2:BucketV2"))
	assert.Contains(t, bootScript(t, p), "MODELSCOPE_ID=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B\n")
	doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	for _, st := range doc.Statement {
		if st.Sid == "AgentPackage" {
			// The CloudWatch agent's package, and nothing else of S3.
			assert.Equal(t, []string{"arn:aws-cn:s3:::amazoncloudwatch-agent-cn-northwest-1/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb"}, st.Resource)
			continue
		}
		for _, a := range st.Action {
			assert.False(t, strings.HasPrefix(a, "s3:"), "no S3 access without a bucket: %s", a)
		}
	}
}

func TestEC2CustomerManagedKey(t *testing.T) {
	kms := "arn:aws-cn:kms:cn-northwest-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "kmsKeyArn", kms))
	for _, lt := range launchTemplates(t, p) {
		ebs := lt.Inputs["blockDeviceMappings"].([]any)[0].(map[string]any)["ebs"].(map[string]any)
		assert.Equal(t, kms, ebs["kmsKeyId"], lt.Name)
	}
	assert.Equal(t, kms, one(t, p, "aws:secretsmanager/secret:Secret").Inputs["kmsKeyId"])
	sse := one(t, p, "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
	def := sse.Inputs["rules"].([]any)[0].(map[string]any)["applyServerSideEncryptionByDefault"].(map[string]any)
	assert.Equal(t, "aws:kms", def["sseAlgorithm"])
	assert.Equal(t, kms, def["kmsMasterKeyId"])
	doc, _ := json.Marshal(parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"]))
	assert.Contains(t, string(doc), kms, "the instance may use the key")
}

// launchTemplates are the launch templates in the group's launch priority.
func launchTemplates(t *testing.T, p *plan.Plan) []plan.Resource {
	t.Helper()
	group := one(t, p, "aws:autoscaling/group:Group")
	lt := group.Inputs["mixedInstancesPolicy"].(map[string]any)["launchTemplate"].(map[string]any)
	var out []plan.Resource
	for _, o := range lt["overrides"].([]any) {
		typ := o.(map[string]any)["instanceType"].(string)
		r := byName(t, p, "aws:ec2/launchTemplate:LaunchTemplate", "dsr1-vllm-"+typ)
		assert.Equal(t, "lt-"+r.Name, o.(map[string]any)["launchTemplateSpecification"].(map[string]any)["launchTemplateId"])
		assert.Equal(t, typ, r.Inputs["instanceType"])
		out = append(out, r)
	}
	require.NotEmpty(t, out)
	assert.Equal(t, "lt-"+out[0].Name, lt["launchTemplateSpecification"].(map[string]any)["launchTemplateId"],
		"the group's own template is the first one")
	return out
}

// bootScript is the user data of the first launch template, decoded.
func bootScript(t *testing.T, p *plan.Plan) string {
	t.Helper()
	ud, ok := launchTemplates(t, p)[0].Inputs["userData"].(string)
	require.True(t, ok)
	require.True(t, strings.HasPrefix(ud, "#!/bin/bash"), "the plan shows user data decoded")
	return ud
}

func byName(t *testing.T, p *plan.Plan, typ, name string) plan.Resource {
	t.Helper()
	for _, r := range byType(p, typ) {
		if r.Name == name {
			return r
		}
	}
	require.Failf(t, "missing resource", "%s %s", typ, name)
	return plan.Resource{}
}

// serveLine is the vllm serve command line of a boot script.
func serveLine(t *testing.T, userData string) string {
	t.Helper()
	for _, l := range strings.Split(userData, "\n") {
		if strings.Contains(l, "vllm serve ") || strings.HasPrefix(strings.TrimSpace(l), "serve ") {
			return l
		}
	}
	require.Fail(t, "no vllm serve line in the boot script")
	return ""
}
