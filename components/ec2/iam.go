package ec2

import (
	"fmt"

	awsec2 "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/apikey"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// instanceRole is the instance profile every launch template uses: Session
// Manager through the managed policy, and an inline policy for the weights,
// the API key, the guardrail's artifacts and the vLLM image.
func instanceRole(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) (*iam.InstanceProfile, *iam.Role, error) {
	role, err := iam.NewRole(ctx, name, &iam.RoleArgs{
		Description:      pulumi.String("vLLM server instances: SSM access, their weights and their API key"),
		AssumeRolePolicy: pulumi.String(iamdoc.AssumeRole(args.Region.ServicePrincipals("ec2")).JSON()),
	}, parent)
	if err != nil {
		return nil, nil, fmt.Errorf("role: %w", err)
	}
	if _, err := iam.NewRolePolicyAttachment(ctx, name+"-ssm", &iam.RolePolicyAttachmentArgs{
		Role:      role.Name,
		PolicyArn: pulumi.String(args.Region.ManagedPolicyARN("AmazonSSMManagedInstanceCore")),
	}, parent); err != nil {
		return nil, nil, fmt.Errorf("SSM policy: %w", err)
	}
	policy := pulumi.All(args.WeightsBucket, args.APIKeySecretARN).ApplyT(func(v []any) string {
		return InstancePolicy(args, v[0].(string), v[1].(string)).JSON()
	}).(pulumi.StringOutput)
	if _, err := iam.NewRolePolicy(ctx, name, &iam.RolePolicyArgs{Role: role.ID(), Policy: policy}, parent); err != nil {
		return nil, nil, fmt.Errorf("inline policy: %w", err)
	}
	profile, err := iam.NewInstanceProfile(ctx, name, &iam.InstanceProfileArgs{Role: role.Name}, parent)
	if err != nil {
		return nil, nil, fmt.Errorf("instance profile: %w", err)
	}
	return profile, role, nil
}

// InstancePolicy is the instance role's inline policy: read the weights
// prefix, read the API key, pull the vLLM image when one is used, and use the
// customer managed key when one is set. Session Manager comes from the
// AmazonSSMManagedInstanceCore managed policy.
func InstancePolicy(args *Args, bucket, secretARN string) iamdoc.Document {
	r := args.Region
	boot := args.Types[0].Boot
	var st []iamdoc.Statement
	if boot.Weights.ModelScopeID == "" {
		st = append(st, weights.ReadStatements(r, bucket, args.WeightsPrefix)...)
	}
	st = append(st, apikey.ReadStatement(secretARN))
	if args.Guardrail != nil {
		st = append(st, guardrail.ReadStatement(r, bucket))
	}
	if repo, ok := r.ECRRepositoryARN(boot.Install.Image); ok {
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
	st = append(st, args.ExtraStatements...)
	return iamdoc.New(st...)
}

// securityGroup opens the API port to the allowed networks (clients reach
// the instance through the load balancer, which keeps their address) and to
// the VPC (the load balancer's health checks come from its private
// addresses); nothing else, and never SSH. One rule holds both, each CIDR
// once: EC2 refuses a permission that appears twice in a request ("The same
// permission must not appear multiple times"), which two rules would send
// whenever allowedCidrs holds the VPC's CIDR, as it does by default.
func securityGroup(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) (*awsec2.SecurityGroup, error) {
	port := args.APIPort
	cidrs := pulumi.All(args.AllowedCIDRs, args.VpcCIDR).ApplyT(func(v []any) []string {
		return uniqueCIDRs(append(append([]string(nil), v[0].([]string)...), v[1].(string)))
	}).(pulumi.StringArrayOutput)
	sg, err := awsec2.NewSecurityGroup(ctx, name, &awsec2.SecurityGroupArgs{
		VpcId:       args.VpcID,
		Description: pulumi.String(fmt.Sprintf("OpenAI-compatible API on port %d from allowed CIDRs and the load balancer only; no SSH", port)),
		Ingress: awsec2.SecurityGroupIngressArray{
			awsec2.SecurityGroupIngressArgs{
				Description: pulumi.String("OpenAI-compatible API through the load balancer, and its health checks from the VPC"),
				Protocol:    pulumi.String("tcp"), FromPort: pulumi.Int(port), ToPort: pulumi.Int(port),
				CidrBlocks: cidrs,
			},
		},
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
		return nil, fmt.Errorf("security group: %w", err)
	}
	return sg, nil
}

// uniqueCIDRs keeps the first of each CIDR, in order.
func uniqueCIDRs(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range in {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}
