package tests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEC2AutoScalingGroup: the server is an Auto Scaling group of one across
// two zones, one launch template per instance type in price order, behind an
// internal NLB whose health check replaces a server that stops answering.
func TestEC2AutoScalingGroup(t *testing.T) {
	for _, pt := range partitions {
		t.Run(pt.region, func(t *testing.T) {
			p := mustPlan(t, cfg("aws:region", pt.region, "model", "deepseek-r1-distill-qwen-7b"))
			assert.Empty(t, byType(p, "aws:ec2/instance:Instance"), "no lone instance: the group runs it")

			group := one(t, p, "aws:autoscaling/group:Group")
			in := group.Inputs
			assert.EqualValues(t, 1, in["minSize"])
			assert.EqualValues(t, 1, in["desiredCapacity"])
			assert.EqualValues(t, 2, in["maxSize"], "room for the refresh's new instance before the old goes")
			assert.Len(t, in["vpcZoneIdentifiers"], 2, "two zones to fall back to")
			assert.Equal(t, "ELB", in["healthCheckType"], "a server that stops answering is replaced")
			// 40 minutes to install + 20 s per GiB of the 14.19 GiB of weights (283.8, rounded up).
			assert.EqualValues(t, 2400+284, in["healthCheckGracePeriod"])
			assert.Len(t, in["targetGroupArns"], 1)
			assert.Equal(t, true, in["ignoreFailedScalingActivities"], "a failed launch in one type or zone is not a failed deployment")
			mip := in["mixedInstancesPolicy"].(map[string]any)
			assert.Equal(t, "prioritized", mip["instancesDistribution"].(map[string]any)["onDemandAllocationStrategy"])
			refresh := in["instanceRefresh"].(map[string]any)
			assert.Equal(t, "Rolling", refresh["strategy"])
			prefs := refresh["preferences"].(map[string]any)
			assert.EqualValues(t, 100, prefs["minHealthyPercentage"], "the old server stays until the new one is healthy")
			assert.EqualValues(t, 200, prefs["maxHealthyPercentage"])

			lts := launchTemplates(t, p)
			var types []string
			for _, lt := range lts {
				types = append(types, lt.Inputs["instanceType"].(string))
			}
			assert.Equal(t, []string{"g5.xlarge", "g5.2xlarge", "g5.4xlarge"}, types, "decided type, then the cheapest fallbacks")
			require.Len(t, p.Fallbacks, 2)
			for i, f := range p.Fallbacks {
				assert.Equal(t, types[i+1], f.Sizing.InstanceType)
				assert.True(t, f.Cost.Known, "each fallback is priced in the plan")
			}
			assert.Less(t, p.Fallbacks[0].Cost.PerHour, p.Fallbacks[1].Cost.PerHour)

			nlb := one(t, p, "aws:lb/loadBalancer:LoadBalancer")
			assert.Equal(t, true, nlb.Inputs["internal"])
			assert.Equal(t, true, nlb.Inputs["enableCrossZoneLoadBalancing"], "the one instance is in one zone")
			tg := one(t, p, "aws:lb/targetGroup:TargetGroup")
			assert.Equal(t, "TCP", tg.Inputs["protocol"])
			assert.EqualValues(t, 8000, tg.Inputs["port"])
			hc := tg.Inputs["healthCheck"].(map[string]any)
			assert.Equal(t, "HTTP", hc["protocol"])
			assert.Equal(t, "/health", hc["path"], "vLLM's health route, which needs no API key")
			// A restart of vLLM (crash, reboot) is systemd's to heal: the
			// load balancer calls the server unhealthy, and the group
			// replaces it, only after a warm restart's time.
			assert.GreaterOrEqual(t, toFloat(hc["unhealthyThreshold"])*toFloat(hc["interval"]), 300.0)
			assert.LessOrEqual(t, toFloat(hc["unhealthyThreshold"]), 10.0, "the NLB's maximum")
			listener := one(t, p, "aws:lb/listener:Listener")
			assert.EqualValues(t, 8000, listener.Inputs["port"])
			assert.EqualValues(t, 3600, listener.Inputs["tcpIdleTimeoutSeconds"], "a non-streamed answer may think for long")

			// The outputs follow the load balancer, not an instance.
			assert.Equal(t, "http://"+p.Outputs["loadBalancerDnsName"].(string)+":8000/v1", p.Outputs["endpointUrl"])
			for _, k := range []string{"ssmShellCommand", "ssmPortForwardCommand"} {
				assert.Contains(t, p.Outputs[k], "aws autoscaling describe-auto-scaling-groups --region "+pt.region+
					" --auto-scaling-group-names dsr1-vllm-offline", k)
			}
			assert.Contains(t, p.Outputs["ssmPortForwardCommand"], "AWS-StartPortForwardingSession")
			assert.Contains(t, p.Outputs["curlExample"], "http://localhost:8000/v1/chat/completions")
			assert.NotContains(t, p.Outputs, "instanceId")
		})
	}
}

