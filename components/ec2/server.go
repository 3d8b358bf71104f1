// Package ec2 is the EC2 alternative: vLLM on a Deep Learning AMI in an Auto
// Scaling group of one, in private subnets of two or more zones, behind an
// internal Network Load Balancer that gives the API a stable address.
//
// The group heals the server: an instance whose health check fails through
// the load balancer is replaced, and a launch that finds no capacity for the
// first instance type in any zone falls back to the next type (one launch
// template each, with its own sized vLLM arguments). A changed boot script
// is a new launch template version, which an instance refresh rolls out by
// launching the new instance before terminating the old one. There is no SSH
// key and no port 22: operators use SSM Session Manager.
package ec2

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

// LaunchType is one instance type the group may launch, with the boot
// script sized for it (without the values only known at deploy time, which
// the component fills in: the weights location, the API key's secret ARN
// and the guardrail's artifacts).
type LaunchType struct {
	InstanceType string
	Boot         vllm.Boot
}

// Args configures a Server.
type Args struct {
	Region region.Info
	// Types are the instance types in launch priority: the decided one
	// first, then the fallbacks.
	Types []LaunchType
	// AMIID is the AMI to launch; RootDeviceName its root device (from the
	// AMI, so that the root volume is resized rather than added to).
	AMIID          string
	RootDeviceName string
	// KeepAMI makes the launch templates ignore later changes of AMIID. Set
	// it when the AMI comes from a "latest" parameter: an AMI release should
	// not roll the server unless its operator pins the new one.
	KeepAMI bool

	VpcID pulumi.StringInput
	// SubnetIDs are private subnets in at least two zones; the group and
	// the load balancer span them.
	SubnetIDs pulumi.StringArrayInput
	// VpcCIDR may reach the API port for the load balancer's health checks,
	// which come from its private addresses in the subnets.
	VpcCIDR pulumi.StringInput
	// AllowedCIDRs may call APIPort through the load balancer (which keeps
	// the client's address); nothing else gets in. APIPort is vLLM's port,
	// or the guardrail gateway's when it fronts vLLM.
	AllowedCIDRs pulumi.StringArrayInput
	APIPort      int
	// HealthCheckPath is answered by the server on APIPort without an API
	// key, healthy only when vLLM is.
	HealthCheckPath string
	// HealthCheckGraceSeconds is how long a new instance has before a
	// failing health check gets it replaced.
	HealthCheckGraceSeconds int
	// IdleTimeoutSeconds is the load balancer's TCP idle timeout; 0 leaves
	// AWS's 350 s, which cuts a non-streamed answer that reasons longer.
	IdleTimeoutSeconds int

	RootVolumeGiB int
	// KMSKeyARN encrypts the root volume (and is what the weights bucket and
	// API key use); "" uses the AWS managed keys.
	KMSKeyARN string

	// Weights are read from WeightsBucket under WeightsPrefix, unless the
	// boot scripts download from ModelScope.
	WeightsBucket   pulumi.StringInput
	WeightsPrefix   string
	APIKeySecretARN pulumi.StringInput
	// Guardrail adds the guardrail gateway in front of vLLM, fetched from
	// WeightsBucket (package guardrail uploads it); DependsOn holds the
	// uploads, so that no instance starts before them.
	Guardrail *vllm.Guardrail
	DependsOn []pulumi.Resource
	// ExtraStatements join the instance role's inline policy (the
	// CloudWatch agent's, for its log groups and namespace).
	ExtraStatements []iamdoc.Statement
}

