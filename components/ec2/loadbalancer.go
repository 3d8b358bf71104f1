package ec2

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// loadBalancer is the server's stable address: an internal Network Load
// Balancer in the private subnets, forwarding the API port (TCP, so streams
// pass as they are) to whichever instance the group runs.
type loadBalancer struct {
	arn, arnSuffix, dnsName pulumi.StringOutput
	targetGroup             *lb.TargetGroup
}

func newLoadBalancer(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) (*loadBalancer, error) {
	nlb, err := lb.NewLoadBalancer(ctx, name, &lb.LoadBalancerArgs{
		LoadBalancerType: pulumi.String("network"),
		Internal:         pulumi.Bool(true),
		Subnets:          args.SubnetIDs,
		IpAddressType:    pulumi.String("ipv4"),
		// The one instance is in one zone: without cross-zone balancing
		// the load balancer's address in the other zone has no target.
		EnableCrossZoneLoadBalancing: pulumi.Bool(true),
		Tags:                         pulumi.StringMap{"Name": pulumi.String(name)},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	port := args.APIPort
	tg, err := lb.NewTargetGroup(ctx, name, &lb.TargetGroupArgs{
		Port:       pulumi.Int(port),
		Protocol:   pulumi.String("TCP"),
		TargetType: pulumi.String("instance"),
		VpcId:      args.VpcID,
		// Let answers in flight finish when the instance is replaced.
		DeregistrationDelay: pulumi.Int(120),
		HealthCheck: lb.TargetGroupHealthCheckArgs{
			Protocol:         pulumi.String("HTTP"),
			Port:             pulumi.String("traffic-port"),
			Path:             pulumi.String(args.HealthCheckPath),
			Matcher:          pulumi.String("200"),
			Interval:         pulumi.Int(30),
			Timeout:          pulumi.Int(10),
			HealthyThreshold: pulumi.Int(2),
			// Ten failures 30 s apart (5 minutes, the NLB's most) before the
			// server counts as unhealthy and the group replaces it: vLLM's
			// own restart after a crash or a reboot (systemd, weights already
			// on the instance store, torch.compile cache warm) takes 1.5 to
			// 4 minutes; a new instance takes 20 to 60.
			UnhealthyThreshold: pulumi.Int(10),
		},
		Tags: pulumi.StringMap{"Name": pulumi.String(name)},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("target group: %w", err)
	}
	listener := &lb.ListenerArgs{
		LoadBalancerArn: nlb.Arn,
		Port:            pulumi.Int(port),
		Protocol:        pulumi.String("TCP"),
		DefaultActions: lb.ListenerDefaultActionArray{lb.ListenerDefaultActionArgs{
			Type: pulumi.String("forward"), TargetGroupArn: tg.Arn,
		}},
	}
	if args.IdleTimeoutSeconds > 0 {
		// A non-streamed R1 answer sends nothing until its reasoning is
		// done, which can take longer than the 350 s default.
		listener.TcpIdleTimeoutSeconds = pulumi.Int(args.IdleTimeoutSeconds)
	}
	if _, err := lb.NewListener(ctx, name, listener, parent); err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	return &loadBalancer{arn: nlb.Arn, arnSuffix: nlb.ArnSuffix, dnsName: nlb.DnsName, targetGroup: tg}, nil
}
