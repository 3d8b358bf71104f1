package stacks

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// eksTelemetry is what the EKS target's logs and metrics need from AWS
// before anything is registered.
type eksTelemetry struct {
	// Addon is set when the CloudWatch Observability add-on runs.
	Addon *eks.ObservabilityAddon
	// AddonDefault is the version EKS installs when none is pinned, as
	// EKS reported it at preview.
	AddonDefault string
	// Account is the account ID, for the sidecar's log group ARN.
	Account string
}

// checkEKSTelemetry asks EKS whether it offers the CloudWatch
// Observability add-on for the cluster's Kubernetes version in this region
// (DescribeAddonVersions, through aws.eks.getAddonVersion): a region
// without it fails here, at preview, naming the key that turns it off,
// rather than at `pulumi up` with half the stack created. The answer is
// EKS's default version for that Kubernetes version; the add-on gets it
// unless deepseek-r1-cn:eksAddonVersions pins one, and a pin is not
// checked against the region's list (the data source returns only the
// default or the newest).
func checkEKSTelemetry(ctx *pulumi.Context, d *Deployment) (*eksTelemetry, error) {
	c := d.Config
	t := &eksTelemetry{}
	if !c.Observability {
		return t, nil
	}
	account, err := accountID(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("the metrics log group's ARN: %w", err)
	}
	t.Account = account
	if !d.EKS.ObservabilityAddon {
		return t, nil
	}
	v, err := awseks.GetAddonVersion(ctx, &awseks.GetAddonVersionArgs{
		AddonName: eks.AddonCloudWatchObservability, KubernetesVersion: c.EKSKubernetesVersion,
	})
	if err != nil {
		return nil, invalid(&ConfigError{Key: key("eksObservabilityAddon"), Value: "true", Msg: fmt.Sprintf(
			"EKS offers no %s add-on for Kubernetes %s in %s (%v): set deepseek-r1-cn:eksObservabilityAddon to false "+
				"to deploy without it (no container logs, no Container Insights or GPU metrics; the vLLM pods' metrics "+
				"sidecar still runs), or set deepseek-r1-cn:observability to false for neither",
			eks.AddonCloudWatchObservability, c.EKSKubernetesVersion, d.Region.Name, err)})
	}
	t.AddonDefault = v.Version
	t.Addon = &eks.ObservabilityAddon{Version: c.EKSAddonVersions[eks.AddonCloudWatchObservability]}
	return t, nil
}

// eksLogGroups creates, before the cluster and the add-on write to them,
// the EKS target's log groups with the stack's retention and key: the
// control plane's (always, when observability is on), the add-on's four
// when it runs, and the metrics sidecar's. A group that EKS or Fluent Bit
// created first (a cluster of the same name before) makes the creation
// fail with ResourceAlreadyExistsException: delete it or `pulumi import`
// it. The key, when set, must let CloudWatch Logs of the region use it
// (its key policy; README).
func eksLogGroups(ctx *pulumi.Context, d *Deployment, clusterName string) (map[string]*cloudwatch.LogGroup, []telemetry.LogGroup, error) {
	c := d.Config
	own, err := telemetry.EKSOwnLogGroups(ctx.Stack())
	if err != nil {
		return nil, nil, err
	}
	var groups []telemetry.LogGroup
	for _, g := range telemetry.EKSLogGroups(clusterName) {
		if d.EKS.ObservabilityAddon || g.Key == telemetry.LogEKSControlPlane {
			groups = append(groups, g)
		}
	}
	groups = append(groups, own...)
	out := map[string]*cloudwatch.LogGroup{}
	for _, g := range groups {
		args := &cloudwatch.LogGroupArgs{Name: pulumi.String(g.Name), RetentionInDays: pulumi.Int(c.LogRetentionDays)}
		if c.KMSKeyARN != "" {
			args.KmsKeyId = pulumi.String(c.KMSKeyARN)
		}
		lg, err := cloudwatch.NewLogGroup(ctx, baseName+"-eks-log-"+g.Key, args)
		if err != nil {
			return nil, nil, fmt.Errorf("log group %s: %w", g.Name, err)
		}
		out[g.Key] = lg
	}
	return out, groups, nil
}

// exportEKSTelemetry exports where the EKS target's logs and metrics go:
// the log groups by key, the metrics' namespace, and the add-on's version.
func exportEKSTelemetry(ctx *pulumi.Context, d *Deployment, t *eksTelemetry, groups []telemetry.LogGroup) {
	if len(groups) == 0 {
		return
	}
	names := map[string]string{}
	for _, g := range groups {
		names[g.Key] = g.Name
	}
	d.export(ctx, "logGroups", pulumi.ToStringMap(names))
	ns, _ := telemetry.Namespace(ctx.Stack()) // EKSOwnLogGroups checked the stack name
	d.export(ctx, "metricsNamespace", pulumi.String(ns))
	if t.Addon != nil {
		version, pinned := t.Addon.Version, true
		if version == "" {
			version, pinned = t.AddonDefault, false
		}
		d.export(ctx, "observabilityAddon", pulumi.Map{
			"name": pulumi.String(eks.AddonCloudWatchObservability), "version": pulumi.String(version), "pinned": pulumi.Bool(pinned),
		})
	}
}
