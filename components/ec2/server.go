// Package ec2 is the EC2 alternative: one GPU instance on a Deep Learning AMI
// in a private subnet, running vLLM's OpenAI-compatible server under systemd.
// It has no SSH key and no port 22: operators use SSM Session Manager.
package ec2

import (
	"errors"
	"fmt"

	awsec2 "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/apikey"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// Args configures a Server.
type Args struct {
	Region       region.Info
	InstanceType string
	// AMIID is the AMI to launch.
	AMIID string
	// KeepAMI makes the instance ignore later changes of AMIID. Set it when
	// the AMI comes from a "latest" parameter: an AMI release should not
	// replace a serving instance unless its operator pins the new one.
	KeepAMI bool

	VpcID    pulumi.StringInput
	SubnetID pulumi.StringInput
	// AllowedCIDRs may call APIPort; nothing else gets in. APIPort is
	// vLLM's port, or the guardrail gateway's when it fronts vLLM.
	AllowedCIDRs pulumi.StringArrayInput
	APIPort      int

	RootVolumeGiB int
	// KMSKeyARN encrypts the root volume (and is what the weights bucket and
	// API key use); "" uses the AWS managed keys.
	KMSKeyARN string

	// Boot is the boot script without the two values only known at deploy
	// time, which the component fills in: the weights location and the API
	// key's secret ARN.
	Boot vllm.Boot
	// Weights are read from WeightsBucket under WeightsPrefix, unless Boot
	// downloads from ModelScope.
	WeightsBucket   pulumi.StringInput
	WeightsPrefix   string
	APIKeySecretARN pulumi.StringInput
	// Guardrail adds the guardrail gateway in front of vLLM, fetched from
	// WeightsBucket (package guardrail uploads it); DependsOn holds the
	// uploads, so the instance starts after them.
	Guardrail *vllm.Guardrail
	DependsOn []pulumi.Resource
}

// Server is the component.
type Server struct {
	pulumi.ResourceState

	InstanceID      pulumi.StringOutput `pulumi:"instanceId"`
	PrivateIP       pulumi.StringOutput `pulumi:"privateIp"`
	EndpointURL     pulumi.StringOutput `pulumi:"endpointUrl"`
	SecurityGroupID pulumi.StringOutput `pulumi:"securityGroupId"`
	RoleARN         pulumi.StringOutput `pulumi:"roleArn"`
}

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	var errs []error
	if a.AMIID == "" {
		errs = append(errs, errors.New("the AMI id is empty"))
	}
	if a.RootVolumeGiB < 30 || a.RootVolumeGiB > 16384 {
		errs = append(errs, fmt.Errorf("root volume of %d GiB is outside 30..16384", a.RootVolumeGiB))
	}
	if a.APIPort < 1024 || a.APIPort > 65535 {
		errs = append(errs, fmt.Errorf("API port %d is outside 1024..65535", a.APIPort))
	}
	if a.VpcID == nil || a.SubnetID == nil || a.AllowedCIDRs == nil || a.APIKeySecretARN == nil {
		errs = append(errs, errors.New("VPC, subnet, allowed CIDRs and API key secret are required"))
	}
	if (a.Boot.Weights.ModelScopeID == "" || a.Guardrail != nil) && a.WeightsBucket == nil {
		errs = append(errs, errors.New("a bucket is required for S3 weights and for the guardrail"))
	}
	return errors.Join(errs...)
}

