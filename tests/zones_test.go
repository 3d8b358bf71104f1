package tests

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// subnetZones lists the zones of a plan's private subnets.
func subnetZones(p *plan.Plan) []string {
	var out []string
	for _, s := range byType(p, "aws:ec2/subnet:Subnet") {
		if s.Name != "dsr1-public" {
			out = append(out, s.Inputs["availabilityZone"].(string))
		}
	}
	return out
}

// TestZonesPerTarget plans every target against the region's stand-in,
// which answers like EC2: ml.* types are offered nowhere, so SageMaker's
// zones must not come from DescribeInstanceTypeOfferings.
func TestZonesPerTarget(t *testing.T) {
	cases := []struct {
		name  string
		cfg   map[string]string
		zones []string
	}{
		{"ec2 cn-northwest-1", cfg("aws:region", "cn-northwest-1"), []string{"cn-northwest-1a", "cn-northwest-1b"}},
		{"ec2 cn-north-1", cfg("aws:region", "cn-north-1"), []string{"cn-north-1a", "cn-north-1b"}},
		{"sagemaker cn-northwest-1", cfg("aws:region", "cn-northwest-1", "target", "sagemaker", "natGateway", "false",
			"model", "deepseek-r1-distill-qwen-32b", "instanceType", "ml.g5.12xlarge"), []string{"cn-northwest-1a", "cn-northwest-1b"}},
		{"sagemaker us-east-1", cfg("aws:region", "us-east-1", "target", "sagemaker", "natGateway", "false"),
			[]string{"us-east-1a", "us-east-1b"}},
		{"eks cn-north-1", eksCfg("cn-north-1"), []string{"cn-north-1a", "cn-north-1b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPlan(t, c.cfg)
			assert.ElementsMatch(t, c.zones, subnetZones(p))
		})
	}
}

// TestStandinAnswersLikeEC2 checks the stand-in itself: EC2 offers no
// SageMaker, Trainium or Inferentia type in China, and an unknown filter is
// an error, as the API says.
func TestStandinAnswersLikeEC2(t *testing.T) {
	cat := plan.DefaultCatalog("cn-northwest-1", nil)
	for _, typ := range []string{"ml.g5.12xlarge", "trn1.2xlarge", "inf2.xlarge", "p4d.24xlarge", "g6.xlarge"} {
		assert.Empty(t, cat.Offerings[typ], typ)
	}
	assert.Len(t, cat.Offerings["g5.xlarge"], 3)
	assert.Len(t, cat.Offerings["m5.large"], 3)
	// The stack's own list is the user's statement of what AWS offers them.
	over := plan.DefaultCatalog("cn-northwest-1", []string{"g4dn.xlarge"})
	assert.Empty(t, over.Offerings["g5.xlarge"])
	assert.Len(t, over.Offerings["g4dn.xlarge"], 3)
}

