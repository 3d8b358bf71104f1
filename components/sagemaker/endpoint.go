// Package sagemaker is the SageMaker alternative: a real-time inference
// endpoint with one model container (the AWS LMI container or your own
// image), its execution role, and Application Auto Scaling on invocations.
package sagemaker

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/appautoscaling"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	awssm "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sagemaker"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// endpointNamePattern is SageMaker's EndpointName grammar.
var endpointNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

// EndpointName makes an endpoint name from a stack's: letters, digits and
// single hyphens, at most 63 characters.
func EndpointName(prefix, stack string) string {
	var b strings.Builder
	for _, r := range prefix + "-" + stack {
		if r < 128 && (r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	out := strings.Trim(regexp.MustCompile(`-+`).ReplaceAllString(b.String(), "-"), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// VariantName is the endpoint's only production variant.
const VariantName = "AllTraffic"

// Args configures an Endpoint.
type Args struct {
	Region region.Info
	// EndpointName names the endpoint, so that its log group
	// (/aws/sagemaker/Endpoints/<name>) can be made, with a retention,
	// before SageMaker writes to it. "" lets Pulumi name it.
	EndpointName string
	// InstanceType is a SageMaker hosting type (ml.g5.12xlarge).
	InstanceType string
	// Image is the container image; Environment configures it.
	Image       string
	Environment map[string]string

	// The weights are mounted uncompressed from WeightsBucket/WeightsPrefix
	// at /opt/ml/model.
	WeightsBucket pulumi.StringInput
	WeightsPrefix string

	VpcID     pulumi.StringInput
	SubnetIDs pulumi.StringArrayInput
	// NetworkIsolation cuts the container off from any network: SageMaker
	// itself fetches the image and the weights.
	NetworkIsolation bool

	// StartupTimeoutSeconds and DownloadTimeoutSeconds bound the container's
	// first health check and the weights download (60..3600).
	StartupTimeoutSeconds  int
	DownloadTimeoutSeconds int
	// VolumeSizeGiB is the ML storage volume; 0 for instance types with
	// local NVMe storage, where SageMaker does not accept one.
	VolumeSizeGiB int
	// InferenceAMIVersion is the hosts' AMI, which decides the NVIDIA
	// driver (ProductionVariant InferenceAmiVersion); "" leaves SageMaker's.
	InferenceAMIVersion string
	// KMSKeyARN is the customer managed key of the weights bucket, which the
	// role may use, and encrypts the ML storage volume where there is one.
	// Local NVMe instance storage is encrypted by the hardware and SageMaker
	// takes no key for it.
	KMSKeyARN string

	// MinInstances, MaxInstances and TargetInvocationsPerInstance drive
	// target-tracking autoscaling on SageMakerVariantInvocationsPerInstance
	// (invocations per minute per instance). With MaxInstances equal to
	// MinInstances no scalable target is registered: it could not scale,
	// and SageMaker refuses an instance type change of a registered variant.
	MinInstances                 int
	MaxInstances                 int
	TargetInvocationsPerInstance int

	// DependsOn is what the model needs in S3 besides the weights (the
	// guardrail policy beside them), so that SageMaker copies it.
	DependsOn []pulumi.Resource
}

// Endpoint is the component.
type Endpoint struct {
	pulumi.ResourceState

	EndpointName pulumi.StringOutput `pulumi:"endpointName"`
	EndpointARN  pulumi.StringOutput `pulumi:"endpointArn"`
	RoleARN      pulumi.StringOutput `pulumi:"roleArn"`
}

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	var errs []error
	if a.EndpointName != "" && !endpointNamePattern.MatchString(a.EndpointName) {
		errs = append(errs, fmt.Errorf("endpoint name %q is not 1-63 letters, digits and inner hyphens", a.EndpointName))
	}
	if !strings.HasPrefix(a.InstanceType, "ml.") {
		errs = append(errs, fmt.Errorf("instance type %q is not a SageMaker hosting type (ml.*)", a.InstanceType))
	}
	if a.Image == "" {
		errs = append(errs, errors.New("the container image is empty"))
	}
	if a.WeightsBucket == nil || a.VpcID == nil || a.SubnetIDs == nil {
		errs = append(errs, errors.New("weights bucket, VPC and subnets are required"))
	}
	if !strings.HasSuffix(a.WeightsPrefix, "/") {
		errs = append(errs, fmt.Errorf("weights prefix %q must end in \"/\" for uncompressed model data", a.WeightsPrefix))
	}
	for _, t := range []int{a.StartupTimeoutSeconds, a.DownloadTimeoutSeconds} {
		if t < 60 || t > 3600 {
			errs = append(errs, fmt.Errorf("timeout %d s is outside SageMaker's 60..3600", t))
		}
	}
	if a.MinInstances < 1 || a.MaxInstances < a.MinInstances {
		errs = append(errs, fmt.Errorf("instances must satisfy 1 <= min (%d) <= max (%d)", a.MinInstances, a.MaxInstances))
	}
	if a.TargetInvocationsPerInstance < 1 {
		errs = append(errs, fmt.Errorf("target invocations per instance %d must be at least 1", a.TargetInvocationsPerInstance))
	}
	return errors.Join(errs...)
}

// New creates the endpoint.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Endpoint, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: %w", name, err)
	}
	e := &Endpoint{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:sagemaker:Endpoint", name, e, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(e)

	role, err := iam.NewRole(ctx, name, &iam.RoleArgs{
		Description:      pulumi.String("SageMaker endpoint: read its weights, pull its image, write its logs, use its VPC"),
		AssumeRolePolicy: pulumi.String(iamdoc.AssumeRole(args.Region.ServicePrincipals("sagemaker")).JSON()),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: role: %w", name, err)
	}

	sg, err := ec2.NewSecurityGroup(ctx, name, &ec2.SecurityGroupArgs{
		VpcId: args.VpcID,
		// Invocations arrive through the SageMaker runtime API, never on
		// these interfaces: no ingress at all.
		Description: pulumi.String("SageMaker endpoint interfaces: no ingress; HTTPS out to S3 and ECR"),
		Egress: ec2.SecurityGroupEgressArray{ec2.SecurityGroupEgressArgs{
			Description: pulumi.String("HTTPS"), Protocol: pulumi.String("tcp"),
			FromPort: pulumi.Int(443), ToPort: pulumi.Int(443), CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")},
		}},
		Tags: pulumi.StringMap{"Name": pulumi.String(name)},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: security group: %w", name, err)
	}

	policy := pulumi.All(args.WeightsBucket, args.SubnetIDs, sg.ID()).ApplyT(func(v []any) string {
		return ExecutionPolicy(args, v[0].(string), v[1].([]string), string(v[2].(pulumi.ID))).JSON()
	}).(pulumi.StringOutput)
	rolePolicy, err := iam.NewRolePolicy(ctx, name, &iam.RolePolicyArgs{Role: role.ID(), Policy: policy}, parent)
	if err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: execution policy: %w", name, err)
	}

	env := pulumi.StringMap{}
	for k, v := range args.Environment {
		env[k] = pulumi.String(v)
	}
	model, err := awssm.NewModel(ctx, name, &awssm.ModelArgs{
		ExecutionRoleArn:       role.Arn,
		EnableNetworkIsolation: pulumi.Bool(args.NetworkIsolation),
		PrimaryContainer: awssm.ModelPrimaryContainerArgs{
			Image:       pulumi.String(args.Image),
			Mode:        pulumi.String("SingleModel"),
			Environment: env,
			ModelDataSource: awssm.ModelPrimaryContainerModelDataSourceArgs{
				S3DataSources: awssm.ModelPrimaryContainerModelDataSourceS3DataSourceArray{
					awssm.ModelPrimaryContainerModelDataSourceS3DataSourceArgs{
						S3Uri:           pulumi.Sprintf("s3://%s/%s", args.WeightsBucket, args.WeightsPrefix),
						S3DataType:      pulumi.String("S3Prefix"),
						CompressionType: pulumi.String("None"),
					},
				},
			},
		},
		VpcConfig: awssm.ModelVpcConfigArgs{
			Subnets:          args.SubnetIDs,
			SecurityGroupIds: pulumi.StringArray{sg.ID()},
		},
	}, parent, pulumi.DependsOn(append([]pulumi.Resource{rolePolicy}, args.DependsOn...)))
	if err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: model: %w", name, err)
	}

	variant := awssm.EndpointConfigurationProductionVariantArgs{
		VariantName:          pulumi.String(VariantName),
		ModelName:            model.Name,
		InstanceType:         pulumi.String(args.InstanceType),
		InitialInstanceCount: pulumi.Int(args.MinInstances),
		ContainerStartupHealthCheckTimeoutInSeconds: pulumi.Int(args.StartupTimeoutSeconds),
		ModelDataDownloadTimeoutInSeconds:           pulumi.Int(args.DownloadTimeoutSeconds),
	}
	if args.InferenceAMIVersion != "" {
		variant.InferenceAmiVersion = pulumi.String(args.InferenceAMIVersion)
	}
	configArgs := &awssm.EndpointConfigurationArgs{
		ProductionVariants: awssm.EndpointConfigurationProductionVariantArray{variant},
	}
	if args.VolumeSizeGiB > 0 {
		variant.VolumeSizeInGb = pulumi.Int(args.VolumeSizeGiB)
		configArgs.ProductionVariants = awssm.EndpointConfigurationProductionVariantArray{variant}
		if args.KMSKeyARN != "" {
			configArgs.KmsKeyArn = pulumi.String(args.KMSKeyARN)
		}
	}
	// Endpoint configurations are immutable: a change creates a new one,
	// moves the endpoint to it, then deletes the old.
	endpointConfig, err := awssm.NewEndpointConfiguration(ctx, name, configArgs, parent)
	if err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: endpoint configuration: %w", name, err)
	}
	epArgs := &awssm.EndpointArgs{EndpointConfigName: endpointConfig.Name}
	if args.EndpointName != "" {
		epArgs.Name = pulumi.String(args.EndpointName)
	}
	endpoint, err := awssm.NewEndpoint(ctx, name, epArgs, parent)
	if err != nil {
		return nil, fmt.Errorf("sagemaker endpoint %s: endpoint: %w", name, err)
	}

	if args.MaxInstances > args.MinInstances {
		if err := autoscaling(ctx, name, args, endpoint, parent); err != nil {
			return nil, fmt.Errorf("sagemaker endpoint %s: %w", name, err)
		}
	}

	e.EndpointName = endpoint.Name
	e.EndpointARN = endpoint.Arn
	e.RoleARN = role.Arn
	if err := ctx.RegisterResourceOutputs(e, pulumi.Map{
		"endpointName": e.EndpointName,
		"endpointArn":  e.EndpointARN,
		"roleArn":      e.RoleARN,
	}); err != nil {
		return nil, err
	}
	return e, nil
}

// autoscaling registers the variant with Application Auto Scaling and
// tracks invocations per instance.
func autoscaling(ctx *pulumi.Context, name string, args *Args, endpoint *awssm.Endpoint, parent pulumi.ResourceOption) error {
	target, err := appautoscaling.NewTarget(ctx, name, &appautoscaling.TargetArgs{
		ServiceNamespace:  pulumi.String("sagemaker"),
		ScalableDimension: pulumi.String("sagemaker:variant:DesiredInstanceCount"),
		ResourceId:        pulumi.Sprintf("endpoint/%s/variant/%s", endpoint.Name, VariantName),
		MinCapacity:       pulumi.Int(args.MinInstances),
		MaxCapacity:       pulumi.Int(args.MaxInstances),
	}, parent)
	if err != nil {
		return fmt.Errorf("scaling target: %w", err)
	}
	if _, err := appautoscaling.NewPolicy(ctx, name, &appautoscaling.PolicyArgs{
		PolicyType:        pulumi.String("TargetTrackingScaling"),
		ServiceNamespace:  target.ServiceNamespace,
		ScalableDimension: target.ScalableDimension,
		ResourceId:        target.ResourceId,
		TargetTrackingScalingPolicyConfiguration: appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs{
			TargetValue: pulumi.Float64(float64(args.TargetInvocationsPerInstance)),
			PredefinedMetricSpecification: appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs{
				PredefinedMetricType: pulumi.String("SageMakerVariantInvocationsPerInstance"),
			},
			// A new GPU instance needs minutes to download and load the
			// weights: scale out early, scale in slowly.
			ScaleOutCooldown: pulumi.Int(300),
			ScaleInCooldown:  pulumi.Int(900),
		},
	}, parent); err != nil {
		return fmt.Errorf("scaling policy: %w", err)
	}
	return nil
}

// ExecutionPolicy is the execution role's only policy: read the weights
// prefix, pull the image from its ECR repository, write the endpoint's logs
// and metrics, and manage its network interfaces in the given subnets with
// the given security group. No AmazonSageMakerFullAccess.
func ExecutionPolicy(args *Args, bucket string, subnets []string, securityGroup string) iamdoc.Document {
	r := args.Region
	st := weights.ReadStatements(r, bucket, args.WeightsPrefix)
	if repo, ok := r.ECRRepositoryARN(args.Image); ok {
		st = append(st,
			// GetAuthorizationToken is account-wide: it has no resource.
			iamdoc.Allow("EcrLogin", []string{"ecr:GetAuthorizationToken"}, []string{"*"}),
			iamdoc.Allow("PullImage", []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
				"ecr:BatchCheckLayerAvailability"}, []string{repo}),
		)
	}
	logs := iamdoc.Allow("EndpointLogs", []string{"logs:CreateLogGroup", "logs:CreateLogStream",
		"logs:PutLogEvents", "logs:DescribeLogStreams"},
		[]string{r.ARN("logs", r.Name, "*", "log-group:/aws/sagemaker/Endpoints/*")})
	metrics := iamdoc.Allow("EndpointMetrics", []string{"cloudwatch:PutMetricData"}, []string{"*"})
	metrics.Condition = map[string]map[string]any{"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}

	// Describe calls take no resource; creating interfaces is limited to the
	// endpoint's subnets and security group.
	eniResources := []string{r.ARN("ec2", r.Name, "*", "network-interface/*"),
		r.ARN("ec2", r.Name, "*", "security-group/"+securityGroup)}
	for _, s := range subnets {
		eniResources = append(eniResources, r.ARN("ec2", r.Name, "*", "subnet/"+s))
	}
	st = append(st, logs, metrics,
		// The VPC-hosting guide's list (awsdocs amazon-sagemaker-developer-guide
		// host-vpc.md), DescribeVpcEndpoints included.
		iamdoc.Allow("DescribeNetwork", []string{"ec2:DescribeVpcEndpoints", "ec2:DescribeDhcpOptions",
			"ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"},
			[]string{"*"}),
		iamdoc.Allow("EndpointInterfaces", []string{"ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
			"ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"}, eniResources),
	)
	if args.KMSKeyARN != "" {
		st = append(st, iamdoc.Allow("UseDataKey", []string{"kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"},
			[]string{args.KMSKeyARN}))
	}
	return iamdoc.New(st...)
}