// TestEC2EachTemplateIsSizedForItsType: a fallback with other GPUs gets its
// own vLLM arguments.
func TestEC2EachTemplateIsSizedForItsType(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-north-1", "model", "deepseek-r1-distill-qwen-7b", "instanceType", "g5.xlarge",
		"fallbackInstanceTypes", `["g5.12xlarge", "g4dn.12xlarge"]`))
	lts := launchTemplates(t, p)
	require.Len(t, lts, 3)
	want := []struct{ tp, dtype, backend string }{
		{"1", "bfloat16", ""}, {"4", "bfloat16", ""}, {"4", "float16", "TRITON_ATTN"},
	}
	for i, lt := range lts {
		ud := lt.Inputs["userData"].(string)
		serve := serveLine(t, ud)
		assert.Contains(t, serve, "--tensor-parallel-size "+want[i].tp+" ", lt.Name)
		assert.Contains(t, serve, "--dtype "+want[i].dtype+" ", lt.Name)
		if want[i].backend != "" {
			assert.Contains(t, ud, "VLLM_ATTENTION_BACKEND="+want[i].backend, "T4 avoids FlexAttention (vLLM #25528)")
		} else {
			assert.NotContains(t, ud, "VLLM_ATTENTION_BACKEND=", lt.Name)
		}
	}
	assert.Equal(t, 4, p.Fallbacks[1].Sizing.TensorParallelSize)
	assert.Contains(t, strings.Join(p.Fallbacks[1].Sizing.Notes, " "), "FlexAttention")
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case int:
		return float64(n)
	}
	return -1
}

// TestEC2SecurityGroupHasOnePermissionPerCIDR: EC2 refuses an API-port
// permission given twice, as when allowedCidrs holds the VPC's CIDR (the
// default) besides the health checks' rule; the stand-in refuses it too.
func TestEC2SecurityGroupHasOnePermissionPerCIDR(t *testing.T) {
	for _, c := range []struct {
		name   string
		values map[string]string
		want   []any
	}{
		{"default: the VPC", cfg("aws:region", "cn-northwest-1"), []any{"10.0.0.0/16"}},
		{"clients and the VPC", cfg("aws:region", "cn-north-1", "allowedCidrs", `["10.0.0.0/16", "192.168.0.0/24", "192.168.0.0/24"]`),
			[]any{"10.0.0.0/16", "192.168.0.0/24"}},
		{"clients outside the VPC", cfg("aws:region", "us-east-1", "allowedCidrs", `["172.16.0.0/12"]`),
			[]any{"172.16.0.0/12", "10.0.0.0/16"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, c.values)
			sg := byName(t, p, "aws:ec2/securityGroup:SecurityGroup", "dsr1-vllm")
			ingress := sg.Inputs["ingress"].([]any)
			require.Len(t, ingress, 1, "one rule for the API port")
			rule := ingress[0].(map[string]any)
			assert.ElementsMatch(t, c.want, rule["cidrBlocks"])
			assert.EqualValues(t, 8000, rule["fromPort"])
		})
	}
}

