// Package network is the private network a model server runs in: either a
// new VPC with private subnets, optional NAT egress and the VPC endpoints the
// server uses, or an existing VPC and subnets.
package network

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// Args configures a Network.
type Args struct {
	Region region.Info

	// CIDR and AvailabilityZones describe a new VPC: one private subnet per
	// zone. Ignored when VpcID is set.
	CIDR              string
	AvailabilityZones []string
	// NATGateway gives the private subnets internet egress (one NAT gateway
	// in a small public subnet), for pip mirrors and ModelScope.
	NATGateway bool

	// VpcID, VpcCIDR and SubnetIDs use an existing VPC. Its subnets must be
	// private and have egress (NAT) or the endpoints the server needs.
	VpcID     string
	VpcCIDR   string
	SubnetIDs []string
	// RouteTableIDs are the existing subnets' route tables, for the S3
	// gateway endpoint.
	RouteTableIDs []string

	// InterfaceEndpoints are the services (ssm, ecr.dkr, ...) to give an
	// interface endpoint with private DNS; S3 always gets a gateway endpoint
	// when Endpoints is true.
	Endpoints          bool
	InterfaceEndpoints []string
	// EndpointServiceNames overrides the service name of single services.
	EndpointServiceNames map[string]string
}

// Network is the component.
type Network struct {
	pulumi.ResourceState

	VpcID            pulumi.StringOutput      `pulumi:"vpcId"`
	VpcCIDR          pulumi.StringOutput      `pulumi:"vpcCidr"`
	PrivateSubnetIDs pulumi.StringArrayOutput `pulumi:"privateSubnetIds"`
}

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	if a.VpcID != "" {
		if len(a.SubnetIDs) == 0 {
			return errors.New("an existing VPC needs at least one private subnet id")
		}
		return nil
	}
	prefix, err := netip.ParsePrefix(a.CIDR)
	if err != nil || !prefix.Addr().Is4() {
		return fmt.Errorf("VPC CIDR %q is not an IPv4 CIDR such as 10.0.0.0/16", a.CIDR)
	}
	if prefix.Bits() < 16 || prefix.Bits() > 22 {
		return fmt.Errorf("VPC CIDR %q must be between /16 and /22, to hold the subnets", a.CIDR)
	}
	if len(a.AvailabilityZones) == 0 {
		return errors.New("a new VPC needs at least one availability zone")
	}
	return nil
}

// New creates the network.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Network, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	n := &Network{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:network:Network", name, n, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(n)

	var routeTables pulumi.StringArray
	var subnetIDs pulumi.StringArray
	if args.VpcID != "" {
		n.VpcID = pulumi.String(args.VpcID).ToStringOutput()
		n.VpcCIDR = pulumi.String(args.VpcCIDR).ToStringOutput()
		for _, s := range args.SubnetIDs {
			subnetIDs = append(subnetIDs, pulumi.String(s))
		}
		for _, rt := range args.RouteTableIDs {
			routeTables = append(routeTables, pulumi.String(rt))
		}
	} else {
		vpc, err := ec2.NewVpc(ctx, name, &ec2.VpcArgs{
			CidrBlock: pulumi.String(args.CIDR),
			// Interface endpoints with private DNS need both.
			EnableDnsSupport:   pulumi.Bool(true),
			EnableDnsHostnames: pulumi.Bool(true),
			Tags:               nameTag(name),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("network %s: vpc: %w", name, err)
		}
		n.VpcID = vpc.ID().ToStringOutput()
		n.VpcCIDR = vpc.CidrBlock

		rt, err := ec2.NewRouteTable(ctx, name+"-private", &ec2.RouteTableArgs{
			VpcId: vpc.ID(),
			Tags:  nameTag(name + "-private"),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("network %s: route table: %w", name, err)
		}
		routeTables = pulumi.StringArray{rt.ID()}

		private, public, err := subnetCIDRs(args.CIDR, len(args.AvailabilityZones))
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
		for i, az := range args.AvailabilityZones {
			sn, err := ec2.NewSubnet(ctx, fmt.Sprintf("%s-private-%s", name, az), &ec2.SubnetArgs{
				VpcId:               vpc.ID(),
				CidrBlock:           pulumi.String(private[i]),
				AvailabilityZone:    pulumi.String(az),
				MapPublicIpOnLaunch: pulumi.Bool(false),
				Tags:                nameTag(fmt.Sprintf("%s-private-%s", name, az)),
			}, parent)
			if err != nil {
				return nil, fmt.Errorf("network %s: subnet in %s: %w", name, az, err)
			}
			subnetIDs = append(subnetIDs, sn.ID())
			if _, err := ec2.NewRouteTableAssociation(ctx, fmt.Sprintf("%s-private-%s", name, az), &ec2.RouteTableAssociationArgs{
				SubnetId:     sn.ID(),
				RouteTableId: rt.ID(),
			}, parent); err != nil {
				return nil, fmt.Errorf("network %s: route table association: %w", name, err)
			}
		}
		if args.NATGateway {
			if err := natEgress(ctx, name, args, vpc, rt, public, parent); err != nil {
				return nil, err
			}
		}
	}
	n.PrivateSubnetIDs = subnetIDs.ToStringArrayOutput()

	if args.Endpoints {
		if err := endpoints(ctx, name, args, n, routeTables, subnetIDs, parent); err != nil {
			return nil, err
		}
	}

	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{
		"vpcId":            n.VpcID,
		"vpcCidr":          n.VpcCIDR,
		"privateSubnetIds": n.PrivateSubnetIDs,
	}); err != nil {
		return nil, err
	}
	return n, nil
}

