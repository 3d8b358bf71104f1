package stacks

import (
	"fmt"
	"math"

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

// resolveEC2 decides the vLLM release, AMI, root volume and pip index.
func resolveEC2(d *Deployment) error {
	c := d.Config
	s := &EC2Settings{AMIParameter: c.AMISSMParameter, RootVolumeGiB: c.RootVolumeGiB, PipIndexURL: c.PipIndexURL}
	d.EC2 = s
	s.VLLM, _ = vllm.ParseVersion(c.VLLMVersion) // checkEC2 refused a version that does not parse
	if err := s.VLLM.CheckGPU(d.Instance.GPU); err != nil {
		return &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion, Msg: fmt.Sprintf("on %s: %v", d.Instance.Name, err)}
	}
	if c.AMIID == "" && s.AMIParameter == "" {
		if !d.Instance.GPU.OpenKernelDriver {
			return &ConfigError{Key: key("instanceType"), Value: d.Instance.Name, Msg: fmt.Sprintf(
				"has %s GPUs, which NVIDIA's open kernel driver in the default Deep Learning AMI does not support: "+
					"set deepseek-r1-cn:amiId (or amiSsmParameter) to an Ubuntu AMI with the proprietary NVIDIA driver, "+
					"or use a g4dn/g5 instance type", d.Instance.GPU.Name)}
		}
		s.AMIParameter = defaultAMIParameter
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
	return nil
}

// MinRootVolumeGiB leaves 100 GiB for the Deep Learning AMI, CUDA, the vLLM
// environment and logs, plus room for the weights with 10% to spare, since
// EBS-only types (and any instance whose NVMe is not mounted) keep them there.
func MinRootVolumeGiB(d sizing.Decision) int {
	return 100 + int(math.Ceil(d.WeightsGiB*1.1/10))*10
}
