package stacks

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

// HoursPerMonth is the month the monthly estimate uses (365 x 24 / 12).
const HoursPerMonth = 730

// Deployment is every decision the program makes before it registers a
// resource: where, what, on which hardware, how vLLM runs there, and what it
// costs. The offline plan prints it.
type Deployment struct {
	Config   *Config
	Region   region.Info
	Model    sizing.Model
	Instance sizing.InstanceType
	Decision sizing.Decision
	VLLM     vllm.Version
	Cost     Cost
	// AMIParameter is the SSM parameter the AMI is resolved from, when no
	// AMI id is pinned.
	AMIParameter  string
	RootVolumeGiB int
	WeightsPrefix string
	PipIndexURL   string
}

// Cost is the on-demand estimate of the GPU instance.
type Cost struct {
	// Known is false when no price could be sourced for the instance type
	// in this region and none is configured.
	Known    bool    `json:"known"`
	PerHour  float64 `json:"perHour,omitempty"`
	PerMonth float64 `json:"perMonth,omitempty"`
	Currency string  `json:"currency,omitempty"`
	// Basis says where the price comes from.
	Basis string   `json:"basis,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Default AMIs: the Deep Learning Base AMI with NVIDIA's open kernel driver
// (Turing and newer: T4, A10G). Whether it is published in the China regions
// is UNCONFIRMED; deepseek-r1-cn:amiId or amiSsmParameter override it.
const defaultAMIParameter = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"

// Resolve applies the rules that need the catalog, the region and sizing.
func Resolve(c *Config) (*Deployment, error) {
	reg, err := region.Lookup(c.Region)
	if err != nil {
		return nil, &ConfigError{Key: "aws:region", Value: c.Region, Msg: err.Error()}
	}
	d := &Deployment{Config: c, Region: reg}
	var errs []error
	fail := func(k, v, format string, a ...any) {
		errs = append(errs, &ConfigError{Key: key(k), Value: v, Msg: fmt.Sprintf(format, a...)})
	}

	d.Model, err = sizing.LookupModel(c.Model)
	if err != nil {
		fail("model", c.Model, "%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("unknown model %q: ", c.Model)))
	} else if d.Model.Unservable != "" {
		fail("model", c.Model, "cannot be served in %s: %s", reg.Name, d.Model.Unservable)
	}
	d.VLLM, err = vllm.ParseVersion(c.VLLMVersion)
	if err != nil {
		fail("vllmVersion", c.VLLMVersion, "must be a vLLM release such as 0.11.0")
	}
	if c.VLLMImage != "" && !reg.IsRegionalECRImage(c.VLLMImage) {
		fail("vllmImage", c.VLLMImage, "must be an image in a private ECR registry of %s (%s/<repository>:<tag>): "+
			"Docker Hub, ghcr.io and nvcr.io are not reachable from a private subnet in China. "+
			"Mirror the image into ECR first (see README)", reg.Name, reg.ECRRegistry("<account>"))
	}
	if c.KMSKeyARN != "" && !strings.HasPrefix(c.KMSKeyARN, reg.ARNPrefix()+"kms:"+reg.Name+":") {
		fail("kmsKeyArn", c.KMSKeyARN, "must be a KMS key ARN in partition %s, such as %s", reg.Partition,
			reg.ARN("kms", reg.Name, "123456789012", "key/<key-id>"))
	}
	for svc, name := range c.VpcEndpointServiceNames {
		if !strings.HasSuffix(name, "."+reg.Name+"."+svc) {
			fail("vpcEndpointServiceNames", svc+"="+name, "must end in .%s.%s", reg.Name, svc)
		}
	}
	for _, az := range c.AvailabilityZones {
		if !strings.HasPrefix(az, reg.Name) {
			fail("availabilityZones", az, "is not a zone of %s", reg.Name)
		}
	}
	offered, err := offeredTypes(c, reg)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	opts := sizing.Options{
		GPUMemoryUtilization: c.GPUMemoryUtilization,
		MinContextLength:     c.MinContextLength,
		MaxModelLen:          c.MaxModelLen,
	}
	candidates := byPrice(reg, offered)
	if c.InstanceType == "" {
		dec, ok := sizing.FirstFit(d.Model, candidates, opts)
		if !ok {
			return nil, &ConfigError{Key: key("model"), Value: c.Model, Msg: fmt.Sprintf(
				"fits no GPU instance type offered in %s (%s) with minContextLength %d%s",
				reg.Name, strings.Join(offered, ", "), opts.MinContextLength, maxLenHint(c))}
		}
		d.Decision = dec
	} else {
		t, err := sizing.LookupInstanceType(c.InstanceType)
		if err != nil {
			return nil, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: strings.TrimPrefix(err.Error(), fmt.Sprintf("%q is ", c.InstanceType))}
		}
		if !slices.Contains(offered, c.InstanceType) {
			return nil, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: fmt.Sprintf(
				"is not offered in %s, which has %s (override the list with offeredInstanceTypes if AWS added it)",
				reg.Name, strings.Join(offered, ", "))}
		}
		dec, err := sizing.Decide(d.Model, t, opts)
		if err != nil {
			msg := err.Error()
			var fe *sizing.FitError
			if errors.As(err, &fe) {
				msg = "cannot serve " + c.Model + ": " + fe.Reason
			}
			if best, ok := sizing.FirstFit(d.Model, candidates, opts); ok {
				msg += fmt.Sprintf("; the cheapest instance type offered in %s that fits is %s (%s)",
					reg.Name, best.InstanceType, best.Summary())
			} else {
				msg += fmt.Sprintf("; no instance type offered in %s fits it", reg.Name)
			}
			return nil, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: msg}
		}
		d.Decision = dec
	}
	d.Instance, _ = sizing.LookupInstanceType(d.Decision.InstanceType)

	if err := d.VLLM.CheckGPU(d.Instance.GPU); err != nil {
		return nil, &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion, Msg: fmt.Sprintf("on %s: %v", d.Instance.Name, err)}
	}
	if c.AMIID == "" {
		d.AMIParameter = c.AMISSMParameter
		if d.AMIParameter == "" {
			if !d.Instance.GPU.OpenKernelDriver {
				return nil, &ConfigError{Key: key("instanceType"), Value: d.Instance.Name, Msg: fmt.Sprintf(
					"has %s GPUs, which NVIDIA's open kernel driver in the default Deep Learning AMI does not support: "+
						"set deepseek-r1-cn:amiId (or amiSsmParameter) to an Ubuntu AMI with the proprietary NVIDIA driver, "+
						"or use a g4dn/g5 instance type", d.Instance.GPU.Name)}
			}
			d.AMIParameter = defaultAMIParameter
		}
	}

	d.RootVolumeGiB = c.RootVolumeGiB
	minRoot := MinRootVolumeGiB(d.Decision)
	if d.RootVolumeGiB == 0 {
		d.RootVolumeGiB = minRoot
	} else if d.RootVolumeGiB < minRoot {
		return nil, &ConfigError{Key: key("rootVolumeGb"), Value: fmt.Sprint(c.RootVolumeGiB), Msg: fmt.Sprintf(
			"is too small for the AMI, vLLM and %.0f GiB of weights: use at least %d", d.Decision.WeightsGiB, minRoot)}
	}
	d.WeightsPrefix = c.WeightsPrefix
	if d.WeightsPrefix == "" && c.WeightsSource == "s3" {
		d.WeightsPrefix = "models/" + d.Model.ModelScopeID + "/"
	}
	d.PipIndexURL = c.PipIndexURL
	if d.PipIndexURL == "" {
		d.PipIndexURL = reg.DefaultPipIndex()
	}
	d.Cost = estimate(reg, d.Decision.InstanceType, c.PricePerHour)
	return d, nil
}

// MinRootVolumeGiB leaves 100 GiB for the Deep Learning AMI, CUDA, the vLLM
// environment and logs, plus room for the weights with 10% to spare, since
// EBS-only types (and any instance whose NVMe is not mounted) keep them there.
func MinRootVolumeGiB(d sizing.Decision) int {
	return 100 + int(math.Ceil(d.WeightsGiB*1.1/10))*10
}

func maxLenHint(c *Config) string {
	if c.MaxModelLen > 0 {
		return fmt.Sprintf(" and maxModelLen %d", c.MaxModelLen)
	}
	return ""
}

// offeredTypes is the region's sizable GPU instance types, or the configured
// override, checked against the catalog.
func offeredTypes(c *Config, reg region.Info) ([]string, error) {
	if len(c.OfferedInstanceTypes) == 0 {
		return reg.OfferedGPUInstanceTypes(), nil
	}
	var errs []error
	for _, t := range c.OfferedInstanceTypes {
		if _, err := sizing.LookupInstanceType(t); err != nil {
			errs = append(errs, &ConfigError{Key: key("offeredInstanceTypes"), Value: t, Msg: "is not in the sizing catalog: " +
				strings.Join(sizing.InstanceTypeNames(), ", ")})
		}
	}
	out := append([]string(nil), c.OfferedInstanceTypes...)
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// byPrice orders instance types cheapest first; types without a price go
// last, smallest GPU memory first.
func byPrice(reg region.Info, names []string) []sizing.InstanceType {
	out := make([]sizing.InstanceType, 0, len(names))
	for _, n := range names {
		if t, err := sizing.LookupInstanceType(n); err == nil {
			out = append(out, t)
		}
	}
	price := func(t sizing.InstanceType) float64 {
		if p, ok := reg.OnDemandPrice(t.Name); ok {
			return p.PerHour
		}
		return math.Inf(1)
	}
	sort.SliceStable(out, func(i, j int) bool {
		pi, pj := price(out[i]), price(out[j])
		if pi != pj {
			return pi < pj
		}
		return out[i].GPUMemoryMiB() < out[j].GPUMemoryMiB()
	})
	return out
}

func estimate(reg region.Info, instanceType string, override float64) Cost {
	c := Cost{Notes: []string{"GPU instance on-demand only: EBS, S3, NAT gateway, VPC endpoints and data transfer are not included"}}
	if override > 0 {
		c.Known, c.PerHour, c.Basis = true, override, "deepseek-r1-cn:pricePerHour"
		c.Currency = "CNY"
		if !reg.IsChina() {
			c.Currency = "USD"
		}
	} else if p, ok := reg.OnDemandPrice(instanceType); ok {
		c.Known, c.PerHour, c.Currency = true, p.PerHour, p.Currency
		c.Basis = fmt.Sprintf("%s on-demand price of %s, %s", p.Region, p.AsOf, p.Source)
		if note := reg.PriceBasisNote(p); note != "" {
			c.Notes = append(c.Notes, note)
		}
	} else {
		c.Notes = append(c.Notes, fmt.Sprintf("no sourced price for %s in %s: set deepseek-r1-cn:pricePerHour", instanceType, reg.Name))
		return c
	}
	c.PerMonth = math.Round(c.PerHour*HoursPerMonth*100) / 100
	return c
}