// natEgress adds an internet gateway, one public subnet with a NAT gateway in
// the first zone, and the default route of the private subnets through it.
// One NAT gateway, not one per zone: the model server is a single instance.
func natEgress(ctx *pulumi.Context, name string, args *Args, vpc *ec2.Vpc, private *ec2.RouteTable,
	publicCIDR string, parent pulumi.ResourceOption,
) error {
	igw, err := ec2.NewInternetGateway(ctx, name, &ec2.InternetGatewayArgs{
		VpcId: vpc.ID(), Tags: nameTag(name),
	}, parent)
	if err != nil {
		return fmt.Errorf("network %s: internet gateway: %w", name, err)
	}
	publicRT, err := ec2.NewRouteTable(ctx, name+"-public", &ec2.RouteTableArgs{
		VpcId: vpc.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{
			CidrBlock: pulumi.String("0.0.0.0/0"), GatewayId: igw.ID(),
		}},
		Tags: nameTag(name + "-public"),
	}, parent)
	if err != nil {
		return fmt.Errorf("network %s: public route table: %w", name, err)
	}
	// The public subnet holds only the NAT gateway: nothing in it gets a
	// public address on launch.
	public, err := ec2.NewSubnet(ctx, name+"-public", &ec2.SubnetArgs{
		VpcId:               vpc.ID(),
		CidrBlock:           pulumi.String(publicCIDR),
		AvailabilityZone:    pulumi.String(args.AvailabilityZones[0]),
		MapPublicIpOnLaunch: pulumi.Bool(false),
		Tags:                nameTag(name + "-public"),
	}, parent)
	if err != nil {
		return fmt.Errorf("network %s: public subnet: %w", name, err)
	}
	if _, err := ec2.NewRouteTableAssociation(ctx, name+"-public", &ec2.RouteTableAssociationArgs{
		SubnetId: public.ID(), RouteTableId: publicRT.ID(),
	}, parent); err != nil {
		return fmt.Errorf("network %s: public route table association: %w", name, err)
	}
	eip, err := ec2.NewEip(ctx, name+"-nat", &ec2.EipArgs{
		Domain: pulumi.String("vpc"), Tags: nameTag(name + "-nat"),
	}, parent)
	if err != nil {
		return fmt.Errorf("network %s: NAT address: %w", name, err)
	}
	nat, err := ec2.NewNatGateway(ctx, name, &ec2.NatGatewayArgs{
		AllocationId: eip.ID(), SubnetId: public.ID(), Tags: nameTag(name),
	}, parent, pulumi.DependsOn([]pulumi.Resource{igw}))
	if err != nil {
		return fmt.Errorf("network %s: NAT gateway: %w", name, err)
	}
	if _, err := ec2.NewRoute(ctx, name+"-private-default", &ec2.RouteArgs{
		RouteTableId:         private.ID(),
		DestinationCidrBlock: pulumi.String("0.0.0.0/0"),
		NatGatewayId:         nat.ID(),
	}, parent); err != nil {
		return fmt.Errorf("network %s: default route: %w", name, err)
	}
	return nil
}

