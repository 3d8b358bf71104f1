package ec2

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/autoscaling"
	awsec2 "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// launchTemplates makes one launch template per instance type, each with
// the boot script sized for that type.
func launchTemplates(ctx *pulumi.Context, name string, args *Args, profile *iam.InstanceProfile,
	sg *awsec2.SecurityGroup, parent pulumi.ResourceOption,
) ([]*awsec2.LaunchTemplate, error) {
	opts := []pulumi.ResourceOption{parent, pulumi.DependsOn(args.DependsOn)}
	if args.KeepAMI {
		opts = append(opts, pulumi.IgnoreChanges([]string{"imageId"}))
	}
	ebs := awsec2.LaunchTemplateBlockDeviceMappingEbsArgs{
		VolumeType:          pulumi.String("gp3"),
		VolumeSize:          pulumi.Int(args.RootVolumeGiB),
		Encrypted:           pulumi.String("true"),
		DeleteOnTermination: pulumi.String("true"),
	}
	if args.KMSKeyARN != "" {
		ebs.KmsKeyId = pulumi.String(args.KMSKeyARN)
	}
	var out []*awsec2.LaunchTemplate
	for _, t := range args.Types {
		boot := t.Boot
		userData := pulumi.All(args.WeightsBucket, args.APIKeySecretARN).ApplyT(func(v []any) (string, error) {
			b := boot
			if b.Weights.ModelScopeID == "" {
				b.Weights.S3URI = fmt.Sprintf("s3://%s/%s", v[0].(string), args.WeightsPrefix)
				if b.Guard != nil {
					g := *b.Guard
					g.Weights.S3URI = b.Weights.S3URI + weights.GuardModelDir
					b.Guard = &g
				}
			}
			b.APIKeySecretARN = v[1].(string)
			if args.Guardrail != nil {
				g := *args.Guardrail
				g.BinaryS3URI = "s3://" + v[0].(string) + "/" + guardrail.Prefix + guardrail.BinaryKey
				g.PolicyS3URI = "s3://" + v[0].(string) + "/" + guardrail.Prefix + guardrail.PolicyKey
				b.Guardrail = &g
			}
			// gzip-compressed (cloud-init unpacks it), then base64 as
			// launch templates take user data.
			ud, err := b.UserData()
			if err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString(ud), nil
		}).(pulumi.StringOutput)
		tags := pulumi.StringMap{"Name": pulumi.String(name), "deepseek-r1-cn:instance-type": pulumi.String(t.InstanceType)}
		lt, err := awsec2.NewLaunchTemplate(ctx, name+"-"+t.InstanceType, &awsec2.LaunchTemplateArgs{
			Description:          pulumi.String("vLLM server on " + t.InstanceType + " (deepseek-r1-cn)"),
			ImageId:              pulumi.String(args.AMIID),
			InstanceType:         pulumi.String(t.InstanceType),
			UpdateDefaultVersion: pulumi.Bool(true),
			IamInstanceProfile:   awsec2.LaunchTemplateIamInstanceProfileArgs{Arn: profile.Arn},
			// The subnets come from the group; no public address even in a
			// subnet that would give one.
			NetworkInterfaces: awsec2.LaunchTemplateNetworkInterfaceArray{awsec2.LaunchTemplateNetworkInterfaceArgs{
				DeviceIndex:              pulumi.Int(0),
				AssociatePublicIpAddress: pulumi.String("false"),
				DeleteOnTermination:      pulumi.String("true"),
				SecurityGroups:           pulumi.StringArray{sg.ID()},
			}},
			MetadataOptions: awsec2.LaunchTemplateMetadataOptionsArgs{
				HttpEndpoint:            pulumi.String("enabled"),
				HttpTokens:              pulumi.String("required"),
				HttpPutResponseHopLimit: pulumi.Int(1),
			},
			BlockDeviceMappings: awsec2.LaunchTemplateBlockDeviceMappingArray{awsec2.LaunchTemplateBlockDeviceMappingArgs{
				DeviceName: pulumi.String(args.RootDeviceName),
				Ebs:        ebs,
			}},
			Monitoring: awsec2.LaunchTemplateMonitoringArgs{Enabled: pulumi.Bool(true)},
			UserData:   userData,
			TagSpecifications: awsec2.LaunchTemplateTagSpecificationArray{
				awsec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("instance"), Tags: tags},
				awsec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("volume"), Tags: tags},
			},
			Tags: pulumi.StringMap{"Name": pulumi.String(name + "-" + t.InstanceType)},
		}, opts...)
		if err != nil {
			return nil, fmt.Errorf("launch template for %s: %w", t.InstanceType, err)
		}
		out = append(out, lt)
	}
	return out, nil
}

