package telemetry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

func TestNamespace(t *testing.T) {
	tests := []struct {
		stack, want, err string
	}{
		{stack: "prod", want: "DeepSeekR1CN/prod"},
		{stack: "cn-northwest-1-eks", want: "DeepSeekR1CN/cn-northwest-1-eks"},
		{stack: "dev.v2_a", want: "DeepSeekR1CN/dev.v2_a"},
		{stack: "", err: "the stack name is empty"},
		{stack: "a&b", err: "is not allowed"},
		{stack: strings.Repeat("s", 250), err: "want 1-255 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.stack, func(t *testing.T) {
			got, err := Namespace(tc.stack)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestValidateNamespace(t *testing.T) {
	tests := []struct {
		ns string
		ok bool
	}{
		{"DeepSeekR1CN/prod", true},
		{"a.b-c_d/e#f:g h", true},
		{":leading-colon", false},
		{"AWS/Mine", false},
		{"", false},
		{"   ", false},
		{"tab\there", false},
		{"模型", false},
		{strings.Repeat("n", 255), true},
		{strings.Repeat("n", 256), false},
	}
	for _, tc := range tests {
		t.Run(tc.ns, func(t *testing.T) {
			err := ValidateNamespace(tc.ns)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestDashboardURL(t *testing.T) {
	tests := []struct {
		region, want string
	}{
		{"cn-northwest-1", "https://console.amazonaws.cn/cloudwatch/home?region=cn-northwest-1#dashboards:name=deepseek-r1-cn-prod"},
		{"cn-north-1", "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1#dashboards:name=deepseek-r1-cn-prod"},
		{"us-east-1", "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=deepseek-r1-cn-prod"},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			r, err := region.Lookup(tc.region)
			require.NoError(t, err)
			assert.Equal(t, tc.want, DashboardURL(r, "deepseek-r1-cn-prod"))
		})
	}
}
