// Package eks is the cluster of the EKS alternative: an EKS control plane
// with its own IAM roles, EKS managed add-ons whose images come from the
// region, a small CPU node group for them and a tainted GPU node group on
// the AL2023 NVIDIA AMI, plus a Kubernetes provider for the workloads
// (package k8sserving) that authenticates as the AWS provider does.
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
	// Endpoint decides who reaches the Kubernetes API.
	Endpoint Endpoint
	// KMSKeyARN encrypts Kubernetes secrets; "" leaves EKS's default.
	KMSKeyARN string
	System    NodeGroup
	GPU       NodeGroup
	// AddonVersions pins the managed add-ons by name (see AddonVersions);
	// a missing or empty one gets the version EKS picks.
	AddonVersions map[string]string
	// Observability, when set, installs the Amazon CloudWatch Observability
	// add-on.
	Observability *ObservabilityAddon
	// ClusterDependsOn are resources the EKS cluster waits for: the control
	// plane's log group, created first so that it has a retention.
	ClusterDependsOn []pulumi.Resource
	// Deployer is the AWS identity of the machine running Pulumi.
	Deployer Deployer
}

// Cluster is the component.
type Cluster struct {
	pulumi.ResourceState

	ClusterName     pulumi.StringOutput `pulumi:"clusterName"`
	Kubeconfig      pulumi.StringOutput `pulumi:"kubeconfig"`
	OIDCProviderARN pulumi.StringOutput `pulumi:"oidcProviderArn"`
	OIDCProviderURL pulumi.StringOutput `pulumi:"oidcProviderUrl"`
	// Provider deploys into the cluster. It is created once the node groups
	// and add-ons are, so that workloads find nodes to run on.
	Provider *kubernetes.Provider
	// AddonRegistry is where the nodes pull the add-on images from.
	AddonRegistry string
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
	if err := a.Endpoint.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("API endpoint: %w", err))
	}
	if err := validateAddonVersions(a.AddonVersions); err != nil {
		errs = append(errs, err)
	}
	if o := a.Observability; o != nil && o.Version != "" && !AddonVersionPattern.MatchString(o.Version) {
		errs = append(errs, fmt.Errorf("add-on %s version %q is not of the form v4.10.3-eksbuild.1", AddonCloudWatchObservability, o.Version))
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
	// The cluster and the node groups wait for their roles' policies, so
	// that a destroy or a replacement detaches them only after EKS is done
	// with the instances, interfaces and security groups they govern (a
	// policy gone first leaves a node group DELETE_FAILED).
	clusterRole, clusterPolicies, err := role(ctx, name+"-cluster", r, "eks", region.EKSClusterPolicies, parent)
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}
	nodeRole, nodePolicies, err := role(ctx, name+"-node", r, "ec2", region.EKSNodePolicies, parent)
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}

	// API authentication mode: EKS access entries only. The cluster creator
	// (the deployer) gets the admin entry (pulumi-eks sets
	// bootstrapClusterCreatorAdminPermissions), and EKS itself creates the
	// entries of managed node groups' roles (terraform-aws-modules/eks
	// access entries docs; pulumi-eks nodegroup.ts accepts a managed node
	// group role missing from instanceRoles in this mode because "access
	// entries can be added out of band"). pulumi-eks then writes no aws-auth ConfigMap
	// (nodejs/eks/authenticationMode.ts supportsConfigMap), which it would
	// do through its own Kubernetes provider, whose kubeconfig has the
	// profile but no region (nodejs/eks/cluster.ts generateKubeconfig).
	// instanceRoles must be empty in this mode (validateAuthenticationMode),
	// and must be given: without it createCore makes its own instance role
	// trusting only ec2.<dnsSuffix> (ec2.amazonaws.com.cn in China) plus an
	// access entry for it, which nothing here uses.
	authMode := eks.AuthenticationModeApi
	endpoint := args.Endpoint
	clusterArgs := &eks.ClusterArgs{
		Name:                         pulumi.String(args.Name),
		Version:                      pulumi.String(args.KubernetesVersion),
		VpcId:                        args.VpcID,
		PrivateSubnetIds:             args.SubnetIDs,
		NodeAssociatePublicIpAddress: pulumi.BoolRef(false),
		EndpointPrivateAccess:        pulumi.Bool(true),
		EndpointPublicAccess:         pulumi.Bool(!endpoint.PrivateOnly),
		CreateOidcProvider:           pulumi.Bool(true),
		SkipDefaultNodeGroup:         pulumi.BoolRef(true),
		ServiceRole:                  clusterRole,
		AuthenticationMode:           &authMode,
		InstanceRoles:                iam.RoleArray{},
		// Without this, pulumi-eks v2.8.1 applies its own VPC CNI manifest
		// (nodejs/eks/cluster.ts createCore: `if (!args.useDefaultVpcCni)
		// new VpcCni(...)`), whose images come from
		// 602401143452.dkr.ecr.us-west-2.amazonaws.com
		// (nodejs/eks/cni/aws-k8s-cni.yaml): nodes in China never become
		// Ready. With it, the VPC CNI is EKS's, and the managed add-on
		// below keeps it in the region.
		UseDefaultVpcCni:       pulumi.BoolRef(true),
		EnabledClusterLogTypes: pulumi.ToStringArray([]string{"api", "audit", "authenticator"}),
	}
	if !endpoint.PrivateOnly {
		clusterArgs.PublicAccessCidrs = pulumi.ToStringArray(endpoint.PublicAccessCIDRs)
	}
	if args.KMSKeyARN != "" {
		clusterArgs.EncryptionConfigKeyArn = pulumi.String(args.KMSKeyARN)
	}
	// pulumi-eks is a remote component: the dependency reaches its
	// Construct call as the component's dependencies; that its
	// aws:eks/cluster child waits for them is UNCONFIRMED (engine and
	// pulumi-eks behaviour, not read). EKS writes the first control-plane
	// lines only once the cluster is ACTIVE, many minutes after the log
	// group, a few seconds' work, exists.
	clusterDeps := append(append([]pulumi.Resource(nil), args.ClusterDependsOn...), clusterPolicies...)
	cluster, err := eks.NewCluster(ctx, name, clusterArgs, parent, pulumi.DependsOn(clusterDeps))
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: cluster: %w", name, err)
	}

	// CoreDNS and friends need somewhere to run while the GPU nodes are
	// tainted (or scaled to zero): a small CPU node group.
	systemLabel := map[string]string{NodeRoleLabel: "system"}
	system, err := nodeGroup(ctx, name+"-system", cluster, nodeRole, args.SubnetIDs, args.System,
		"AL2023_x86_64_STANDARD", systemLabel, nil, parent, pulumi.DependsOn(nodePolicies))
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}
	// AL2 GPU AMIs are end of support and not built for Kubernetes 1.33+.
	gpuTaints := awseks.NodeGroupTaintArray{awseks.NodeGroupTaintArgs{
		Key: pulumi.String(GPUTaint), Value: pulumi.String("true"), Effect: pulumi.String("NO_SCHEDULE"),
	}}
	gpu, err := nodeGroup(ctx, name+"-gpu", cluster, nodeRole, args.SubnetIDs, args.GPU,
		"AL2023_x86_64_NVIDIA", map[string]string{NodeRoleLabel: "gpu"}, gpuTaints, parent, pulumi.DependsOn(nodePolicies))
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: %w", name, err)
	}

	ready := []pulumi.Resource{system, gpu}
	versions := AddonVersions(args.KubernetesVersion, args.AddonVersions)
	for _, a := range Addons {
		opts := []pulumi.ResourceOption{parent}
		configuration := ""
		if a == AddonCoreDNS {
			// CoreDNS is a Deployment: it becomes ACTIVE only once it has
			// nodes to run on.
			opts = append(opts, pulumi.DependsOn([]pulumi.Resource{system}))
			if configuration, err = coreDNSConfiguration(systemLabel); err != nil {
				return nil, fmt.Errorf("eks cluster %s: %w", name, err)
			}
		}
		ad, err := addon(ctx, name, a, versions[a], configuration, cluster.EksCluster.Name(), opts...)
		if err != nil {
			return nil, fmt.Errorf("eks cluster %s: %w", name, err)
		}
		ready = append(ready, ad)
	}

	oidc := cluster.Core.OidcProvider()
	if args.Observability != nil {
		// Not among the provider's dependencies: vLLM's rollout does not
		// wait for the logging add-on, and the add-on's admission webhooks
		// fail open (values.yaml admissionWebhooks.failurePolicy: Ignore).
		if _, err := observabilityAddon(ctx, name, r, args.Observability, cluster.EksCluster.Name(), oidc.Arn(), oidc.Url(),
			[]pulumi.Resource{system, gpu}, parent); err != nil {
			return nil, fmt.Errorf("eks cluster %s: %w", name, err)
		}
	}

	ec := cluster.EksCluster
	kubeconfig := pulumi.All(ec.Endpoint(), ec.CertificateAuthority().Data()).ApplyT(func(v []any) (string, error) {
		ca := ""
		if p, ok := v[1].(*string); ok && p != nil {
			ca = *p
		}
		return Kubeconfig(KubeconfigArgs{
			ClusterName: args.Name, Endpoint: v[0].(string), CertificateAuthorityData: ca,
			Region: args.Region.Name, Deployer: args.Deployer,
		})
	}).(pulumi.StringOutput)
	provider, err := kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{
		Kubeconfig:            kubeconfig,
		EnableServerSideApply: pulumi.Bool(true),
	}, parent, pulumi.DependsOn(ready))
	if err != nil {
		return nil, fmt.Errorf("eks cluster %s: kubernetes provider: %w", name, err)
	}

	c.ClusterName = pulumi.String(args.Name).ToStringOutput()
	c.Kubeconfig = kubeconfig
	c.OIDCProviderARN = oidc.Arn()
	c.OIDCProviderURL = oidc.Url()
	c.Provider = provider
	c.AddonRegistry = AddonRegistry(r)
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
// by partition-correct ARNs; it returns the attachments, for what must
// wait for them.
func role(ctx *pulumi.Context, name string, r region.Info, service string, policies []string,
	parent pulumi.ResourceOption,
) (*iam.Role, []pulumi.Resource, error) {
	rl, err := iam.NewRole(ctx, name, &iam.RoleArgs{
		AssumeRolePolicy: pulumi.String(iamdoc.AssumeRole(r.ServicePrincipals(service)).JSON()),
	}, parent)
	if err != nil {
		return nil, nil, fmt.Errorf("role %s: %w", name, err)
	}
	var attached []pulumi.Resource
	for _, p := range policies {
		a, err := iam.NewRolePolicyAttachment(ctx, name+"-"+p, &iam.RolePolicyAttachmentArgs{
			Role:      rl.Name,
			PolicyArn: pulumi.String(r.ManagedPolicyARN(p)),
		}, parent)
		if err != nil {
			return nil, nil, fmt.Errorf("role %s: attach %s: %w", name, p, err)
		}
		attached = append(attached, a)
	}
	return rl, attached, nil
}

func nodeGroup(ctx *pulumi.Context, name string, cluster *eks.Cluster, nodeRole *iam.Role, subnets pulumi.StringArrayInput,
	g NodeGroup, amiType string, labels map[string]string, taints awseks.NodeGroupTaintArray, opts ...pulumi.ResourceOption,
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
		Labels: pulumi.ToStringMap(labels),
	}
	if len(taints) > 0 {
		args.Taints = taints
	}
	ng, err := eks.NewManagedNodeGroup(ctx, name, args, opts...)
	if err != nil {
		return nil, fmt.Errorf("node group %s: %w", name, err)
	}
	return ng, nil
}