// endpoints adds the S3 gateway endpoint and the interface endpoints, which
// let a private instance reach S3, Session Manager, Secrets Manager and ECR
// without leaving the VPC.
func endpoints(ctx *pulumi.Context, name string, args *Args, n *Network, routeTables, subnets pulumi.StringArray,
	parent pulumi.ResourceOption,
) error {
	serviceName := func(svc string, kind region.EndpointType) string {
		if override, ok := args.EndpointServiceNames[svc]; ok {
			return override
		}
		return args.Region.VPCEndpointServiceName(svc, kind)
	}
	if len(routeTables) > 0 {
		if _, err := ec2.NewVpcEndpoint(ctx, name+"-s3", &ec2.VpcEndpointArgs{
			VpcId:           n.VpcID,
			ServiceName:     pulumi.String(serviceName("s3", region.Gateway)),
			VpcEndpointType: pulumi.String(string(region.Gateway)),
			RouteTableIds:   routeTables,
			Tags:            nameTag(name + "-s3"),
		}, parent); err != nil {
			return fmt.Errorf("network %s: S3 endpoint: %w", name, err)
		}
	}
	if len(args.InterfaceEndpoints) == 0 {
		return nil
	}
	sg, err := ec2.NewSecurityGroup(ctx, name+"-endpoints", &ec2.SecurityGroupArgs{
		VpcId:       n.VpcID,
		Description: pulumi.String("HTTPS from inside the VPC to its interface endpoints"),
		Ingress: ec2.SecurityGroupIngressArray{ec2.SecurityGroupIngressArgs{
			Description: pulumi.String("HTTPS from the VPC"),
			Protocol:    pulumi.String("tcp"), FromPort: pulumi.Int(443), ToPort: pulumi.Int(443),
			CidrBlocks: pulumi.StringArray{n.VpcCIDR},
		}},
		Tags: nameTag(name + "-endpoints"),
	}, parent)
	if err != nil {
		return fmt.Errorf("network %s: endpoint security group: %w", name, err)
	}
	services := append([]string(nil), args.InterfaceEndpoints...)
	sort.Strings(services)
	for _, svc := range services {
		if _, err := ec2.NewVpcEndpoint(ctx, name+"-"+svc, &ec2.VpcEndpointArgs{
			VpcId:             n.VpcID,
			ServiceName:       pulumi.String(serviceName(svc, region.Interface)),
			VpcEndpointType:   pulumi.String(string(region.Interface)),
			SubnetIds:         subnets,
			SecurityGroupIds:  pulumi.StringArray{sg.ID()},
			PrivateDnsEnabled: pulumi.Bool(true),
			Tags:              nameTag(name + "-" + svc),
		}, parent); err != nil {
			return fmt.Errorf("network %s: %s endpoint: %w", name, svc, err)
		}
	}
	return nil
}

// subnetCIDRs carves the VPC range into equal private subnets, one per zone
// (a quarter of the range each, up to four zones), and a public /28-or-larger
// subnet for the NAT gateway from the last quarter.
func subnetCIDRs(vpcCIDR string, zones int) (private []string, public string, err error) {
	prefix, err := netip.ParsePrefix(vpcCIDR)
	if err != nil {
		return nil, "", fmt.Errorf("VPC CIDR %q: %w", vpcCIDR, err)
	}
	if zones > 3 {
		return nil, "", fmt.Errorf("at most 3 availability zones, got %d", zones)
	}
	prefix = prefix.Masked()
	quarter := prefix.Bits() + 2
	base := prefix.Addr().As4()
	span := uint32(1) << (32 - quarter)
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	at := func(i uint32, bits int) string {
		v := start + i*span
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits).String()
	}
	for i := 0; i < zones; i++ {
		private = append(private, at(uint32(i), quarter))
	}
	// The public subnet only holds the NAT gateway: a /24 at the start of
	// the last quarter.
	return private, at(3, 24), nil
}

// nameTag names a resource in the console; project-wide tags come from the
// provider's aws:defaultTags in the stack config.
func nameTag(name string) pulumi.StringMap { return pulumi.StringMap{"Name": pulumi.String(name)} }
