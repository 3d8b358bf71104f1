package region

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// regionCase is the expected partition facts of one region, written out by
// hand so the tests never derive an expectation from the code under test.
type regionCase struct {
	name        string
	partition   string
	dnsSuffix   string
	displayName string
	china       bool
}

var (
	cnNorth1     = regionCase{"cn-north-1", "aws-cn", "amazonaws.com.cn", "China (Beijing)", true}
	cnNorthwest1 = regionCase{"cn-northwest-1", "aws-cn", "amazonaws.com.cn", "China (Ningxia)", true}
	usEast1      = regionCase{"us-east-1", "aws", "amazonaws.com", "us-east-1", false}
	euWest1      = regionCase{"eu-west-1", "aws", "amazonaws.com", "eu-west-1", false}

	allCases    = []regionCase{cnNorth1, cnNorthwest1, usEast1, euWest1}
	chinaCases  = []regionCase{cnNorth1, cnNorthwest1}
	globalCases = []regionCase{usEast1, euWest1}
)

func mustLookup(t *testing.T, name string) Info {
	t.Helper()
	info, err := Lookup(name)
	require.NoError(t, err, "Lookup(%q)", name)
	return info
}

func TestLookup(t *testing.T) {
	for _, tc := range allCases {
		t.Run(tc.name, func(t *testing.T) {
			info := mustLookup(t, tc.name)
			assert.Equal(t, Info{Name: tc.name, Partition: tc.partition, DNSSuffix: tc.dnsSuffix, DisplayName: tc.displayName}, info)
			assert.Equal(t, tc.china, info.IsChina())
		})
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct {
		name     string
		region   string
		contains string
	}{
		{"unknown China region", "cn-south-1", "not an AWS China region"},
		{"GovCloud", "us-gov-west-1", "outside the aws and aws-cn partitions"},
		{"empty", "", "not an AWS region name"},
		{"upper case", "US-EAST-1", "not an AWS region name"},
		{"no dashes", "useast1", "not an AWS region name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Lookup(tc.region)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.contains)
			assert.Equal(t, Info{}, info)
		})
	}
}

func TestLookupUnknownChinaRegionListsChoices(t *testing.T) {
	_, err := Lookup("cn-south-1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cn-north-1 and cn-northwest-1")
}

func TestChinaRegions(t *testing.T) {
	assert.Equal(t, []string{"cn-north-1", "cn-northwest-1"}, ChinaRegions())
}