// TestTooFewZones fails the preview, before anything is registered, when
// fewer than two zones can hold the deployment.
func TestTooFewZones(t *testing.T) {
	oneZone := func(region, typ string) *plan.Catalog {
		c := plan.DefaultCatalog(region, nil)
		c.Offerings[typ] = c.Zones[:1]
		return c
	}
	cases := []struct {
		name  string
		cfg   map[string]string
		aws   *plan.Catalog
		wants []string
	}{
		{"eks GPU type in one zone", eksCfg("cn-northwest-1"), oneZone("cn-northwest-1", "g5.12xlarge"),
			[]string{"deepseek-r1-cn:instanceType", "g5.12xlarge", "only cn-northwest-1a", "eks target needs subnets in 2 zones"}},
		{"ec2 type in one zone", cfg("aws:region", "cn-northwest-1", "instanceType", "g5.xlarge", "maxFallbackInstanceTypes", "0"),
			oneZone("cn-northwest-1", "g5.xlarge"), []string{"deepseek-r1-cn:instanceType", "only cn-northwest-1a"}},
		{"type offered nowhere", cfg("aws:region", "cn-north-1", "instanceType", "g5.xlarge", "maxFallbackInstanceTypes", "0"),
			func() *plan.Catalog {
				c := plan.DefaultCatalog("cn-north-1", nil)
				delete(c.Offerings, "g5.xlarge")
				return c
			}(),
			[]string{"deepseek-r1-cn:instanceType", "no availability zone"}},
		{"sagemaker region with one zone", cfg("aws:region", "cn-northwest-1", "target", "sagemaker", "natGateway", "false"),
			&plan.Catalog{Zones: []string{"cn-northwest-1a"}},
			[]string{"deepseek-r1-cn:availabilityZones", "SageMaker hosting in a VPC needs subnets in 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runWith(c.cfg, c.aws)
			require.Error(t, err)
			var pe *plan.ProgramError
			require.True(t, errors.As(err, &pe))
			assert.Zero(t, pe.Registered, "resources registered before the error: %v", err)
			for _, w := range c.wants {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestFallbacksWidenTheZones: the group may launch a fallback type where
// the first one is not offered, so the zones are those of any of them, the
// zones offering the first type first.
func TestFallbacksWidenTheZones(t *testing.T) {
	c := plan.DefaultCatalog("cn-northwest-1", nil)
	c.Offerings["g5.xlarge"] = []string{"cn-northwest-1c"}
	c.Offerings["g5.2xlarge"] = []string{"cn-northwest-1a"}
	c.Offerings["g5.4xlarge"] = []string{"cn-northwest-1a"}
	p, err := runWith(cfg("aws:region", "cn-northwest-1", "instanceType", "g5.xlarge"), c)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"cn-northwest-1a", "cn-northwest-1c"}, subnetZones(p))
}

// TestZoneConfigNeedsTwo refuses one configured zone, and one existing
// subnet for the targets whose AWS service needs two zones.
func TestZoneConfigNeedsTwo(t *testing.T) {
	one, _ := json.Marshal([]string{"cn-northwest-1a"})
	err := configErr(t, cfg("aws:region", "cn-northwest-1", "availabilityZones", string(one)))
	assert.Contains(t, err.Error(), `deepseek-r1-cn:availabilityZones = "cn-northwest-1a"`)
	err = configErr(t, eksCfg("cn-northwest-1", "vpcId", "vpc-0abc1234", "subnetIds", `["subnet-0abc1234"]`))
	assert.Contains(t, err.Error(), `deepseek-r1-cn:subnetIds = "subnet-0abc1234": lists one subnet; the eks target`)
}

// TestStandinRefusesWhatAWSRefuses: the stand-in answers a create the way
// EC2 does for the inputs it checks, so that a plan the mocks accept is not
// one AWS refuses for these reasons.
func TestStandinRefusesWhatAWSRefuses(t *testing.T) {
	t.Run("an endpoint service China does not have", func(t *testing.T) {
		// Systems Manager keeps com.amazonaws in China; the cn. name does not exist.
		_, err := run(cfg("aws:region", "cn-northwest-1",
			"vpcEndpointServiceNames", `{"ssm": "cn.com.amazonaws.cn-northwest-1.ssm"}`))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "InvalidServiceName: The Vpc Endpoint Service 'cn.com.amazonaws.cn-northwest-1.ssm' does not exist")
	})
	t.Run("every endpoint of the shipped China stacks exists", func(t *testing.T) {
		for _, values := range []map[string]string{
			cfg("aws:region", "cn-northwest-1"), cfg("aws:region", "cn-north-1"),
			sagemakerCfg("cn-northwest-1"), eksCfg("cn-north-1"),
		} {
			p := mustPlan(t, values)
			assert.NotEmpty(t, byType(p, "aws:ec2/vpcEndpoint:VpcEndpoint"))
		}
	})
}
