package plan

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// Catalog is what the stand-in AWS knows of the planned region: its
// availability zones and which EC2 instance types each zone offers. The data
// sources the program reads are answered from it the way the EC2 and SSM APIs
// would answer them for that input, "nothing" and errors included: a stand-in
// that says yes to every question hides the bugs the plan exists to catch
// (EC2 knows no ml.* types; a region can lack a type, or offer it in one zone).
type Catalog struct {
	// Zones are the zone names of the region, in the order EC2 lists them.
	Zones []string
	// Offerings maps an EC2 instance type to the zones that offer it. A
	// type that is missing is offered nowhere.
	Offerings map[string][]string
	// SSMParameters maps the parameters that exist to their values. A
	// parameter that is missing is "ParameterNotFound", as SSM says.
	SSMParameters map[string]string
	// AddonVersions maps the EKS add-ons the region offers to the version
	// EKS marks as the default for a Kubernetes version. An add-on that is
	// missing is not offered: DescribeAddonVersions lists nothing, and the
	// data source reports an empty result.
	AddonVersions map[string]string
}

// regionZones are the zone names the stand-in gives each region. The China
// ones are the zones AWS documents for cn-north-1 (a, b, d) and
// cn-northwest-1 (a, b, c); zone names map to different physical zones per
// account, which is why the program asks instead of assuming.
var regionZones = map[string][]string{
	"cn-north-1":     {"cn-north-1a", "cn-north-1b", "cn-north-1d"},
	"cn-northwest-1": {"cn-northwest-1a", "cn-northwest-1b", "cn-northwest-1c"},
}

// generalPurposeFamilies are the CPU families the stand-in offers in every
// zone (the EKS system node group runs on one of them). Both China regions
// have had m5, c5, r5 and t3 since they opened (Karpenter's cn-north-1 price
// table lists them).
var generalPurposeFamilies = []string{"m5", "c5", "r5", "t3"}

var generalPurposeSizes = []string{"large", "xlarge", "2xlarge", "4xlarge"}

// DefaultCatalog is the stand-in for a region: every zone offers the
// region's GPU types (the built-in list, or the stack's offeredInstanceTypes,
// which is the user's statement of what AWS offers them) and the common CPU
// types; ml.* types are SageMaker's, which EC2 does not know; nothing else
// is offered. The public parameters of the Deep Learning AMI and the EKS
// optimized AMIs exist.
func DefaultCatalog(regionName string, offeredOverride []string) *Catalog {
	zones, ok := regionZones[regionName]
	if !ok {
		zones = []string{regionName + "a", regionName + "b", regionName + "c"}
	}
	c := &Catalog{Zones: append([]string(nil), zones...), Offerings: map[string][]string{}, SSMParameters: map[string]string{},
		AddonVersions: map[string]string{}}
	for name, v := range standinAddonVersions {
		c.AddonVersions[name] = v
	}
	gpus := offeredOverride
	if len(gpus) == 0 {
		if info, err := region.Lookup(regionName); err == nil {
			gpus = info.OfferedGPUInstanceTypes()
		}
	}
	for _, t := range gpus {
		if strings.HasPrefix(t, "ml.") {
			continue
		}
		c.Offerings[t] = zones
	}
	for _, f := range generalPurposeFamilies {
		for _, s := range generalPurposeSizes {
			c.Offerings[f+"."+s] = zones
		}
	}
	return c
}

// standinAddonVersions are the add-ons the stand-in offers in every region,
// with the default version it answers: the program's pins of the node
// add-ons (components/eks DefaultAddonVersions, from the EKS user guide's
// tables) and, for the CloudWatch Observability add-on, the chart release
// read (aws-observability/helm-charts amazon-cloudwatch-observability-6.4.0)
// with a build number of the stand-in's own. That EKS offers the latter
// in the China regions is UNCONFIRMED; a test removes it from the catalog to
// see the program refuse.
var standinAddonVersions = map[string]string{
	"vpc-cni":                         "v1.20.1-eksbuild.3",
	"coredns":                         "v1.12.4-eksbuild.1",
	"kube-proxy":                      "v1.33.3-eksbuild.6",
	"amazon-cloudwatch-observability": "v6.4.0-eksbuild.1",
}

var kubernetesVersion = regexp.MustCompile(`^1\.\d{2}$`)

// addonVersion answers eks:DescribeAddonVersions as the AWS provider's
// aws_eks_addon_version data source reads it (terraform-provider-aws
// internal/service/eks/addon_version_data_source.go): the default version
// for the Kubernetes version, or the provider's error when EKS lists none.
func (c *Catalog) addonVersion(args resource.PropertyMap) (resource.PropertyMap, error) {
	name, k8s := "", ""
	if v, ok := args["addonName"]; ok && v.IsString() {
		name = v.StringValue()
	}
	if v, ok := args["kubernetesVersion"]; ok && v.IsString() {
		k8s = v.StringValue()
	}
	version, ok := c.AddonVersions[name]
	if !ok || !kubernetesVersion.MatchString(k8s) {
		return nil, fmt.Errorf("reading EKS Add-On version info (%s, %s): empty result", name, k8s)
	}
	return resource.NewPropertyMapFromMap(map[string]any{
		"id": name, "addonName": name, "kubernetesVersion": k8s, "version": version,
	}), nil
}