func TestARNs(t *testing.T) {
	tests := []struct {
		region        string
		arn           string // ARN("ec2", region, "123456789012", "instance/i-1")
		arnNoRegion   string // ARN("iam", "", "123456789012", "role/r")
		prefix        string
		managedPolicy string
		bucket        string
		objects       string // prefix "models/x/"
		allObjects    string // prefix ""
	}{
		{
			region:        "cn-north-1",
			arn:           "arn:aws-cn:ec2:cn-north-1:123456789012:instance/i-1",
			arnNoRegion:   "arn:aws-cn:iam::123456789012:role/r",
			prefix:        "arn:aws-cn:",
			managedPolicy: "arn:aws-cn:iam::aws:policy/AmazonSSMManagedInstanceCore",
			bucket:        "arn:aws-cn:s3:::weights",
			objects:       "arn:aws-cn:s3:::weights/models/x/*",
			allObjects:    "arn:aws-cn:s3:::weights/*",
		},
		{
			region:        "cn-northwest-1",
			arn:           "arn:aws-cn:ec2:cn-northwest-1:123456789012:instance/i-1",
			arnNoRegion:   "arn:aws-cn:iam::123456789012:role/r",
			prefix:        "arn:aws-cn:",
			managedPolicy: "arn:aws-cn:iam::aws:policy/AmazonSSMManagedInstanceCore",
			bucket:        "arn:aws-cn:s3:::weights",
			objects:       "arn:aws-cn:s3:::weights/models/x/*",
			allObjects:    "arn:aws-cn:s3:::weights/*",
		},
		{
			region:        "us-east-1",
			arn:           "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
			arnNoRegion:   "arn:aws:iam::123456789012:role/r",
			prefix:        "arn:aws:",
			managedPolicy: "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
			bucket:        "arn:aws:s3:::weights",
			objects:       "arn:aws:s3:::weights/models/x/*",
			allObjects:    "arn:aws:s3:::weights/*",
		},
		{
			region:        "eu-west-1",
			arn:           "arn:aws:ec2:eu-west-1:123456789012:instance/i-1",
			arnNoRegion:   "arn:aws:iam::123456789012:role/r",
			prefix:        "arn:aws:",
			managedPolicy: "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
			bucket:        "arn:aws:s3:::weights",
			objects:       "arn:aws:s3:::weights/models/x/*",
			allObjects:    "arn:aws:s3:::weights/*",
		},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			info := mustLookup(t, tc.region)
			assert.Equal(t, tc.arn, info.ARN("ec2", tc.region, "123456789012", "instance/i-1"))
			assert.Equal(t, tc.arnNoRegion, info.ARN("iam", "", "123456789012", "role/r"))
			assert.Equal(t, tc.prefix, info.ARNPrefix())
			assert.Equal(t, tc.managedPolicy, info.ManagedPolicyARN("AmazonSSMManagedInstanceCore"))
			assert.Equal(t, tc.bucket, info.S3BucketARN("weights"))
			assert.Equal(t, tc.objects, info.S3ObjectsARN("weights", "models/x/"))
			assert.Equal(t, tc.allObjects, info.S3ObjectsARN("weights", ""))
		})
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		region     string
		s3Host     string
		stsHost    string
		s3Endpoint string
		registry   string
		dlc        string
		pipIndex   string
	}{
		{
			region:     "cn-north-1",
			s3Host:     "s3.cn-north-1.amazonaws.com.cn",
			stsHost:    "sts.cn-north-1.amazonaws.com.cn",
			s3Endpoint: "https://s3.cn-north-1.amazonaws.com.cn",
			registry:   "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
			dlc:        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn",
			pipIndex:   "https://mirrors.aliyun.com/pypi/simple/",
		},
		{
			region:     "cn-northwest-1",
			s3Host:     "s3.cn-northwest-1.amazonaws.com.cn",
			stsHost:    "sts.cn-northwest-1.amazonaws.com.cn",
			s3Endpoint: "https://s3.cn-northwest-1.amazonaws.com.cn",
			registry:   "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
			dlc:        "727897471807.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
			pipIndex:   "https://mirrors.aliyun.com/pypi/simple/",
		},
		{
			region:     "us-east-1",
			s3Host:     "s3.us-east-1.amazonaws.com",
			stsHost:    "sts.us-east-1.amazonaws.com",
			s3Endpoint: "https://s3.us-east-1.amazonaws.com",
			registry:   "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			dlc:        "763104351884.dkr.ecr.us-east-1.amazonaws.com",
			pipIndex:   "https://pypi.org/simple/",
		},
		{
			region:     "eu-west-1",
			s3Host:     "s3.eu-west-1.amazonaws.com",
			stsHost:    "sts.eu-west-1.amazonaws.com",
			s3Endpoint: "https://s3.eu-west-1.amazonaws.com",
			registry:   "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
			dlc:        "763104351884.dkr.ecr.eu-west-1.amazonaws.com",
			pipIndex:   "https://pypi.org/simple/",
		},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			info := mustLookup(t, tc.region)
			assert.Equal(t, tc.s3Host, info.ServiceEndpoint("s3"))
			assert.Equal(t, tc.stsHost, info.ServiceEndpoint("sts"))
			assert.Equal(t, tc.s3Endpoint, info.S3Endpoint())
			assert.Equal(t, tc.registry, info.ECRRegistry("123456789012"))
			assert.Equal(t, tc.dlc, info.DeepLearningContainersRegistry())
			assert.Equal(t, tc.pipIndex, info.DefaultPipIndex())
			if info.IsChina() {
				assert.Equal(t, "console.amazonaws.cn", info.ConsoleHost())
				assert.Equal(t, "http://mirrors.aliyun.com/ubuntu/", info.DefaultAptMirror())
			} else {
				assert.Equal(t, "console.aws.amazon.com", info.ConsoleHost())
				assert.Empty(t, info.DefaultAptMirror(), "elsewhere the AMI's own Ubuntu sources")
			}
		})
	}
}