func TestEC2GroupOptions(t *testing.T) {
	t.Run("guardrail health check asks vLLM through the gateway", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true"))
		hc := one(t, p, "aws:lb/targetGroup:TargetGroup").Inputs["healthCheck"].(map[string]any)
		assert.Equal(t, "/readyz", hc["path"])
		assert.Contains(t, p.Outputs["guardrailRestartCommand"], "--targets Key=tag:aws:autoscaling:groupName,Values=dsr1-vllm-offline")
	})
	t.Run("no fallbacks", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "maxFallbackInstanceTypes", "0"))
		assert.Len(t, launchTemplates(t, p), 1)
		assert.Empty(t, p.Fallbacks)
	})
	t.Run("grace and idle timeout from config", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "healthCheckGracePeriod", "5400", "loadBalancerIdleTimeout", "0"))
		assert.EqualValues(t, 5400, one(t, p, "aws:autoscaling/group:Group").Inputs["healthCheckGracePeriod"])
		assert.NotContains(t, one(t, p, "aws:lb/listener:Listener").Inputs, "tcpIdleTimeoutSeconds")
	})
	t.Run("p3 is no automatic fallback on the open-driver AMI", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-north-1", "model", "deepseek-r1-distill-qwen-1.5b", "maxFallbackInstanceTypes", "4"))
		for _, f := range p.Fallbacks {
			assert.NotContains(t, f.Sizing.InstanceType, "p3")
		}
	})
}

func TestEC2FallbackConfigErrors(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		want   []string
	}{
		{"too small", cfg("aws:region", "cn-north-1", "model", "deepseek-r1-distill-qwen-32b", "fallbackInstanceTypes", `["g5.xlarge"]`),
			[]string{`deepseek-r1-cn:fallbackInstanceTypes = "g5.xlarge"`, "cannot serve deepseek-r1-distill-qwen-32b"}},
		{"SageMaker type", cfg("aws:region", "cn-north-1", "fallbackInstanceTypes", `["ml.g5.2xlarge"]`),
			[]string{`deepseek-r1-cn:fallbackInstanceTypes = "ml.g5.2xlarge"`, "not an EC2 GPU instance type"}},
		{"not offered", cfg("aws:region", "cn-north-1", "offeredInstanceTypes", `["g5.xlarge","g5.2xlarge"]`,
			"fallbackInstanceTypes", `["g5.4xlarge"]`), []string{`deepseek-r1-cn:fallbackInstanceTypes = "g5.4xlarge"`, "not offered"}},
		{"V100 without an AMI", cfg("aws:region", "cn-north-1", "model", "deepseek-r1-distill-qwen-1.5b",
			"fallbackInstanceTypes", `["p3.2xlarge"]`), []string{`"p3.2xlarge"`, "open kernel driver"}},
		{"listed twice", cfg("aws:region", "cn-north-1", "instanceType", "g5.xlarge", "fallbackInstanceTypes", `["g5.xlarge"]`),
			[]string{"listed twice"}},
		{"not for eks", eksCfg("cn-northwest-1", "fallbackInstanceTypes", `["g5.24xlarge"]`),
			[]string{"deepseek-r1-cn:fallbackInstanceTypes", "ec2 target only"}},
		{"idle timeout", cfg("aws:region", "cn-north-1", "loadBalancerIdleTimeout", "30"),
			[]string{`deepseek-r1-cn:loadBalancerIdleTimeout = "30"`}},
		{"unknown AMI", cfg("aws:region", "cn-north-1", "amiId", "ami-nope"),
			[]string{"look up AMI ami-nope", "deepseek-r1-cn:amiId"}},
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
