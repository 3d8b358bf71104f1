// Package region holds the China rules: everything that differs between the
// AWS China partition (aws-cn: cn-north-1 Beijing, cn-northwest-1 Ningxia)
// and the global partition (aws), derived from the region name alone.
//
// Nothing else in this project may spell a partition, a DNS suffix, a service
// principal, a managed-policy ARN or a registry host: it asks an Info. The
// facts and their sources are in ../shared/reference/aws-cn.md; the ones that
// are UNCONFIRMED there can be overridden from stack config (see stacks).
package region

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

const (
	// PartitionAWS is the global commercial partition.
	PartitionAWS = "aws"
	// PartitionChina is the partition of the two China regions, operated by
	// Sinnet (Beijing) and NWCD (Ningxia).
	PartitionChina = "aws-cn"
)

// Info is what the program knows about one region.
type Info struct {
	// Name is the region, for example "cn-northwest-1".
	Name string
	// Partition is "aws" or "aws-cn".
	Partition string
	// DNSSuffix is "amazonaws.com" or "amazonaws.com.cn".
	DNSSuffix string
	// DisplayName is a human name for messages.
	DisplayName string
}

// regionPattern accepts the shape of commercial region names (us-east-1,
// ap-southeast-2, cn-northwest-1). GovCloud, ISO and EU sovereign regions are
// refused: nothing here has been checked against their partitions.
var regionPattern = regexp.MustCompile(`^[a-z]{2}-[a-z]+-\d$`)

// chinaRegions are the regions of the aws-cn partition.
var chinaRegions = map[string]string{
	"cn-north-1":     "China (Beijing)",
	"cn-northwest-1": "China (Ningxia)",
}

// Lookup derives the partition facts of a region. It fails for names that are
// not commercial AWS regions, so that a typo in aws:region is caught before
// anything is planned.
func Lookup(name string) (Info, error) {
	if display, ok := chinaRegions[name]; ok {
		return Info{Name: name, Partition: PartitionChina, DNSSuffix: "amazonaws.com.cn", DisplayName: display}, nil
	}
	if strings.HasPrefix(name, "cn-") {
		return Info{}, fmt.Errorf("region %q is not an AWS China region: the China regions are %s",
			name, strings.Join(ChinaRegions(), " and "))
	}
	if strings.HasPrefix(name, "us-gov-") || strings.HasPrefix(name, "us-iso") || strings.HasPrefix(name, "eusc-") {
		return Info{}, fmt.Errorf("region %q is outside the aws and aws-cn partitions, which are the only ones supported", name)
	}
	if !regionPattern.MatchString(name) {
		return Info{}, fmt.Errorf("%q is not an AWS region name: use cn-northwest-1 or cn-north-1 (China), or a global region such as us-east-1", name)
	}
	return Info{Name: name, Partition: PartitionAWS, DNSSuffix: "amazonaws.com", DisplayName: name}, nil
}