func TestIsRegionalECRImage(t *testing.T) {
	const cnImage = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm/vllm-openai:v0.11.0"
	tests := []struct {
		name   string
		region string
		image  string
		want   bool
	}{
		{"own region ECR", "cn-northwest-1", cnImage, true},
		{"own region ECR, digest", "cn-northwest-1", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm@sha256:abcd", true},
		{"own region ECR, no tag", "cn-northwest-1", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm", true},
		{"other China region", "cn-north-1", cnImage, false},
		{"Docker Hub explicit", "cn-northwest-1", "docker.io/vllm/vllm-openai:latest", false},
		{"Docker Hub implicit", "cn-northwest-1", "vllm/vllm-openai", false},
		{"global DNS suffix", "cn-northwest-1", "727897471807.dkr.ecr.cn-northwest-1.amazonaws.com/x:y", false},
		{"11-digit account", "cn-northwest-1", "12345678901.dkr.ecr.cn-northwest-1.amazonaws.com.cn/x:y", false},
		{"13-digit account", "cn-northwest-1", "1234567890123.dkr.ecr.cn-northwest-1.amazonaws.com.cn/x:y", false},
		{"registry host only", "cn-northwest-1", "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn", false},
		{"empty", "cn-northwest-1", "", false},
		{"global region ECR", "us-east-1", "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm:1", true},
		{"China image in global region", "us-east-1", cnImage, false},
		{"global region, China suffix", "us-east-1", "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn/vllm:1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := mustLookup(t, tc.region)
			assert.Equal(t, tc.want, info.IsRegionalECRImage(tc.image), "image %q in %s", tc.image, tc.region)
		})
	}
}

func TestECRRepositoryARN(t *testing.T) {
	const host = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn"
	tests := []struct {
		name   string
		region string
		image  string
		want   string
		wantOK bool
	}{
		{"tag", "cn-northwest-1", host + "/vllm-openai:v0.11.0",
			"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/vllm-openai", true},
		{"digest", "cn-northwest-1", host + "/vllm-openai@sha256:0123456789abcdef",
			"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/vllm-openai", true},
		{"nested path with tag", "cn-northwest-1", host + "/mirror/vllm/vllm-openai:v0.11.0",
			"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/mirror/vllm/vllm-openai", true},
		{"nested path with digest", "cn-northwest-1", host + "/mirror/vllm/vllm-openai@sha256:0123",
			"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/mirror/vllm/vllm-openai", true},
		{"no tag", "cn-northwest-1", host + "/vllm-openai",
			"arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/vllm-openai", true},
		{"global region", "us-east-1", "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm/vllm-openai:v0.11.0",
			"arn:aws:ecr:us-east-1:123456789012:repository/vllm/vllm-openai", true},
		{"other region", "cn-north-1", host + "/vllm-openai:v0.11.0", "", false},
		{"Docker Hub", "cn-northwest-1", "docker.io/vllm/vllm-openai:latest", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := mustLookup(t, tc.region)
			arn, ok := info.ECRRepositoryARN(tc.image)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.want, arn)
		})
	}
}

// A reference may carry both a tag and a digest (name:tag@sha256:...); the
// repository is still the name alone.
func TestECRRepositoryARNTagAndDigest(t *testing.T) {
	info := mustLookup(t, "cn-northwest-1")
	arn, ok := info.ECRRepositoryARN("123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm/vllm-openai:v0.11.0@sha256:0123")
	assert.True(t, ok)
	assert.Equal(t, "arn:aws-cn:ecr:cn-northwest-1:123456789012:repository/vllm/vllm-openai", arn)
}

// An image reference with an empty repository is not an image.
func TestIsRegionalECRImageEmptyRepository(t *testing.T) {
	info := mustLookup(t, "cn-northwest-1")
	assert.False(t, info.IsRegionalECRImage("123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/"))
}

