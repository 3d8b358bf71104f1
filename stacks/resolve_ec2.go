package stacks

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

// EC2Settings is what the EC2 target decides beyond sizing.
type EC2Settings struct {
	VLLM vllm.Version
	// AMIParameter is the SSM parameter the AMI is resolved from, when no
	// AMI id is pinned.
	AMIParameter  string
	RootVolumeGiB int
	PipIndexURL   string
	AptMirror     string
	// Fallbacks are the instance types the Auto Scaling group launches, in
	// order, when the decided one has no capacity in any of its zones: each
	// sized on its own, with its own launch template and vLLM arguments.
	Fallbacks []Fallback
	// HealthCheckGraceSeconds is how long a new instance has to install,
	// copy the weights and answer its health check before it is replaced.
	HealthCheckGraceSeconds int
}

// Fallback is one fallback instance type: its sizing and its cost.
type Fallback struct {
	Decision sizing.Decision
	Cost     Cost
}

// InstanceTypes is the decided type and the fallbacks, in launch priority.
func (s *EC2Settings) InstanceTypes(d *Deployment) []string {
	out := []string{d.Decision.InstanceType}
	for _, f := range s.Fallbacks {
		out = append(out, f.Decision.InstanceType)
	}
	return out
}

// defaultAMIParameter is the Deep Learning Base AMI with NVIDIA's open kernel
// driver (Turing and newer: T4, A10G). Whether it is published in the China
// regions is UNCONFIRMED; deepseek-r1-cn:amiId or amiSsmParameter override it.
const defaultAMIParameter = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"

// checkEC2 holds the EC2 rules that need only the config and the region.
func checkEC2(c *Config, reg region.Info) []error {
	var errs []error
	if _, err := vllm.ParseVersion(c.VLLMVersion); err != nil {
		errs = append(errs, &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion,
			Msg: "must be a vLLM release such as 0.11.0"})
	}
	if c.VLLMImage != "" && !reg.IsRegionalECRImage(c.VLLMImage) {
		errs = append(errs, &ConfigError{Key: key("vllmImage"), Value: c.VLLMImage, Msg: fmt.Sprintf(
			"must be an image in a private ECR registry of %s (%s/<repository>:<tag>): "+
				"Docker Hub, ghcr.io and nvcr.io are not reachable from a private subnet in China. "+
				"Mirror the image into ECR first (see README)", reg.Name, reg.ECRRegistry("<account>"))})
	}
	return errs
}

// resolveEC2 decides the vLLM release, AMI, root volume, package sources,
// fallback instance types and health check grace. ranked is every offered
// type the model fits, best value first.
func resolveEC2(d *Deployment, ranked []sizing.Ranked, opts sizing.Options) error {
	c := d.Config
	s := &EC2Settings{AMIParameter: c.AMISSMParameter, RootVolumeGiB: c.RootVolumeGiB, PipIndexURL: c.PipIndexURL,
		AptMirror: c.AptMirror}
	d.EC2 = s
	s.VLLM, _ = vllm.ParseVersion(c.VLLMVersion) // checkEC2 refused a version that does not parse
	if err := ec2Serves(d, d.Instance); err != nil {
		return err
	}
	if c.AMIID == "" && s.AMIParameter == "" {
		s.AMIParameter = defaultAMIParameter
	}
	if err := resolveFallbacks(d, ranked, opts); err != nil {
		return err
	}
	addAttentionNote(d, &d.Decision)
	for i := range s.Fallbacks {
		addAttentionNote(d, &s.Fallbacks[i].Decision)
	}
	minRoot := MinRootVolumeGiB(d.Decision)
	if s.RootVolumeGiB == 0 {
		s.RootVolumeGiB = minRoot
	} else if s.RootVolumeGiB < minRoot {
		return &ConfigError{Key: key("rootVolumeGb"), Value: fmt.Sprint(c.RootVolumeGiB), Msg: fmt.Sprintf(
			"is too small for the AMI, vLLM and %.0f GiB of weights: use at least %d", d.Decision.WeightsGiB, minRoot)}
	}
	if s.PipIndexURL == "" {
		s.PipIndexURL = d.Region.DefaultPipIndex()
	}
	if s.AptMirror == "" {
		s.AptMirror = d.Region.DefaultAptMirror()
	}
	s.HealthCheckGraceSeconds = c.HealthCheckGracePeriod
	if s.HealthCheckGraceSeconds == 0 {
		s.HealthCheckGraceSeconds = HealthCheckGraceSeconds(d.Decision)
	}
	d.Cost.Notes = append(d.Cost.Notes, "the internal Network Load Balancer in front of the server is billed "+
		"per hour and per LCU on top of this (no sourced China price: see the NLB price page for your region)")
	return nil
}

