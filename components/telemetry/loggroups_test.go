package telemetry

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(groups []LogGroup) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Name)
	}
	return out
}

func TestEC2LogGroups(t *testing.T) {
	tests := []struct {
		name    string
		gateway bool
		want    []string
	}{
		{"vLLM alone", false, []string{
			"/deepseek-r1-cn/prod/ec2/boot", "/deepseek-r1-cn/prod/ec2/vllm", "/deepseek-r1-cn/prod/ec2/metrics",
		}},
		{"with the gateway", true, []string{
			"/deepseek-r1-cn/prod/ec2/boot", "/deepseek-r1-cn/prod/ec2/vllm",
			"/deepseek-r1-cn/prod/ec2/guardrail", "/deepseek-r1-cn/prod/ec2/guardrail-audit",
			"/deepseek-r1-cn/prod/ec2/metrics",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			groups, err := EC2LogGroups("prod", tc.gateway)
			require.NoError(t, err)
			assert.Equal(t, tc.want, names(groups))
			for _, g := range groups {
				assert.NotEmpty(t, g.Key)
				assert.NotEmpty(t, g.Purpose)
				assert.Equal(t, CreatedByProgram, g.CreatedBy)
				assert.True(t, strings.HasSuffix(g.Name, "/"+g.Key), "the key is the name's last part: %s", g.Name)
			}
		})
	}
	audit, ok := LogGroupByKey(must(EC2LogGroups("prod", true)), LogGatewayAudit)
	require.True(t, ok)
	assert.Equal(t, AuditLogFile, audit.File)
	metrics, ok := LogGroupByKey(must(EC2LogGroups("prod", false)), LogMetrics)
	require.True(t, ok)
	assert.Empty(t, metrics.File, "the agent writes EMF events there, no file")
	assert.Equal(t, "{JobName}", metrics.Stream)

	_, err := EC2LogGroups("a b", false)
	assert.ErrorContains(t, err, "want 1-512 of letters")
}

func TestValidateLogGroupName(t *testing.T) {
	for name, ok := range map[string]bool{
		"/deepseek-r1-cn/prod/ec2/vllm":          true,
		"/aws/sagemaker/Endpoints/x-1":           true,
		"a#b.c_d-e":                              true,
		"":                                       false,
		"has space":                              false,
		"colon:no":                               false,
		"/" + strings.Repeat("g", 511):           true,
		"/" + strings.Repeat("g", 512):           false,
		"/aws/containerinsights/c/performance/*": false,
	} {
		t.Run(name, func(t *testing.T) {
			if ok {
				assert.NoError(t, ValidateLogGroupName(name))
			} else {
				assert.Error(t, ValidateLogGroupName(name))
			}
		})
	}
}

func TestServiceLogGroups(t *testing.T) {
	assert.Equal(t, []string{"/aws/sagemaker/Endpoints/deepseek-ep"}, names(SageMakerLogGroups("deepseek-ep")))
	assert.Equal(t, []string{
		"/aws/containerinsights/c1/application", "/aws/containerinsights/c1/dataplane", "/aws/containerinsights/c1/host",
		"/aws/containerinsights/c1/performance", "/aws/eks/c1/cluster",
	}, names(EKSLogGroups("c1")))
	for _, g := range append(SageMakerLogGroups("e"), EKSLogGroups("c")...) {
		assert.NoError(t, ValidateLogGroupName(g.Name))
		assert.Equal(t, CreatedByService, g.CreatedBy)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The sidecar's log group is the stack's own, created by the program; its
// streams are the scrape jobs, shared by the replicas.
func TestEKSOwnLogGroups(t *testing.T) {
	groups, err := EKSOwnLogGroups("prod")
	require.NoError(t, err)
	assert.Equal(t, []string{"/deepseek-r1-cn/prod/eks/metrics"}, names(groups))
	assert.Equal(t, CreatedByProgram, groups[0].CreatedBy)
	assert.Equal(t, "{JobName}", groups[0].Stream)
	ec2, err := EC2LogGroups("prod", true)
	require.NoError(t, err)
	for _, g := range ec2 {
		assert.NotEqual(t, g.Name, groups[0].Name, "each target has its own group")
	}
	_, err = EKSOwnLogGroups("a b")
	assert.Error(t, err)
	keys := map[string]bool{}
	for _, g := range append(EKSLogGroups("c"), groups...) {
		assert.False(t, keys[g.Key], "key %s twice", g.Key)
		keys[g.Key] = true
	}
}