func TestServicePrincipals(t *testing.T) {
	tests := []struct {
		region  string
		service string
		want    []string
	}{
		{"cn-north-1", "ec2", []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"}},
		{"cn-northwest-1", "ec2", []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"}},
		{"us-east-1", "ec2", []string{"ec2.amazonaws.com"}},
		{"eu-west-1", "ec2", []string{"ec2.amazonaws.com"}},
		{"cn-north-1", "eks", []string{"eks.amazonaws.com"}},
		{"cn-northwest-1", "eks", []string{"eks.amazonaws.com"}},
		{"cn-northwest-1", "sagemaker", []string{"sagemaker.amazonaws.com"}},
		{"us-east-1", "eks", []string{"eks.amazonaws.com"}},
		{"us-east-1", "sagemaker", []string{"sagemaker.amazonaws.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.region+"/"+tc.service, func(t *testing.T) {
			assert.Equal(t, tc.want, mustLookup(t, tc.region).ServicePrincipals(tc.service))
		})
	}
}

// IAM rejects eks.amazonaws.com.cn and sagemaker.amazonaws.com.cn.
func TestServicePrincipalsNeverChinaSuffixForEKSAndSageMaker(t *testing.T) {
	for _, tc := range allCases {
		for _, svc := range []string{"eks", "sagemaker"} {
			t.Run(tc.name+"/"+svc, func(t *testing.T) {
				for _, p := range mustLookup(t, tc.name).ServicePrincipals(svc) {
					assert.False(t, strings.HasSuffix(p, ".cn"), "principal %q", p)
				}
			})
		}
	}
}

func TestVPCEndpointServiceName(t *testing.T) {
	type ep struct {
		service string
		kind    EndpointType
		// prefix is what comes before .<region>.<service> in China.
		prefix string
	}
	china := []ep{
		{"ssm", Interface, "com.amazonaws"},
		{"ssmmessages", Interface, "com.amazonaws"},
		{"ec2messages", Interface, "com.amazonaws"},
		{"secretsmanager", Interface, "com.amazonaws"},
		{"logs", Interface, "com.amazonaws"},
		{"kms", Interface, "com.amazonaws"},
		{"s3", Gateway, "com.amazonaws"},
		{"ecr.api", Interface, "cn.com.amazonaws"},
		{"ecr.dkr", Interface, "cn.com.amazonaws"},
		{"sts", Interface, "cn.com.amazonaws"},
		{"ec2", Interface, "cn.com.amazonaws"},
		{"eks", Interface, "cn.com.amazonaws"},
		{"sagemaker.api", Interface, "cn.com.amazonaws"},
		{"sagemaker.runtime", Interface, "cn.com.amazonaws"},
		{"s3", Interface, "cn.com.amazonaws"},
		{"monitoring", Interface, "cn.com.amazonaws"},
		{"autoscaling", Interface, "cn.com.amazonaws"},
	}
	for _, r := range chinaCases {
		for _, e := range china {
			t.Run(r.name+"/"+e.service+"/"+string(e.kind), func(t *testing.T) {
				want := e.prefix + "." + r.name + "." + e.service
				assert.Equal(t, want, mustLookup(t, r.name).VPCEndpointServiceName(e.service, e.kind))
			})
		}
	}
	for _, r := range globalCases {
		for _, e := range china {
			t.Run(r.name+"/"+e.service+"/"+string(e.kind), func(t *testing.T) {
				want := "com.amazonaws." + r.name + "." + e.service
				assert.Equal(t, want, mustLookup(t, r.name).VPCEndpointServiceName(e.service, e.kind))
			})
		}
	}
}

func TestVPCEndpointServiceNameExamples(t *testing.T) {
	// Spelled out in full, as they appear in the AWS console.
	tests := []struct {
		region, service string
		kind            EndpointType
		want            string
	}{
		{"cn-northwest-1", "s3", Gateway, "com.amazonaws.cn-northwest-1.s3"},
		{"cn-northwest-1", "ecr.dkr", Interface, "cn.com.amazonaws.cn-northwest-1.ecr.dkr"},
		{"cn-north-1", "ssm", Interface, "com.amazonaws.cn-north-1.ssm"},
		{"us-east-1", "ecr.dkr", Interface, "com.amazonaws.us-east-1.ecr.dkr"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, mustLookup(t, tc.region).VPCEndpointServiceName(tc.service, tc.kind))
		})
	}
}

