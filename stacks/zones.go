package stacks

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	awsec2 "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// minZones is how many zones every target's subnets span. EKS's
// CreateCluster and SageMaker hosting in a VPC refuse subnets in fewer than
// two zones (../shared/reference/aws-cn.md; awsdocs amazon-sagemaker-developer-guide
// host-vpc.md, amazon-eks-user-guide network-reqs.md), and the EC2 server's
// Auto Scaling group needs a second zone to fall back to when a zone has no
// GPU capacity. maxZones keeps the interface endpoints (billed per zone) few.
const (
	minZones = 2
	maxZones = 2
)

// zonesFor returns the zones of a new VPC: the configured ones, or those
// that can hold the model server, asked of AWS before anything is
// registered so that a type missing from a zone fails the preview instead
// of the launch.
//
//   - sagemaker: any available zone of the region. SageMaker hosting types
//     (ml.*) are not EC2 instance types: EC2's DescribeInstanceTypeOfferings
//     knows none of them (the EC2 InstanceType enum of aws-sdk-go-v2 has no
//     ml.* value), and SageMaker publishes no per-zone offering; it places
//     instances in the subnets it is given.
//   - ec2, eks: the zones EC2 says offer the GPU instance type, most
//     offered first.
func zonesFor(ctx *pulumi.Context, d *Deployment) ([]string, error) {
	if zones := d.Config.AvailabilityZones; len(zones) > 0 {
		return zones, nil // checkLocal required at least minZones
	}
	if d.Config.Target == "sagemaker" {
		return sageMakerZones(ctx, d)
	}
	if d.EC2 != nil {
		// Zones where the group can launch the first type or a fallback.
		return gpuZones(ctx, d, d.EC2.InstanceTypes(d))
	}
	return gpuZones(ctx, d, []string{d.Decision.InstanceType})
}

func sageMakerZones(ctx *pulumi.Context, d *Deployment) ([]string, error) {
	res, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")})
	if err != nil {
		return nil, fmt.Errorf("look up the availability zones of %s: %w", d.Region.Name, err)
	}
	zones := append([]string(nil), res.Names...)
	sort.Strings(zones)
	if len(zones) < minZones {
		return nil, &ConfigError{Key: key("availabilityZones"), Value: strings.Join(zones, ","), Msg: fmt.Sprintf(
			"%s has %d available zone(s) in this account; SageMaker hosting in a VPC needs subnets in %d: "+
				"use an existing VPC with subnets in two zones (vpcId, subnetIds)", d.Region.Name, len(zones), minZones)}
	}
	return zones[:min(len(zones), maxZones)], nil
}

// gpuZones asks EC2 which zones offer any of the instance types, and keeps
// the zones that offer the most of them (the first type breaks ties).
func gpuZones(ctx *pulumi.Context, d *Deployment, types []string) ([]string, error) {
	offers, err := awsec2.GetInstanceTypeOfferings(ctx, &awsec2.GetInstanceTypeOfferingsArgs{
		LocationType: pulumi.StringRef("availability-zone"),
		Filters:      []awsec2.GetInstanceTypeOfferingsFilter{{Name: "instance-type", Values: types}},
	})
	if err != nil {
		return nil, fmt.Errorf("look up the zones of %s that offer %s: %w", d.Region.Name, strings.Join(types, ", "), err)
	}
	count := map[string]int{}
	first := map[string]bool{}
	for i, z := range offers.Locations {
		if i < len(offers.InstanceTypes) && slices.Contains(types, offers.InstanceTypes[i]) {
			count[z]++
			if offers.InstanceTypes[i] == types[0] {
				first[z] = true
			}
		}
	}
	zones := make([]string, 0, len(count))
	for z := range count {
		zones = append(zones, z)
	}
	sort.Slice(zones, func(i, j int) bool {
		a, b := zones[i], zones[j]
		if first[a] != first[b] {
			return first[a]
		}
		if count[a] != count[b] {
			return count[a] > count[b]
		}
		return a < b
	})
	if len(zones) < minZones {
		what := "no availability zone"
		if len(zones) > 0 {
			what = "only " + strings.Join(zones, ", ")
		}
		return nil, &ConfigError{Key: key("instanceType"), Value: strings.Join(types, ","), Msg: fmt.Sprintf(
			"is offered in %s of %s in this account, and the %s target needs subnets in %d zones: choose a type "+
				"offered in two zones (`aws ec2 describe-instance-type-offerings --location-type availability-zone "+
				"--region %s` lists them), or set offeredInstanceTypes to what the region offers you",
			what, d.Region.Name, d.Config.Target, minZones, d.Region.Name)}
	}
	sort.Strings(zones[:min(len(zones), maxZones)])
	return zones[:min(len(zones), maxZones)], nil
}
