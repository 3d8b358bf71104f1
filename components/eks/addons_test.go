package eks

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

func TestAddonRegistryIsInTheRegion(t *testing.T) {
	for name, want := range map[string]string{
		"cn-northwest-1": "961992271922.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
		"cn-north-1":     "918309763551.dkr.ecr.cn-north-1.amazonaws.com.cn",
		"us-west-2":      "602401143452.dkr.ecr.us-west-2.amazonaws.com",
		"me-south-1":     "558608220178.dkr.ecr.me-south-1.amazonaws.com",
	} {
		r, err := region.Lookup(name)
		assert.NoError(t, err)
		assert.Equal(t, want, AddonRegistry(r), name)
		assert.True(t, r.IsRegionalECRImage(AddonRegistry(r)+"/eks/coredns:v1.12.4-eksbuild.1"), name)
	}
}

func TestAddonVersions(t *testing.T) {
	assert.Equal(t, DefaultAddonVersions, AddonVersions("1.33", nil))
	assert.Equal(t, map[string]string{AddonVPCCNI: "v1.20.1-eksbuild.3", AddonCoreDNS: "v1.12.1-eksbuild.2",
		AddonKubeProxy: "v1.33.3-eksbuild.6"}, AddonVersions("1.33", map[string]string{AddonCoreDNS: "v1.12.1-eksbuild.2"}))
	assert.Empty(t, AddonVersions("1.34", nil), "the 1.33 pins are not used for another Kubernetes version")
	assert.Equal(t, map[string]string{AddonKubeProxy: "v1.34.0-eksbuild.1"},
		AddonVersions("1.34", map[string]string{AddonKubeProxy: "v1.34.0-eksbuild.1"}))
	for _, v := range DefaultAddonVersions {
		assert.Regexp(t, AddonVersionPattern, v)
	}

	assert.NoError(t, validateAddonVersions(DefaultAddonVersions))
	assert.ErrorContains(t, validateAddonVersions(map[string]string{"aws-ebs-csi-driver": "v1.0.0-eksbuild.1"}), "unknown add-on")
	assert.ErrorContains(t, validateAddonVersions(map[string]string{AddonCoreDNS: "1.12"}), "not of the form")
}