func TestOfferedGPUInstanceTypes(t *testing.T) {
	mustHave := []string{"g4dn.xlarge", "g5.xlarge", "g5.48xlarge", "p3.2xlarge"}
	mustNotHavePrefix := []string{"g6", "p4d", "p5", "inf2", "trn1"}
	for _, tc := range chinaCases {
		t.Run(tc.name, func(t *testing.T) {
			types := mustLookup(t, tc.name).OfferedGPUInstanceTypes()
			for _, want := range mustHave {
				assert.Contains(t, types, want)
			}
			for _, typ := range types {
				for _, p := range mustNotHavePrefix {
					assert.False(t, strings.HasPrefix(typ, p+"."), "%s offers %s", tc.name, typ)
				}
			}
			assert.IsNonDecreasing(t, types, "sorted by name")
		})
	}
	for _, tc := range globalCases {
		t.Run(tc.name, func(t *testing.T) {
			types := mustLookup(t, tc.name).OfferedGPUInstanceTypes()
			for _, want := range append(mustHave, "g5.12xlarge", "p3.16xlarge") {
				assert.Contains(t, types, want)
			}
		})
	}
	t.Run("returns a copy", func(t *testing.T) {
		info := mustLookup(t, "cn-north-1")
		first := info.OfferedGPUInstanceTypes()
		require.NotEmpty(t, first)
		first[0] = "mutated"
		assert.NotContains(t, info.OfferedGPUInstanceTypes(), "mutated")
	})
}

func TestOfferedSageMakerInstanceTypes(t *testing.T) {
	for _, name := range []string{"cn-northwest-1", "us-east-1"} {
		t.Run(name, func(t *testing.T) {
			types := mustLookup(t, name).OfferedSageMakerInstanceTypes()
			for _, want := range []string{"ml.g4dn.xlarge", "ml.g5.12xlarge", "ml.g5.48xlarge", "ml.p3.2xlarge"} {
				assert.Contains(t, types, want)
			}
			for _, typ := range types {
				assert.True(t, strings.HasPrefix(typ, "ml."), typ)
			}
			assert.Len(t, types, len(mustLookup(t, name).OfferedGPUInstanceTypes()))
		})
	}
}

func TestIRSAAudienceIsGlobalInChinaToo(t *testing.T) {
	// The pod identity webhook issues tokens for sts.amazonaws.com in every
	// partition; eksctl #1910 fixed IRSA in China by dropping the .cn audience.
	for _, name := range []string{"cn-north-1", "cn-northwest-1", "us-east-1"} {
		assert.Equal(t, "sts.amazonaws.com", mustLookup(t, name).IRSAAudience(), name)
	}
}

func TestEKSManagedPolicyARNs(t *testing.T) {
	info := mustLookup(t, "cn-northwest-1")
	var got []string
	for _, p := range append(append([]string{}, EKSClusterPolicies...), EKSNodePolicies...) {
		got = append(got, info.ManagedPolicyARN(p))
	}
	assert.Equal(t, []string{
		"arn:aws-cn:iam::aws:policy/AmazonEKSClusterPolicy",
		"arn:aws-cn:iam::aws:policy/AmazonEKSWorkerNodePolicy",
		"arn:aws-cn:iam::aws:policy/AmazonEKS_CNI_Policy",
		"arn:aws-cn:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
		"arn:aws-cn:iam::aws:policy/AmazonSSMManagedInstanceCore",
	}, got)
}

func TestOfferingConfirmed(t *testing.T) {
	tests := []struct {
		region string
		want   bool
	}{
		{"cn-north-1", true},
		{"cn-northwest-1", false},
		{"us-east-1", true},
	}
	for _, tc := range tests {
		t.Run(tc.region, func(t *testing.T) {
			assert.Equal(t, tc.want, mustLookup(t, tc.region).OfferingConfirmed())
		})
	}
}