// autoScalingGroup runs one server across the subnets' zones. Launches try
// the instance types in order ("prioritized": when the first type's capacity
// cannot be had, the group launches the next; awsdocs Amazon EC2 Auto
// Scaling API_InstancesDistribution, OnDemandAllocationStrategy), in any of
// the zones. The load balancer's health check decides whether the server is
// healthy once the grace period is over, so a server that stops answering is
// replaced. A new launch template version starts an instance refresh that
// launches the new server first and terminates the old one only when the new
// one is healthy (MinHealthyPercentage 100, MaxHealthyPercentage 200), so
// that an update never leaves the API without a server; MaxSize 2 leaves
// room for it. While it waits for capacity the provider ignores failed
// launches (IgnoreFailedScalingActivities), which are the group trying the
// next type or zone, not an error of the deployment.
func autoScalingGroup(ctx *pulumi.Context, name string, args *Args, templates []*awsec2.LaunchTemplate,
	tg *lb.TargetGroup, parent pulumi.ResourceOption,
) (*autoscaling.Group, error) {
	overrides := autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArray{}
	for i, lt := range templates {
		overrides = append(overrides, autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs{
			InstanceType: pulumi.String(args.Types[i].InstanceType),
			LaunchTemplateSpecification: autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideLaunchTemplateSpecificationArgs{
				LaunchTemplateId: lt.ID(),
				Version:          latestVersion(lt),
			},
		})
	}
	grace := args.HealthCheckGraceSeconds
	group, err := autoscaling.NewGroup(ctx, name, &autoscaling.GroupArgs{
		MinSize:            pulumi.Int(1),
		MaxSize:            pulumi.Int(2),
		DesiredCapacity:    pulumi.Int(1),
		VpcZoneIdentifiers: args.SubnetIDs,
		MixedInstancesPolicy: autoscaling.GroupMixedInstancesPolicyArgs{
			InstancesDistribution: autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs{
				OnDemandAllocationStrategy:          pulumi.String("prioritized"),
				OnDemandBaseCapacity:                pulumi.Int(0),
				OnDemandPercentageAboveBaseCapacity: pulumi.Int(100),
			},
			LaunchTemplate: autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs{
				LaunchTemplateSpecification: autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs{
					LaunchTemplateId: templates[0].ID(),
					Version:          latestVersion(templates[0]),
				},
				Overrides: overrides,
			},
		},
		TargetGroupArns:        pulumi.StringArray{tg.Arn},
		HealthCheckType:        pulumi.String("ELB"),
		HealthCheckGracePeriod: pulumi.Int(grace),
		InstanceRefresh: autoscaling.GroupInstanceRefreshArgs{
			Strategy: pulumi.String("Rolling"),
			Preferences: autoscaling.GroupInstanceRefreshPreferencesArgs{
				MinHealthyPercentage: pulumi.Int(100),
				MaxHealthyPercentage: pulumi.Int(200),
				InstanceWarmup:       pulumi.String(strconv.Itoa(grace)),
			},
		},
		// Group metrics for the dashboard and alarms (in service, pending,
		// terminating), free of charge at one-minute granularity.
		EnabledMetrics: pulumi.ToStringArray([]string{"GroupInServiceInstances", "GroupPendingInstances",
			"GroupTerminatingInstances", "GroupDesiredCapacity"}),
		MetricsGranularity:            pulumi.String("1Minute"),
		WaitForCapacityTimeout:        pulumi.String("30m"),
		IgnoreFailedScalingActivities: pulumi.Bool(true),
		Tags: autoscaling.GroupTagArray{autoscaling.GroupTagArgs{
			Key: pulumi.String("Name"), Value: pulumi.String(name), PropagateAtLaunch: pulumi.Bool(true),
		}},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("auto scaling group: %w", err)
	}
	return group, nil
}

// latestVersion pins the group to the template's newest version, so that a
// change of template is a change of the group, which starts the refresh.
func latestVersion(lt *awsec2.LaunchTemplate) pulumi.StringOutput {
	return lt.LatestVersion.ApplyT(func(v int) string { return strconv.Itoa(v) }).(pulumi.StringOutput)
}
