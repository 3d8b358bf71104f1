// Package eks is the cluster of the EKS alternative: an EKS control plane
// with its own IAM roles, a small CPU node group for cluster add-ons and a
// tainted GPU node group on the AL2023 NVIDIA AMI, plus a Kubernetes
// provider for the workloads (package k8sserving).
package eks

import (
	"errors"
	"fmt"

	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-eks/sdk/v2/go/eks"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// GPUTaint keeps everything but GPU workloads off the GPU nodes; the NVIDIA
// device plugin and vLLM tolerate it.
const GPUTaint = "nvidia.com/gpu"

// NodeRoleLabel tells the system nodes from the GPU nodes.
const NodeRoleLabel = "deepseek-r1-cn/node-role"

// NodeGroup sizes a managed node group.
type NodeGroup struct {
	InstanceType string
	Min          int
	Desired      int
	Max          int
	DiskGiB      int
}

// Args configures a Cluster.
type Args struct {
	Region region.Info
	// Name is the EKS cluster name; set so that it is known at plan time.
	Name              string
	KubernetesVersion string
	VpcID             pulumi.StringInput
	SubnetIDs         pulumi.StringArrayInput
	// PublicAccessCIDRs opens the API endpoint to these networks; empty
	// keeps it private to the VPC.
	PublicAccessCIDRs []string
	// KMSKeyARN encrypts Kubernetes secrets; "" leaves EKS's default.
	KMSKeyARN string
	System    NodeGroup
	GPU       NodeGroup
}

// Cluster is the component.
type Cluster struct {
	pulumi.ResourceState

	ClusterName     pulumi.StringOutput `pulumi:"clusterName"`
	Kubeconfig      pulumi.StringOutput `pulumi:"kubeconfig"`
	OIDCProviderARN pulumi.StringOutput `pulumi:"oidcProviderArn"`
	OIDCProviderURL pulumi.StringOutput `pulumi:"oidcProviderUrl"`
	// Provider deploys into the cluster.
	Provider *kubernetes.Provider
}

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	var errs []error
	if a.Name == "" || a.KubernetesVersion == "" {
		errs = append(errs, errors.New("cluster name and Kubernetes version are required"))
	}
	for _, g := range []NodeGroup{a.System, a.GPU} {
		if g.InstanceType == "" || g.Min < 0 || g.Desired < g.Min || g.Max < g.Desired || g.Max < 1 {
			errs = append(errs, fmt.Errorf("node group %q must have 0 <= min <= desired <= max and max >= 1, got %d/%d/%d",
				g.InstanceType, g.Min, g.Desired, g.Max))
		}
	}
	return errors.Join(errs...)
}