// Server is the component.
type Server struct {
	pulumi.ResourceState

	// EndpointURL is the OpenAI base URL on the load balancer, stable across
	// instance replacements.
	EndpointURL          pulumi.StringOutput `pulumi:"endpointUrl"`
	LoadBalancerDNSName  pulumi.StringOutput `pulumi:"loadBalancerDnsName"`
	AutoScalingGroupName pulumi.StringOutput `pulumi:"autoScalingGroupName"`
	TargetGroupARN       pulumi.StringOutput `pulumi:"targetGroupArn"`
	// The ARN suffixes are the load balancer metrics' dimension values.
	TargetGroupARNSuffix  pulumi.StringOutput `pulumi:"targetGroupArnSuffix"`
	LoadBalancerARNSuffix pulumi.StringOutput `pulumi:"loadBalancerArnSuffix"`
	LoadBalancerARN       pulumi.StringOutput `pulumi:"loadBalancerArn"`
	SecurityGroupID       pulumi.StringOutput `pulumi:"securityGroupId"`
	RoleARN               pulumi.StringOutput `pulumi:"roleArn"`
	RoleName              pulumi.StringOutput `pulumi:"roleName"`
}

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	var errs []error
	if len(a.Types) == 0 {
		errs = append(errs, errors.New("at least one instance type is required"))
	}
	seen := map[string]bool{}
	for _, t := range a.Types {
		if t.InstanceType == "" || seen[t.InstanceType] {
			errs = append(errs, fmt.Errorf("instance type %q is empty or listed twice", t.InstanceType))
		}
		seen[t.InstanceType] = true
		if (t.Boot.Weights.ModelScopeID == "") != (a.Types[0].Boot.Weights.ModelScopeID == "") {
			errs = append(errs, errors.New("every instance type must take its weights from the same place"))
		}
	}
	if a.AMIID == "" || a.RootDeviceName == "" {
		errs = append(errs, errors.New("the AMI id and its root device name are required"))
	}
	if a.RootVolumeGiB < 30 || a.RootVolumeGiB > 16384 {
		errs = append(errs, fmt.Errorf("root volume of %d GiB is outside 30..16384", a.RootVolumeGiB))
	}
	if a.APIPort < 1024 || a.APIPort > 65535 {
		errs = append(errs, fmt.Errorf("API port %d is outside 1024..65535", a.APIPort))
	}
	if a.HealthCheckPath == "" || a.HealthCheckPath[0] != '/' {
		errs = append(errs, fmt.Errorf("health check path %q must start with /", a.HealthCheckPath))
	}
	if a.HealthCheckGraceSeconds < 60 {
		errs = append(errs, fmt.Errorf("health check grace of %d s is too short for a GPU server to start", a.HealthCheckGraceSeconds))
	}
	if a.IdleTimeoutSeconds != 0 && (a.IdleTimeoutSeconds < 60 || a.IdleTimeoutSeconds > 6000) {
		errs = append(errs, fmt.Errorf("idle timeout %d s is outside the load balancer's 60..6000", a.IdleTimeoutSeconds))
	}
	if a.VpcID == nil || a.SubnetIDs == nil || a.VpcCIDR == nil || a.AllowedCIDRs == nil || a.APIKeySecretARN == nil {
		errs = append(errs, errors.New("VPC, subnets, VPC CIDR, allowed CIDRs and API key secret are required"))
	}
	if len(a.Types) > 0 && (a.Types[0].Boot.Weights.ModelScopeID == "" || a.Guardrail != nil) && a.WeightsBucket == nil {
		errs = append(errs, errors.New("a bucket is required for S3 weights and for the guardrail"))
	}
	return errors.Join(errs...)
}

// New creates the server: its role, security group, launch templates, load
// balancer and Auto Scaling group.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Server, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}
	s := &Server{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:ec2:Server", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)
	if args.WeightsBucket == nil {
		args.WeightsBucket = pulumi.String("")
	}

	profile, role, err := instanceRole(ctx, name, args, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}
	sg, err := securityGroup(ctx, name, args, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}
	lb, err := newLoadBalancer(ctx, name, args, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}
	templates, err := launchTemplates(ctx, name, args, profile, sg, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}
	group, err := autoScalingGroup(ctx, name, args, templates, lb.targetGroup, parent)
	if err != nil {
		return nil, fmt.Errorf("ec2 server %s: %w", name, err)
	}

	s.EndpointURL = pulumi.Sprintf("http://%s:%d/v1", lb.dnsName, args.APIPort)
	s.LoadBalancerDNSName = lb.dnsName
	s.LoadBalancerARN = lb.arn
	s.TargetGroupARN = lb.targetGroup.Arn
	s.TargetGroupARNSuffix = lb.targetGroup.ArnSuffix
	s.LoadBalancerARNSuffix = lb.arnSuffix
	s.AutoScalingGroupName = group.Name
	s.SecurityGroupID = sg.ID().ToStringOutput()
	s.RoleARN = role.Arn
	s.RoleName = role.Name
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"endpointUrl":          s.EndpointURL,
		"loadBalancerDnsName":  s.LoadBalancerDNSName,
		"loadBalancerArn":      s.LoadBalancerARN,
		"autoScalingGroupName": s.AutoScalingGroupName,
		"targetGroupArn":       s.TargetGroupARN,
		"securityGroupId":      s.SecurityGroupID,
		"roleArn":              s.RoleARN,
		"roleName":             s.RoleName,
	}); err != nil {
		return nil, err
	}
	return s, nil
}
