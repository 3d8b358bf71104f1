package observability

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// LogGroupsArgs configures LogGroups.
type LogGroupsArgs struct {
	Groups        []telemetry.LogGroup
	RetentionDays int
	// KMSKeyARN, when set, encrypts the groups; its key policy must let
	// CloudWatch Logs in the region use it. "" keeps CloudWatch Logs'
	// own encryption at rest, which every log group has.
	KMSKeyARN string
}

// LogGroups are a deployment's log groups, created with their retention
// and key before anything writes to them (a group a writer creates has no
// retention, and the writers here may not create groups).
type LogGroups struct {
	pulumi.ResourceState

	// Names maps each group's key to its name.
	Names map[string]string
	// Created maps each group's key to the created group's name: a
	// resource that needs the group to exist (a metric filter) takes its
	// name from here, which makes it wait for the creation.
	Created map[string]pulumi.StringInput
}

// NewLogGroups creates the groups.
func NewLogGroups(ctx *pulumi.Context, name string, args *LogGroupsArgs, opts ...pulumi.ResourceOption) (*LogGroups, error) {
	if !RetentionDaysValid(args.RetentionDays) {
		return nil, fmt.Errorf("log groups %s: retention of %d days is not one CloudWatch Logs accepts", name, args.RetentionDays)
	}
	var errs []error
	names := map[string]string{}
	for _, g := range args.Groups {
		errs = append(errs, telemetry.ValidateLogGroupName(g.Name))
		if _, dup := names[g.Key]; dup || g.Key == "" {
			errs = append(errs, fmt.Errorf("log group key %q empty or twice", g.Key))
		}
		names[g.Key] = g.Name
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("log groups %s: %w", name, err)
	}
	l := &LogGroups{Names: names, Created: map[string]pulumi.StringInput{}}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:observability:LogGroups", name, l, opts...); err != nil {
		return nil, err
	}
	for _, g := range args.Groups {
		lg := &cloudwatch.LogGroupArgs{Name: pulumi.String(g.Name), RetentionInDays: pulumi.Int(args.RetentionDays)}
		if args.KMSKeyARN != "" {
			lg.KmsKeyId = pulumi.String(args.KMSKeyARN)
		}
		created, err := cloudwatch.NewLogGroup(ctx, name+"-"+g.Key, lg, pulumi.Parent(l))
		if err != nil {
			return nil, fmt.Errorf("log groups %s: %s: %w", name, g.Name, err)
		}
		l.Created[g.Key] = created.Name
	}
	if err := ctx.RegisterResourceOutputs(l, pulumi.Map{}); err != nil {
		return nil, err
	}
	return l, nil
}
