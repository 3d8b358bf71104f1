package telemetry

import (
	"fmt"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// AgentStatements are what the CloudWatch agent on an EC2 instance of the
// stack calls AWS for, and no more:
//   - logs:CreateLogStream and logs:PutLogEvents on its log groups' streams,
//     and logs:DescribeLogStreams on the groups (the agent's CloudWatch Logs
//     pusher and the awsemf exporter create a missing stream; older agents
//     describe streams for the sequence token). Not logs:CreateLogGroup nor
//     logs:PutRetentionPolicy: the program creates the groups with their
//     retention, and AgentConfig sets no retention_in_days.
//   - cloudwatch:PutMetricData, only into the stack's namespace (the
//     cloudwatch:namespace condition key). The EMF metrics need no
//     PutMetricData: CloudWatch Logs extracts them from the log events.
//   - s3:GetObject on the agent's package, when the AMI has no agent and
//     the install fetches it (agentPackage, an s3:// URI; "" for none).
//
// Not needed: ec2:DescribeTags (only for ${aws:AutoScalingGroupName}
// dimensions or ec2_tagger, neither used; the agent's entity store reads
// the instance metadata only: extension/entitystore/ec2Info.go),
// ec2:DescribeVolumes, ssm:GetParameter (the configuration is a file).
// account is the account ID, or "*".
func AgentStatements(r region.Info, account, stack, agentPackage string) ([]iamdoc.Statement, error) {
	ns, err := Namespace(stack)
	if err != nil {
		return nil, err
	}
	groups, err := EC2LogGroups(stack, true)
	if err != nil {
		return nil, err
	}
	arns := logGroupARNs(r, account, groups)
	put := iamdoc.Allow("AgentMetrics", []string{"cloudwatch:PutMetricData"}, []string{"*"})
	put.Condition = map[string]map[string]any{"StringEquals": {"cloudwatch:namespace": ns}}
	st := []iamdoc.Statement{
		iamdoc.Allow("AgentLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}, arns),
		put,
	}
	if agentPackage != "" {
		bucket, key, ok := strings.Cut(strings.TrimPrefix(agentPackage, "s3://"), "/")
		if !strings.HasPrefix(agentPackage, "s3://") || !ok || bucket == "" || key == "" {
			return nil, fmt.Errorf("agent package %q is not an s3://bucket/key URI", agentPackage)
		}
		st = append(st, iamdoc.Allow("AgentPackage", []string{"s3:GetObject"}, []string{r.ARN("s3", "", "", bucket+"/"+key)}))
	}
	return st, nil
}

// logGroupARNs are each group's ARN and the group followed by ":*", which
// covers its streams (log-group:NAME:log-stream:STREAM): CreateLogStream
// and DescribeLogStreams act on the group, PutLogEvents on a stream
// (Service Authorization Reference, Amazon CloudWatch Logs).
func logGroupARNs(r region.Info, account string, groups []LogGroup) []string {
	var arns []string
	for _, g := range groups {
		arn := r.ARN("logs", r.Name, account, "log-group:"+g.Name)
		arns = append(arns, arn, arn+":*")
	}
	return arns
}