// ChinaRegions lists the regions of the aws-cn partition, sorted.
func ChinaRegions() []string {
	out := make([]string, 0, len(chinaRegions))
	for r := range chinaRegions {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// IsChina reports whether the region is in the aws-cn partition.
func (i Info) IsChina() bool { return i.Partition == PartitionChina }

// ARN builds an ARN in this region's partition. Pass "" for region or account
// where the service leaves them out (S3 buckets, IAM).
func (i Info) ARN(service, region, account, resource string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", i.Partition, service, region, account, resource)
}

// ARNPrefix is "arn:aws:" or "arn:aws-cn:".
func (i Info) ARNPrefix() string { return "arn:" + i.Partition + ":" }

// ManagedPolicyARN is the ARN of an AWS managed IAM policy, for example
// AmazonSSMManagedInstanceCore.
func (i Info) ManagedPolicyARN(name string) string {
	return i.ARN("iam", "", "aws", "policy/"+name)
}

// S3BucketARN and S3ObjectsARN name a bucket and the objects under a prefix.
func (i Info) S3BucketARN(bucket string) string { return i.ARN("s3", "", "", bucket) }

// S3ObjectsARN is the ARN pattern of every object under prefix ("" = whole bucket).
func (i Info) S3ObjectsARN(bucket, prefix string) string {
	return i.ARN("s3", "", "", bucket+"/"+prefix+"*")
}

// ServiceEndpoint is the regional API host of a service, for example
// s3.cn-northwest-1.amazonaws.com.cn.
func (i Info) ServiceEndpoint(service string) string {
	return fmt.Sprintf("%s.%s.%s", service, i.Name, i.DNSSuffix)
}

// S3Endpoint is the regional S3 URL. The AWS CLI and SDKs find it from the
// region; vLLM's S3 streamer and other non-AWS clients need it spelled out.
func (i Info) S3Endpoint() string { return "https://" + i.ServiceEndpoint("s3") }

// ECRRegistry is the host of an account's private ECR registry in this region.
func (i Info) ECRRegistry(account string) string {
	return fmt.Sprintf("%s.dkr.ecr.%s.%s", account, i.Name, i.DNSSuffix)
}

// IsRegionalECRImage reports whether an image reference is served by a private
// ECR registry of this region (any account). Images from anywhere else (Docker
// Hub, ghcr.io, nvcr.io, another region) are not reachable from a private
// subnet in China and are refused by the stacks.
func (i Info) IsRegionalECRImage(image string) bool {
	_, _, ok := i.parseECRImage(image)
	return ok
}

// ECRRepositoryARN is the ARN of the repository an image of this region's
// ECR comes from, for a least-privilege pull policy. ok is false for images
// that are not in a private ECR registry of this region.
func (i Info) ECRRepositoryARN(image string) (arn string, ok bool) {
	account, repo, ok := i.parseECRImage(image)
	if !ok {
		return "", false
	}
	return i.ARN("ecr", i.Name, account, "repository/"+repo), true
}

var (
	accountPattern = regexp.MustCompile(`^\d{12}$`)
	// repoPattern is ECR's repository name grammar.
	repoPattern = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
)

// parseECRImage splits <account>.dkr.ecr.<region>.<suffix>/<repo>[:tag][@digest].
func (i Info) parseECRImage(image string) (account, repo string, ok bool) {
	host, rest, found := strings.Cut(image, "/")
	if !found {
		return "", "", false
	}
	account, isECR := strings.CutSuffix(host, ".dkr.ecr."+i.Name+"."+i.DNSSuffix)
	if !isECR || !accountPattern.MatchString(account) {
		return "", "", false
	}
	repo, _, _ = strings.Cut(rest, "@")
	if slash, colon := strings.LastIndex(repo, "/"), strings.LastIndex(repo, ":"); colon > slash {
		repo = repo[:colon]
	}
	if !repoPattern.MatchString(repo) {
		return "", "", false
	}
	return account, repo, true
}

// ServicePrincipals is who a role for the given service must trust.
//
// In aws-cn, IAM once required ec2.amazonaws.com.cn and EKS managed node
// groups failed without it (pulumi-eks #796, cdk-eks-blueprints #558), while
// the current China docs show ec2.amazonaws.com: both are trusted, as
// terraform-aws-eks does. EKS and SageMaker keep the global principal: IAM
// rejects eks.amazonaws.com.cn as an invalid principal (terraform-aws-eks
// #1904, pulumi-eks #1861).
func (i Info) ServicePrincipals(service string) []string {
	switch {
	case service == "ec2" && i.IsChina():
		return []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"}
	default:
		return []string{service + ".amazonaws.com"}
	}
}

// IRSAAudience is the audience of the service-account tokens EKS's pod
// identity webhook issues, which an IRSA role's trust policy must match. It
// is sts.amazonaws.com in aws-cn too: roles that expect sts.amazonaws.com.cn
// fail with "Incorrect token audience" (eksctl #1910, terraform-aws-eks
// #1704 and #2700; terraform-aws-iam #451 argued the opposite and was closed).
func (i Info) IRSAAudience() string { return "sts.amazonaws.com" }

// EKSManagedPolicies are the AWS managed policies an EKS cluster role and a
// managed node role need (worker, CNI, image pulls, Session Manager).
var (
	EKSClusterPolicies = []string{"AmazonEKSClusterPolicy"}
	EKSNodePolicies    = []string{"AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
		"AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"}
)

// DeepLearningContainersRegistry is the ECR registry of the AWS Deep Learning
// Containers (djl-inference/LMI, huggingface-*, pytorch) in this region.
// In China they are published by account 727897471807 in both regions
// (aws/deep-learning-containers available_images.md); in most global regions
// by 763104351884.
func (i Info) DeepLearningContainersRegistry() string {
	if i.IsChina() {
		return i.ECRRegistry("727897471807")
	}
	return i.ECRRegistry("763104351884")
}

// DefaultPipIndex is the Python package index the instances install from.
// The public PyPI is slow or unreachable from China, so the China regions use
// a domestic mirror (override with deepseek-r1-cn:pipIndexUrl).
func (i Info) DefaultPipIndex() string {
	if i.IsChina() {
		return "https://mirrors.aliyun.com/pypi/simple/"
	}
	return "https://pypi.org/simple/"
}

// ConsoleHost is the AWS Management Console of the partition: the China
// regions have their own, console.amazonaws.cn (the global console does not
// sign in China accounts).
func (i Info) ConsoleHost() string {
	if i.IsChina() {
		return "console.amazonaws.cn"
	}
	return "console.aws.amazon.com"
}

// DefaultAptMirror is the Ubuntu archive the EC2 server installs its build
// packages from (Python headers, a compiler): in China a domestic mirror of
// the official archive (the same packages, signed with Ubuntu's keys), since
// where the Deep Learning AMI's own sources point there is UNCONFIRMED
// (cloud-init tries <region>.ec2.archive.ubuntu.com, then archive.ubuntu.com
// abroad); "" elsewhere keeps the AMI's sources. Override with
// deepseek-r1-cn:aptMirror.
func (i Info) DefaultAptMirror() string {
	if i.IsChina() {
		return "http://mirrors.aliyun.com/ubuntu/"
	}
	return ""
}

// chinaPrefixedEndpointServices are the AWS services whose VPC endpoint
// service names in the China regions start with cn.com.amazonaws instead of
// com.amazonaws. Sources: aws-cdk VPC_ENDPOINT_SERVICE_EXCEPTIONS (built from
// describe-vpc-endpoint-services in both regions), eksctl RequiresChinaPrefix,
// amazon-genomics-cli #462 (com.amazonaws.cn-northwest-1.ecr.dkr does not
// exist); monitoring (CloudWatch) is in CDK's list for both regions.
// autoscaling is UNCONFIRMED (CDK says prefixed, current eksctl not).
// Session Manager (ssm, ssmmessages, ec2messages), secretsmanager, logs, kms
// and the S3 gateway keep com.amazonaws. Names are built here rather than
// looked up with ec2.LookupVpcEndpointService, whose "service" argument
// always builds com.amazonaws.<region>.<svc> and so fails in China for the
// prefixed ones (terraform-provider-aws #17640). Override single names with
// deepseek-r1-cn:vpcEndpointServiceNames.
var chinaPrefixedEndpointServices = map[string]bool{
	"autoscaling": true, "ec2": true, "ecr.api": true, "ecr.dkr": true, "eks": true, "monitoring": true,
	"sagemaker.api": true, "sagemaker.runtime": true, "sts": true,
}

// EndpointType is the kind of VPC endpoint.
type EndpointType string

const (
	// Gateway endpoints (S3) are route-table entries and cost nothing.
	Gateway EndpointType = "Gateway"
	// Interface endpoints are network interfaces in the subnets.
	Interface EndpointType = "Interface"
)

// VPCEndpointServiceName is the service name of an AWS service's VPC
// endpoint in this region, for example com.amazonaws.cn-northwest-1.s3
// (Gateway) or cn.com.amazonaws.cn-northwest-1.ecr.dkr.
func (i Info) VPCEndpointServiceName(service string, kind EndpointType) string {
	prefix := "com.amazonaws"
	if i.IsChina() && kind == Interface && (chinaPrefixedEndpointServices[service] || service == "s3") {
		prefix = "cn.com.amazonaws"
	}
	return fmt.Sprintf("%s.%s.%s", prefix, i.Name, service)
}