// publicAMIParameter is the shape of AWS's public AMI parameters
// (/aws/service/deeplearning/..., /aws/service/eks/optimized-ami/...).
var publicAMIParameter = regexp.MustCompile(`^/aws/service/(deeplearning/ami|eks/optimized-ami)/[A-Za-z0-9._/-]+$`)

// ssmParameter answers ssm:GetParameter: the catalog's own parameters, and
// the public AMI parameters; anything else does not exist.
func (c *Catalog) ssmParameter(name string) (string, error) {
	if v, ok := c.SSMParameters[name]; ok {
		return v, nil
	}
	if publicAMIParameter.MatchString(name) {
		return "ami-0123456789abcdef0", nil
	}
	return "", fmt.Errorf("reading SSM Parameter (%s): operation error SSM: GetParameter, ParameterNotFound", name)
}

// instanceTypeOfferings answers ec2:DescribeInstanceTypeOfferings with the
// filters the AWS provider passes (instance-type and location; values may
// hold * wildcards). An unknown filter name is the API's error. The rows are
// aligned: instanceTypes[i] is offered in locations[i].
func (c *Catalog) instanceTypeOfferings(args resource.PropertyMap) (resource.PropertyMap, error) {
	locationType := "region"
	if v, ok := args["locationType"]; ok && v.IsString() {
		locationType = v.StringValue()
	}
	if locationType != "availability-zone" && locationType != "region" {
		return nil, fmt.Errorf("reading EC2 Instance Type Offerings: InvalidParameterValue: location type %q is not supported by the stand-in", locationType)
	}
	var types, locations []string
	if v, ok := args["filters"]; ok && v.IsArray() {
		for _, f := range v.ArrayValue() {
			obj := f.ObjectValue()
			name := obj["name"].StringValue()
			var values []string
			for _, x := range obj["values"].ArrayValue() {
				values = append(values, x.StringValue())
			}
			switch name {
			case "instance-type":
				types = append(types, values...)
			case "location":
				locations = append(locations, values...)
			default:
				return nil, fmt.Errorf("reading EC2 Instance Type Offerings: InvalidParameterValue: The filter '%s' is invalid", name)
			}
		}
	}
	matches := func(patterns []string, s string) bool {
		if len(patterns) == 0 {
			return true
		}
		for _, p := range patterns {
			if ok, _ := pathMatch(p, s); ok {
				return true
			}
		}
		return false
	}
	offered := make([]string, 0, len(c.Offerings))
	for t := range c.Offerings {
		offered = append(offered, t)
	}
	sort.Strings(offered)
	var outTypes, outLocations, outLocationTypes []any
	for _, t := range offered {
		if !matches(types, t) {
			continue
		}
		if locationType == "region" {
			outTypes, outLocations, outLocationTypes = append(outTypes, t), append(outLocations, "stand-in-region"), append(outLocationTypes, locationType)
			continue
		}
		for _, z := range c.Offerings[t] {
			if slices.Contains(c.Zones, z) && matches(locations, z) {
				outTypes = append(outTypes, t)
				outLocations = append(outLocations, z)
				outLocationTypes = append(outLocationTypes, locationType)
			}
		}
	}
	return resource.NewPropertyMapFromMap(map[string]any{
		"id":            "stand-in",
		"instanceTypes": nonNil(outTypes),
		"locations":     nonNil(outLocations),
		"locationTypes": nonNil(outLocationTypes),
	}), nil
}

// availabilityZones answers ec2:DescribeAvailabilityZones for the zones of
// the region (all available).
func (c *Catalog) availabilityZones() resource.PropertyMap {
	names := make([]any, len(c.Zones))
	ids := make([]any, len(c.Zones))
	for i, z := range c.Zones {
		names[i] = z
		ids[i] = fmt.Sprintf("stand-in-az%d", i+1)
	}
	return resource.NewPropertyMapFromMap(map[string]any{"id": "stand-in", "names": names, "zoneIds": ids})
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// pathMatch is a * wildcard match, as EC2 filters take them.
func pathMatch(pattern, s string) (bool, error) {
	re, err := regexp.Compile("^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$")
	if err != nil {
		return false, err
	}
	return re.MatchString(s), nil
}

var amiID = regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)

// ami answers ec2:DescribeImages for an image-id filter: an AMI of the
// right shape exists, with the root device Ubuntu AMIs have; anything else
// is the data source's "no results" error.
func (c *Catalog) ami(args resource.PropertyMap) (resource.PropertyMap, error) {
	var ids []string
	if v, ok := args["filters"]; ok && v.IsArray() {
		for _, f := range v.ArrayValue() {
			obj := f.ObjectValue()
			if obj["name"].StringValue() == "image-id" {
				for _, x := range obj["values"].ArrayValue() {
					ids = append(ids, x.StringValue())
				}
			}
		}
	}
	if len(ids) != 1 || !amiID.MatchString(ids[0]) {
		return nil, fmt.Errorf("reading EC2 AMIs: Your query returned no results. Please change your search criteria and try again")
	}
	return resource.NewPropertyMapFromMap(map[string]any{
		"id": ids[0], "imageId": ids[0], "architecture": "x86_64", "rootDeviceName": "/dev/sda1",
		"rootDeviceType": "ebs", "state": "available",
	}), nil
}
