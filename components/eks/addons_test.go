package eks

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// tolerates applies Kubernetes' toleration matching (an empty key with
// Exists matches every taint; otherwise the key must match, and an empty
// effect matches every effect).
func tolerates(tols []Toleration, key, effect string) bool {
	for _, t := range tols {
		keyOK := t.Key == key || (t.Key == "" && t.Operator == "Exists")
		effectOK := t.Effect == "" || t.Effect == effect
		if keyOK && effectOK && (t.Operator == "Exists" || t.Operator == "Equal") {
			return true
		}
	}
	return false
}

// The add-on's DaemonSets tolerate the GPU nodes' taint, so that the GPU
// nodes get logs and DCGM metrics, and container logs stay on.
func TestObservabilityConfiguration(t *testing.T) {
	s, err := ObservabilityConfiguration()
	require.NoError(t, err)
	var cfg struct {
		Tolerations   []Toleration `json:"tolerations"`
		ContainerLogs struct {
			Enabled bool `json:"enabled"`
		} `json:"containerLogs"`
	}
	require.NoError(t, json.Unmarshal([]byte(s), &cfg))
	assert.True(t, tolerates(cfg.Tolerations, GPUTaint, "NoSchedule"), "the GPU taint: %s", s)
	assert.True(t, cfg.ContainerLogs.Enabled)
	var keys map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &keys))
	assert.Len(t, keys, 2, "only keys every add-on version since 4.x knows: %s", s)

	// The matcher is not a yes-man.
	assert.False(t, tolerates([]Toleration{{Key: "other", Operator: "Exists"}}, GPUTaint, "NoSchedule"))
	assert.False(t, tolerates([]Toleration{{Key: GPUTaint, Operator: "Exists", Effect: "NoExecute"}}, GPUTaint, "NoSchedule"))
	assert.False(t, tolerates(nil, GPUTaint, "NoSchedule"))
}

func TestKnownAddons(t *testing.T) {
	assert.Equal(t, []string{AddonVPCCNI, AddonKubeProxy, AddonCoreDNS, AddonCloudWatchObservability}, KnownAddons)
	assert.Equal(t, []string{AddonVPCCNI, AddonKubeProxy, AddonCoreDNS}, Addons, "the observability add-on is not a node add-on")
	assert.NoError(t, validateAddonVersions(map[string]string{AddonCloudWatchObservability: "v4.10.3-eksbuild.1"}))
	assert.ErrorContains(t, validateAddonVersions(map[string]string{AddonCloudWatchObservability: "4.10.3"}), "not of the form")
	assert.Empty(t, AddonVersions("1.33", nil)[AddonCloudWatchObservability], "no built-in pin: EKS's default unless configured")

	r, err := region.Lookup("cn-northwest-1")
	require.NoError(t, err)
	assert.Equal(t, "arn:aws-cn:iam::aws:policy/CloudWatchAgentServerPolicy", r.ManagedPolicyARN(ObservabilityPolicy))
}