func TestOnDemandPrice(t *testing.T) {
	tests := []struct {
		name         string
		region       string
		instanceType string
		perHour      float64
		currency     string
		priceRegion  string
		noteEmpty    bool
	}{
		{"Beijing g5.xlarge", "cn-north-1", "g5.xlarge", 9.51389, "CNY", "cn-north-1", true},
		{"Beijing g5.48xlarge", "cn-north-1", "g5.48xlarge", 154.03795, "CNY", "cn-north-1", true},
		{"Beijing g4dn.xlarge", "cn-north-1", "g4dn.xlarge", 5.223, "CNY", "cn-north-1", true},
		{"Beijing p3.2xlarge", "cn-north-1", "p3.2xlarge", 36.078, "CNY", "cn-north-1", true},
		{"Ningxia uses Beijing price", "cn-northwest-1", "g5.xlarge", 9.51389, "CNY", "cn-north-1", false},
		{"Ningxia g5.48xlarge", "cn-northwest-1", "g5.48xlarge", 154.03795, "CNY", "cn-north-1", false},
		{"us-east-1 g5.48xlarge", "us-east-1", "g5.48xlarge", 16.288, "USD", "us-east-1", true},
		{"us-east-1 g4dn.xlarge", "us-east-1", "g4dn.xlarge", 0.526, "USD", "us-east-1", true},
		{"eu-west-1 uses us-east-1 price", "eu-west-1", "g5.48xlarge", 16.288, "USD", "us-east-1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := mustLookup(t, tc.region)
			p, ok := info.OnDemandPrice(tc.instanceType)
			require.True(t, ok)
			assert.Equal(t, tc.instanceType, p.InstanceType)
			assert.InDelta(t, tc.perHour, p.PerHour, 1e-9)
			assert.Equal(t, tc.currency, p.Currency)
			assert.Equal(t, tc.priceRegion, p.Region)
			assert.NotEmpty(t, p.AsOf)
			assert.Contains(t, p.Source, "karpenter-provider-aws")
			note := info.PriceBasisNote(p)
			if tc.noteEmpty {
				assert.Empty(t, note)
			} else {
				assert.Contains(t, note, "deepseek-r1-cn:pricePerHour")
				assert.Contains(t, note, tc.region)
				assert.Contains(t, note, tc.priceRegion)
			}
		})
	}
}

func TestOnDemandPriceUnknownType(t *testing.T) {
	for _, tc := range allCases {
		for _, typ := range []string{"p4d.24xlarge", "g6.xlarge", "", "G5.XLARGE"} {
			t.Run(tc.name+"/"+typ, func(t *testing.T) {
				p, ok := mustLookup(t, tc.name).OnDemandPrice(typ)
				assert.False(t, ok)
				assert.Equal(t, Price{}, p)
			})
		}
	}
}

func TestPriceBasisNoteEmptyRegion(t *testing.T) {
	assert.Empty(t, mustLookup(t, "cn-northwest-1").PriceBasisNote(Price{}))
}

// producedStrings is every string the Info methods produce for a region.
func producedStrings(t *testing.T, info Info) []string {
	t.Helper()
	out := []string{
		info.Partition, info.DNSSuffix, info.DisplayName,
		info.ARN("ec2", info.Name, "123456789012", "instance/i-1"),
		info.ARN("iam", "", "123456789012", "role/r"),
		info.ARNPrefix(),
		info.ManagedPolicyARN("AmazonSSMManagedInstanceCore"),
		info.ManagedPolicyARN("AmazonEKSWorkerNodePolicy"),
		info.S3BucketARN("weights"),
		info.S3ObjectsARN("weights", "models/"),
		info.S3Endpoint(),
		info.ECRRegistry("123456789012"),
		info.DeepLearningContainersRegistry(),
		info.DefaultPipIndex(),
	}
	for _, svc := range []string{"s3", "sts", "ec2", "ecr.api", "ecr.dkr", "ssm", "secretsmanager", "logs", "kms", "eks", "sagemaker.api"} {
		out = append(out, info.ServiceEndpoint(svc))
		out = append(out, info.VPCEndpointServiceName(svc, Interface))
		out = append(out, info.VPCEndpointServiceName(svc, Gateway))
	}
	for _, svc := range []string{"ec2", "eks", "sagemaker", "ssm", "lambda"} {
		out = append(out, info.ServicePrincipals(svc)...)
	}
	image := info.ECRRegistry("123456789012") + "/vllm/vllm-openai:v0.11.0"
	arn, ok := info.ECRRepositoryARN(image)
	require.True(t, ok, "own-region image %q", image)
	out = append(out, arn)
	for _, typ := range info.OfferedGPUInstanceTypes() {
		p, ok := info.OnDemandPrice(typ)
		require.True(t, ok, "offered type %s has no price", typ)
		out = append(out, p.Source, info.PriceBasisNote(p))
	}
	return out
}

func TestNoPartitionLeaks(t *testing.T) {
	for _, tc := range chinaCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range producedStrings(t, mustLookup(t, tc.name)) {
				assert.NotContains(t, s, "arn:aws:", "global ARN in %s", tc.name)
			}
		})
	}
	for _, tc := range globalCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range producedStrings(t, mustLookup(t, tc.name)) {
				for _, bad := range []string{"amazonaws.com.cn", "aws-cn", "cn.com.amazonaws", "aliyun"} {
					assert.NotContains(t, s, bad, "China string in %s", tc.name)
				}
			}
		})
	}
}
