package plan

import (
	"fmt"
	"sort"
	"strings"
)

// What AWS refuses when a resource is created, for the inputs the program
// sends: the stand-in answers with AWS's error, so that a plan the mocks
// accept is one the real APIs accept too, for these rules.

// chinaEndpointServices are the VPC endpoint services of the China regions
// that the program may ask for, by the names AWS gives them there. The
// cn.com.amazonaws ones are aws-cdk's VPC_ENDPOINT_SERVICE_EXCEPTIONS for
// cn-north-1 and cn-northwest-1 (packages/aws-cdk-lib/aws-ec2/lib/
// vpc-endpoint.ts, built from describe-vpc-endpoint-services in both
// regions, aws-cdk PRs #16139 and #25333), restricted to the services this
// project uses; the com.amazonaws ones are those that list leaves out
// (Systems Manager, Secrets Manager, CloudWatch Logs, KMS, the S3 gateway).
// This table is independent of components/region's, which the test of a
// China plan checks against it.
var chinaEndpointServices = map[string]bool{
	// cn.com.amazonaws.<region>.*
	"cn.com.amazonaws.%s.autoscaling": true, "cn.com.amazonaws.%s.application-autoscaling": true,
	"cn.com.amazonaws.%s.ec2": true, "cn.com.amazonaws.%s.ecr.api": true, "cn.com.amazonaws.%s.ecr.dkr": true,
	"cn.com.amazonaws.%s.eks": true, "cn.com.amazonaws.%s.monitoring": true, "cn.com.amazonaws.%s.s3": true,
	"cn.com.amazonaws.%s.sagemaker.api": true, "cn.com.amazonaws.%s.sagemaker.runtime": true,
	"cn.com.amazonaws.%s.sts": true,
	// com.amazonaws.<region>.*
	"com.amazonaws.%s.ssm": true, "com.amazonaws.%s.ssmmessages": true, "com.amazonaws.%s.ec2messages": true,
	"com.amazonaws.%s.secretsmanager": true, "com.amazonaws.%s.logs": true, "com.amazonaws.%s.kms": true,
	"com.amazonaws.%s.s3": true,
}

// endpointServiceExists says whether CreateVpcEndpoint knows the service
// name in the region: in China by the table above, elsewhere every
// com.amazonaws.<region>.<service>.
func endpointServiceExists(regionName, service string) bool {
	if strings.HasPrefix(regionName, "cn-") {
		for pattern := range chinaEndpointServices {
			if fmt.Sprintf(pattern, regionName) == service {
				return true
			}
		}
		return false
	}
	return strings.HasPrefix(service, "com.amazonaws."+regionName+".")
}

// checkResource applies AWS's create-time rules to a resource's inputs.
func (m *mocks) checkResource(typ string, inputs map[string]any) error {
	switch typ {
	case "aws:ec2/vpcEndpoint:VpcEndpoint":
		if name, ok := inputs["serviceName"].(string); ok && !endpointServiceExists(m.region, name) {
			return fmt.Errorf("InvalidServiceName: The Vpc Endpoint Service '%s' does not exist", name)
		}
	case "aws:ec2/securityGroup:SecurityGroup":
		// Inline rules go to AuthorizeSecurityGroupIngress/Egress in one
		// call per direction; EC2 refuses a permission (protocol, ports,
		// CIDR) given twice (terraform-provider-aws #2587, #29492).
		for _, dir := range []string{"ingress", "egress"} {
			if err := duplicatePermission(inputs[dir]); err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
		}
	}
	return nil
}

func duplicatePermission(rules any) error {
	list, _ := rules.([]any)
	seen := map[string]bool{}
	var dups []string
	for _, r := range list {
		rule, _ := r.(map[string]any)
		cidrs, _ := rule["cidrBlocks"].([]any)
		for _, c := range cidrs {
			k := fmt.Sprintf("%v %v-%v %v", rule["protocol"], rule["fromPort"], rule["toPort"], c)
			if seen[k] {
				dups = append(dups, k)
			}
			seen[k] = true
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return fmt.Errorf("InvalidParameterValue: The same permission must not appear multiple times (%s)", strings.Join(dups, "; "))
	}
	return nil
}