// New creates the server.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Server, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}
	s := &Server{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:ec2:Server", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)

	weightsBucket := args.WeightsBucket
	if weightsBucket == nil {
		weightsBucket = pulumi.String("")
	}

	role, err := iam.NewRole(ctx, name, &iam.RoleArgs{
		Description:      pulumi.String("vLLM server instance: SSM access, its weights and its API key"),
		AssumeRolePolicy: pulumi.String(iamdoc.AssumeRole(args.Region.ServicePrincipals("ec2")).JSON()),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: role: %w", name, err)
	}
	if _, err := iam.NewRolePolicyAttachment(ctx, name+"-ssm", &iam.RolePolicyAttachmentArgs{
		Role:      role.Name,
		PolicyArn: pulumi.String(args.Region.ManagedPolicyARN("AmazonSSMManagedInstanceCore")),
	}, parent); err != nil {
		return nil, fmt.Errorf("ec2 server %s: SSM policy: %w", name, err)
	}
	policy := pulumi.All(weightsBucket, args.APIKeySecretARN).ApplyT(func(v []any) string {
		return InstancePolicy(args, v[0].(string), v[1].(string)).JSON()
	}).(pulumi.StringOutput)
	if _, err := iam.NewRolePolicy(ctx, name, &iam.RolePolicyArgs{
		Role:   role.ID(),
		Policy: policy,
	}, parent); err != nil {
		return nil, fmt.Errorf("ec2 server %s: inline policy: %w", name, err)
	}
	profile, err := iam.NewInstanceProfile(ctx, name, &iam.InstanceProfileArgs{Role: role.Name}, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: instance profile: %w", name, err)
	}

	port := args.APIPort
	sg, err := awsec2.NewSecurityGroup(ctx, name, &awsec2.SecurityGroupArgs{
		VpcId:       args.VpcID,
		Description: pulumi.String(fmt.Sprintf("OpenAI-compatible API on port %d from allowed CIDRs only; no SSH", port)),
		Ingress: awsec2.SecurityGroupIngressArray{awsec2.SecurityGroupIngressArgs{
			Description: pulumi.String("OpenAI-compatible API"),
			Protocol:    pulumi.String("tcp"),
			FromPort:    pulumi.Int(port),
			ToPort:      pulumi.Int(port),
			CidrBlocks:  args.AllowedCIDRs,
		}},
		// HTTPS for AWS APIs, the pip mirror, ECR and ModelScope; HTTP for
		// the distribution's package mirror.
		Egress: awsec2.SecurityGroupEgressArray{
			awsec2.SecurityGroupEgressArgs{Description: pulumi.String("HTTPS"), Protocol: pulumi.String("tcp"),
				FromPort: pulumi.Int(443), ToPort: pulumi.Int(443), CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")}},
			awsec2.SecurityGroupEgressArgs{Description: pulumi.String("HTTP package mirrors"), Protocol: pulumi.String("tcp"),
				FromPort: pulumi.Int(80), ToPort: pulumi.Int(80), CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")}},
		},
		Tags: pulumi.StringMap{"Name": pulumi.String(name)},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: security group: %w", name, err)
	}

	instanceOpts := []pulumi.ResourceOption{parent, pulumi.DependsOn(args.DependsOn)}
	if args.KeepAMI {
		instanceOpts = append(instanceOpts, pulumi.IgnoreChanges([]string{"ami"}))
	}

	userData := pulumi.All(weightsBucket, args.APIKeySecretARN).ApplyT(func(v []any) (string, error) {
		b := args.Boot
		if b.Weights.ModelScopeID == "" {
			b.Weights.S3URI = fmt.Sprintf("s3://%s/%s", v[0].(string), args.WeightsPrefix)
		}
		b.APIKeySecretARN = v[1].(string)
		if args.Guardrail != nil {
			g := *args.Guardrail
			g.BinaryS3URI = "s3://" + v[0].(string) + "/" + guardrail.Prefix + guardrail.BinaryKey
			g.PolicyS3URI = "s3://" + v[0].(string) + "/" + guardrail.Prefix + guardrail.PolicyKey
			b.Guardrail = &g
		}
		return b.Render()
	}).(pulumi.StringOutput)

	root := awsec2.InstanceRootBlockDeviceArgs{
		VolumeType:          pulumi.String("gp3"),
		VolumeSize:          pulumi.Int(args.RootVolumeGiB),
		Encrypted:           pulumi.Bool(true),
		DeleteOnTermination: pulumi.Bool(true),
	}
	if args.KMSKeyARN != "" {
		root.KmsKeyId = pulumi.String(args.KMSKeyARN)
	}
	inst, err := awsec2.NewInstance(ctx, name, &awsec2.InstanceArgs{
		Ami:                      pulumi.String(args.AMIID),
		InstanceType:             pulumi.String(args.InstanceType),
		SubnetId:                 args.SubnetID,
		VpcSecurityGroupIds:      pulumi.StringArray{sg.ID()},
		IamInstanceProfile:       profile.Name,
		AssociatePublicIpAddress: pulumi.Bool(false),
		MetadataOptions: awsec2.InstanceMetadataOptionsArgs{
			HttpEndpoint:            pulumi.String("enabled"),
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		RootBlockDevice:         root,
		UserData:                userData,
		UserDataReplaceOnChange: pulumi.Bool(true),
		Monitoring:              pulumi.Bool(true),
		Tags:                    pulumi.StringMap{"Name": pulumi.String(name)},
	}, instanceOpts...)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: instance: %w", name, err)
	}

	s.InstanceID = inst.ID().ToStringOutput()
	s.PrivateIP = inst.PrivateIp
	s.EndpointURL = pulumi.Sprintf("http://%s:%d/v1", inst.PrivateIp, port)
	s.SecurityGroupID = sg.ID().ToStringOutput()
	s.RoleARN = role.Arn
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"instanceId":      s.InstanceID,
		"privateIp":       s.PrivateIP,
		"endpointUrl":     s.EndpointURL,
		"securityGroupId": s.SecurityGroupID,
		"roleArn":         s.RoleARN,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// InstancePolicy is the instance role's inline policy: read the weights
// prefix, read the API key, pull the vLLM image when one is used, and use the
// customer managed key when one is set. Session Manager comes from the
// AmazonSSMManagedInstanceCore managed policy.
func InstancePolicy(args *Args, bucket, secretARN string) iamdoc.Document {
	r := args.Region
	var st []iamdoc.Statement
	if args.Boot.Weights.ModelScopeID == "" {
		st = append(st, weights.ReadStatements(r, bucket, args.WeightsPrefix)...)
	}
	st = append(st, apikey.ReadStatement(secretARN))
	if args.Guardrail != nil {
		st = append(st, guardrail.ReadStatement(r, bucket))
	}
	if repo, ok := r.ECRRepositoryARN(args.Boot.Install.Image); ok {
		st = append(st,
			// GetAuthorizationToken is account-wide: it has no resource.
			iamdoc.Allow("EcrLogin", []string{"ecr:GetAuthorizationToken"}, []string{"*"}),
			iamdoc.Allow("PullVllmImage", []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
				"ecr:BatchCheckLayerAvailability"}, []string{repo}),
		)
	}
	if args.KMSKeyARN != "" {
		st = append(st, iamdoc.Allow("UseDataKey", []string{"kms:Decrypt", "kms:GenerateDataKey"},
			[]string{args.KMSKeyARN}))
	}
	return iamdoc.New(st...)
}
