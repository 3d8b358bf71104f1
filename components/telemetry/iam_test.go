package telemetry

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

func statement(t *testing.T, st []iamdoc.Statement, sid string) iamdoc.Statement {
	t.Helper()
	for _, s := range st {
		if s.Sid == sid {
			return s
		}
	}
	t.Fatalf("no statement %s", sid)
	return iamdoc.Statement{}
}

func TestAgentStatements(t *testing.T) {
	tests := []struct {
		region, partition string
	}{
		{"cn-northwest-1", "aws-cn"},
		{"us-east-1", "aws"},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			r, err := region.Lookup(tc.region)
			require.NoError(t, err)
			st, err := AgentStatements(r, "123456789012", "prod", DefaultAgentPackage(tc.region))
			require.NoError(t, err)
			logs := statement(t, st, "AgentLogs")
			assert.Equal(t, []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, logs.Action)
			groups, err := EC2LogGroups("prod", true)
			require.NoError(t, err)
			require.Len(t, logs.Resource, 2*len(groups))
			for i, g := range groups {
				arn := "arn:" + tc.partition + ":logs:" + tc.region + ":123456789012:log-group:" + g.Name
				assert.Equal(t, arn, logs.Resource[2*i])
				assert.Equal(t, arn+":*", logs.Resource[2*i+1])
			}
			for _, s := range st {
				assert.NotContains(t, s.Action, "logs:CreateLogGroup", "the program creates the groups")
				assert.NotContains(t, s.Action, "logs:PutRetentionPolicy")
				assert.NotContains(t, s.Action, "ec2:DescribeTags")
			}
			put := statement(t, st, "AgentMetrics")
			assert.Equal(t, []string{"cloudwatch:PutMetricData"}, put.Action)
			assert.Equal(t, map[string]map[string]any{"StringEquals": {"cloudwatch:namespace": "DeepSeekR1CN/prod"}}, put.Condition)
			pkg := statement(t, st, "AgentPackage")
			assert.Equal(t, []string{"arn:" + tc.partition + ":s3:::amazoncloudwatch-agent-" + tc.region +
				"/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb"}, pkg.Resource)
		})
	}
}

func TestAgentStatementsWithoutPackage(t *testing.T) {
	r, err := region.Lookup("cn-north-1")
	require.NoError(t, err)
	st, err := AgentStatements(r, "*", "prod", "")
	require.NoError(t, err)
	assert.Len(t, st, 2)
	for _, bad := range []string{"https://bucket/key", "s3://bucket", "s3:///key"} {
		_, err := AgentStatements(r, "*", "prod", bad)
		assert.Error(t, err, bad)
	}
	_, err = AgentStatements(r, "*", "", "")
	assert.Error(t, err)
}