// New creates the cluster.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:eks:Cluster", name, c, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(c)
	r := args.Region

	// Our own roles, never pulumi-eks's defaults: the cluster role trusts
	// eks.amazonaws.com (IAM rejects eks.amazonaws.com.cn), the node role
	// trusts EC2 under both China names.
	clusterRole, err := role(ctx, name+"-cluster", r, "eks", region.EKSClusterPolicies, parent)
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}
	nodeRole, err := role(ctx, name+"-node", r, "ec2", region.EKSNodePolicies, parent)
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}

	clusterArgs := &eks.ClusterArgs{
		Name:                         pulumi.String(args.Name),
		Version:                      pulumi.String(args.KubernetesVersion),
		VpcId:                        args.VpcID,
		PrivateSubnetIds:             args.SubnetIDs,
		NodeAssociatePublicIpAddress: pulumi.BoolRef(false),
		EndpointPrivateAccess:        pulumi.Bool(true),
		EndpointPublicAccess:         pulumi.Bool(len(args.PublicAccessCIDRs) > 0),
		CreateOidcProvider:           pulumi.Bool(true),
		SkipDefaultNodeGroup:         pulumi.BoolRef(true),
		ServiceRole:                  clusterRole,
		InstanceRoles:                iam.RoleArray{nodeRole},
		EnabledClusterLogTypes:       pulumi.ToStringArray([]string{"api", "audit", "authenticator"}),
	}
	if len(args.PublicAccessCIDRs) > 0 {
		clusterArgs.PublicAccessCidrs = pulumi.ToStringArray(args.PublicAccessCIDRs)
	}
	if args.KMSKeyARN != "" {
		clusterArgs.EncryptionConfigKeyArn = pulumi.String(args.KMSKeyARN)
	}
	cluster, err := eks.NewCluster(ctx, name, clusterArgs, parent)
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: cluster: %w", name, err)
	}

	// CoreDNS and friends need somewhere to run while the GPU nodes are
	// tainted (or scaled to zero): a small CPU node group.
	if _, err := nodeGroup(ctx, name+"-system", cluster, nodeRole, args.SubnetIDs, args.System,
		"AL2023_x86_64_STANDARD", "system", nil, parent); err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}
	// AL2 GPU AMIs are end of support and not built for Kubernetes 1.33+.
	gpuTaints := awseks.NodeGroupTaintArray{awseks.NodeGroupTaintArgs{
		Key: pulumi.String(GPUTaint), Value: pulumi.String("true"), Effect: pulumi.String("NO_SCHEDULE"),
	}}
	if _, err := nodeGroup(ctx, name+"-gpu", cluster, nodeRole, args.SubnetIDs, args.GPU,
		"AL2023_x86_64_NVIDIA", "gpu", gpuTaints, parent); err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}

	provider, err := kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{
		Kubeconfig:            cluster.KubeconfigJson,
		EnableServerSideApply: pulumi.Bool(true),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: kubernetes provider: %w", name, err)
	}

	oidc := cluster.Core.OidcProvider()
	c.ClusterName = pulumi.String(args.Name).ToStringOutput()
	c.Kubeconfig = pulumi.ToSecret(cluster.KubeconfigJson).(pulumi.StringOutput)
	c.OIDCProviderARN = oidc.Arn()
	c.OIDCProviderURL = oidc.Url()
	c.Provider = provider
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"clusterName":     c.ClusterName,
		"kubeconfig":      c.Kubeconfig,
		"oidcProviderArn": c.OIDCProviderARN,
		"oidcProviderUrl": c.OIDCProviderURL,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// role creates a role a service assumes, with AWS managed policies attached
// by partition-correct ARNs.
func role(ctx *pulumi.Context, name string, r region.Info, service string, policies []string,
	parent pulumi.ResourceOption,
) (*iam.Role, error) {
	rl, err := iam.NewRole(ctx, name, &iam.RoleArgs{
		AssumeRolePolicy: pulumi.String(iamdoc.AssumeRole(r.ServicePrincipals(service)).JSON()),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("role %s: %w", name, err)
	}
	for _, p := range policies {
		if _, err := iam.NewRolePolicyAttachment(ctx, name+"-"+p, &iam.RolePolicyAttachmentArgs{
			Role:      rl.Name,
			PolicyArn: pulumi.String(r.ManagedPolicyARN(p)),
		}, parent); err != nil {
			return nil, fmt.Errorf("role %s: attach %s: %w", name, p, err)
		}
	}
	return rl, nil
}

func nodeGroup(ctx *pulumi.Context, name string, cluster *eks.Cluster, nodeRole *iam.Role, subnets pulumi.StringArrayInput,
	g NodeGroup, amiType, label string, taints awseks.NodeGroupTaintArray, parent pulumi.ResourceOption,
) (*eks.ManagedNodeGroup, error) {
	args := &eks.ManagedNodeGroupArgs{
		Cluster:       cluster,
		NodeRole:      nodeRole,
		AmiType:       pulumi.String(amiType),
		InstanceTypes: pulumi.ToStringArray([]string{g.InstanceType}),
		SubnetIds:     subnets,
		DiskSize:      pulumi.Int(g.DiskGiB),
		ScalingConfig: awseks.NodeGroupScalingConfigArgs{
			MinSize: pulumi.Int(g.Min), DesiredSize: pulumi.Int(g.Desired), MaxSize: pulumi.Int(g.Max),
		},
		Labels: pulumi.StringMap{NodeRoleLabel: pulumi.String(label)},
	}
	if len(taints) > 0 {
		args.Taints = taints
	}
	ng, err := eks.NewManagedNodeGroup(ctx, name, args, parent)
	if err != nil {
		return nil, fmt.Errorf("node group %s: %w", name, err)
	}
	return ng, nil
}