// ec2Serves says whether the EC2 server can run on an instance type: the
// vLLM release supports its GPU, and the default AMI's driver does.
func ec2Serves(d *Deployment, t sizing.InstanceType) error {
	c := d.Config
	if err := d.EC2.VLLM.CheckGPU(t.GPU); err != nil {
		return &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion, Msg: fmt.Sprintf("on %s: %v", t.Name, err)}
	}
	if c.AMIID == "" && c.AMISSMParameter == "" && !t.GPU.OpenKernelDriver {
		return &ConfigError{Key: key("instanceType"), Value: t.Name, Msg: fmt.Sprintf(
			"has %s GPUs, which NVIDIA's open kernel driver in the default Deep Learning AMI does not support: "+
				"set deepseek-r1-cn:amiId (or amiSsmParameter) to an Ubuntu AMI with the proprietary NVIDIA driver, "+
				"or use a g4dn/g5 instance type", t.GPU.Name)}
	}
	return nil
}

// resolveFallbacks takes the configured fallback types, each of which must
// be offered and fit, or the cheapest other types the server can run on.
func resolveFallbacks(d *Deployment, ranked []sizing.Ranked, opts sizing.Options) error {
	c := d.Config
	s := d.EC2
	add := func(dec sizing.Decision) {
		s.Fallbacks = append(s.Fallbacks, Fallback{Decision: dec, Cost: estimate(d.Region, dec.InstanceType, 0)})
	}
	if len(c.FallbackInstanceTypes) > 0 {
		seen := map[string]bool{d.Decision.InstanceType: true}
		for _, name := range c.FallbackInstanceTypes {
			fail := func(format string, a ...any) error {
				return &ConfigError{Key: key("fallbackInstanceTypes"), Value: name, Msg: fmt.Sprintf(format, a...)}
			}
			if seen[name] {
				return fail("is listed twice, or is the instance type itself")
			}
			seen[name] = true
			t, err := sizing.LookupInstanceType(name)
			if err != nil || strings.HasPrefix(name, "ml.") {
				return fail("is not an EC2 GPU instance type of the catalog: %s", strings.Join(d.Region.OfferedGPUInstanceTypes(), ", "))
			}
			if !slices.ContainsFunc(ranked, func(r sizing.Ranked) bool { return r.Decision.InstanceType == name }) {
				if _, err := sizing.Decide(d.Model, t, opts); err != nil {
					return fail("cannot serve %s: %v", c.Model, err)
				}
				return fail("is not offered in %s (override the list with offeredInstanceTypes if AWS added it)", d.Region.Name)
			}
			if err := ec2Serves(d, t); err != nil {
				return fail("%v", err)
			}
			dec, _ := sizing.Decide(d.Model, t, opts)
			add(dec)
		}
		return nil
	}
	// A fallback stands in for the decided type when it has no capacity:
	// the cheapest alternatives first, whatever their throughput.
	byHour := slices.Clone(ranked)
	slices.SortStableFunc(byHour, func(a, b sizing.Ranked) int {
		switch {
		case a.Priced != b.Priced:
			if a.Priced {
				return -1
			}
			return 1
		case a.PricePerHour < b.PricePerHour:
			return -1
		case a.PricePerHour > b.PricePerHour:
			return 1
		}
		return 0
	})
	for _, r := range byHour {
		if len(s.Fallbacks) >= c.MaxFallbackInstanceTypes {
			break
		}
		if r.Decision.InstanceType == d.Decision.InstanceType || ec2Serves(d, r.Type) != nil {
			continue
		}
		add(r.Decision)
	}
	return nil
}

// addAttentionNote adds the plan's note on the attention backend of a
// decision (nothing for Ampere GPUs).
func addAttentionNote(d *Deployment, dec *sizing.Decision) {
	s := vllm.Server{Decision: *dec, Version: d.EC2.VLLM, AttentionBackend: d.Config.VLLMAttentionBackend}
	if note := s.AttentionNote(); note != "" {
		dec.Notes = append(dec.Notes, note)
	}
}

// HealthCheckGraceSeconds gives a new instance 40 minutes to boot and install
// vLLM from the pip mirror (a first install downloads a few GiB), plus 20 s
// per GiB of weights to copy them from S3 and load them onto the GPUs, at
// most four hours. Past it, a failing health check replaces the instance.
//
// A colocated guard model starts first (components/vllm, vllm-guard.service)
// and adds its copy and load, given 5 minutes.
func HealthCheckGraceSeconds(dec sizing.Decision) int {
	s := 2400 + int(math.Ceil(dec.WeightsGiB*20))
	if dec.Colocated != nil {
		s += 300
	}
	return min(s, 14400)
}

// MinRootVolumeGiB leaves 100 GiB for the Deep Learning AMI, CUDA, the vLLM
// environment and logs, plus room for the weights with 10% to spare, since
// EBS-only types (and any instance whose NVMe is not mounted) keep them there.
func MinRootVolumeGiB(d sizing.Decision) int {
	return 100 + int(math.Ceil(d.WeightsGiB*1.1/10))*10
}
