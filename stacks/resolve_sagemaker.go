package stacks

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// SageMakerSettings is what the SageMaker target decides beyond sizing.
type SageMakerSettings struct {
	// Container is "custom" (the project's own image: vLLM with the
	// guardrail inside, cmd/sagemaker-serve) or "lmi" (the AWS Large Model
	// Inference container).
	Container string
	// Image is the container image. For the custom container without
	// sagemakerImage it is a repository:tag placed in the account's registry
	// at deploy time (see inRegistry), like the EKS images.
	Image       string
	Environment map[string]string
	// VLLM is the vLLM release the custom image is built on.
	VLLM vllm.Version
	// Timeouts of the first health check and the weights download, sized
	// to the weights and kept inside the AWS provider's wait for InService.
	StartupTimeoutSeconds  int
	DownloadTimeoutSeconds int
	// VolumeSizeGiB is the ML storage volume, 0 where the instance type has
	// local NVMe (SageMaker accepts no volume size there).
	VolumeSizeGiB int
	// InferenceAMIVersion is the hosts' AMI (ProductionVariant
	// InferenceAmiVersion); "" leaves SageMaker's default.
	InferenceAMIVersion string
}

// Host AMIs of SageMaker real-time endpoints (ProductionVariant
// InferenceAmiVersion, SageMaker API reference, and "Best practices to
// minimize interruptions during GPU driver upgrades" in the SageMaker
// developer guide, also on docs.amazonaws.cn): without one, ml.g4dn, ml.g5
// and ml.p4d endpoints get NVIDIA driver 470 (CUDA 11.4), on which neither
// vLLM's CUDA 12.8 image (the custom container) nor LMI 15 (cu128) starts
// without forward-compatibility libraries. Drivers 535 and 550 run CUDA
// 12.x by CUDA's minor version compatibility. The API reference lists
// ml.p3 for gpu-2 only, so auto picks that there.
const (
	InferenceAMIAuto  = "auto"
	InferenceAMINone  = "none"
	inferenceAMIGPU2  = "al2-ami-sagemaker-inference-gpu-2"
	inferenceAMIGPU21 = "al2-ami-sagemaker-inference-gpu-2-1"
	inferenceAMIGPU31 = "al2-ami-sagemaker-inference-gpu-3-1"
)

var inferenceAMIVersions = []string{InferenceAMIAuto, InferenceAMINone, inferenceAMIGPU2, inferenceAMIGPU21, inferenceAMIGPU31}

// inferenceAMI resolves sagemakerInferenceAmiVersion for an instance type.
func inferenceAMI(configured, instanceType string) string {
	switch configured {
	case InferenceAMIAuto:
		if strings.HasPrefix(instanceType, "ml.p3.") {
			return inferenceAMIGPU2
		}
		return inferenceAMIGPU31
	case InferenceAMINone:
		return ""
	}
	return configured
}

// SageMaker containers (deepseek-r1-cn:sagemakerContainer).
const (
	ContainerCustom = "custom"
	ContainerLMI    = "lmi"
)

// DefaultSageMakerRepo is the custom container built from this repository
// (cmd/sagemaker-serve/Dockerfile) on the mirrored vLLM image; its tag is the
// vLLM release, so that every target serves the same vLLM.
const DefaultSageMakerRepo = "deepseek-r1-cn/sagemaker-vllm"

// GuardrailPolicyDirName is where the guardrail policy goes beside the
// weights: <weights prefix>.guardrail/, so that SageMaker, which copies the
// whole prefix to /opt/ml/model, delivers it with the model; vLLM ignores
// the hidden directory.
const GuardrailPolicyDirName = ".guardrail"

// lmiTagPattern reads a djl-inference LMI tag (0.33.0-lmi15.0.0-cu128,
// 0.36.0-lmi20.0.0-cu128-v1.0); the group is the LMI major version.
var lmiTagPattern = regexp.MustCompile(`^\d+\.\d+\.\d+-lmi(\d+)\.\d+\.\d+-cu\d+(-v\d+(\.\d+)*)?$`)

// minLMIMajor is the first LMI whose vLLM has the DeepSeek-R1 reasoning
// parser for certain: LMI 15 is DJL 0.33 with vLLM 0.8.4, while LMI 14 is
// DJL 0.32 with vLLM 0.7.1, the very release the parser arrived in (vLLM PR
// #12473), with LMI's OPTION_REASONING_PARSER new in the same DJL
// (aws/deep-learning-containers available_images.md).
const minLMIMajor = 15

// providerWaitSeconds is how long the AWS provider waits for an endpoint to
// become InService: 60 minutes, not configurable (terraform-provider-aws
// internal/service/sagemaker wait.go, endpointInServiceTimeout, bridged by
// pulumi-aws v6). provisionSeconds is left of it for SageMaker to provision
// the instances; the weights download and the start-up health check share
// the rest, so that SageMaker gives up (endpoint Failed, with a reason)
// before the provider does.
// guardImageSuffix ends the default custom image's tag with guardModel
// colocated (v0.11.0-guard): built from a version of cmd/sagemaker-serve
// that reads GUARD_MODEL_DIR.
const guardImageSuffix = "-guard"

const (
	providerWaitSeconds = 3600
	provisionSeconds    = 600
	// guardStartupSeconds is what the custom container's start of a
	// colocated guard model (a 1.5 GB model, eager mode) adds.
	guardStartupSeconds = 300
)

// checkSageMaker holds the SageMaker rules that need only the config and
// the region.
func checkSageMaker(c *Config, reg region.Info) []error {
	var errs []error
	fail := func(k, v, format string, a ...any) {
		errs = append(errs, &ConfigError{Key: key(k), Value: v, Msg: fmt.Sprintf(format, a...)})
	}
	if c.InstanceType != "" && !strings.HasPrefix(c.InstanceType, "ml.") {
		fail("instanceType", c.InstanceType, "is an EC2 type; SageMaker hosting types start with ml., such as ml.%s", c.InstanceType)
	}
	if c.SageMakerImage != "" && !reg.IsRegionalECRImage(c.SageMakerImage) {
		fail("sagemakerImage", c.SageMakerImage, "must be an image in a private ECR registry of %s (%s/<repository>:<tag>)",
			reg.Name, reg.ECRRegistry("<account>"))
	}
	if c.SageMakerImage != "" && strings.HasSuffix(c.SageMakerImage, ":latest") {
		fail("sagemakerImage", c.SageMakerImage, "must name a version or digest, not :latest: SageMaker pins the "+
			"image it started with, so a moved tag would serve two builds behind one endpoint")
	}
	if !slices.Contains(inferenceAMIVersions, c.SageMakerInferenceAMIVersion) {
		fail("sagemakerInferenceAmiVersion", c.SageMakerInferenceAMIVersion, "must be one of %s: the host AMI "+
			"decides the NVIDIA driver, and vLLM's CUDA 12 images need 535 or later (%s has 550)",
			strings.Join(inferenceAMIVersions, ", "), inferenceAMIGPU31)
	}
	switch c.SageMakerContainer {
	case ContainerCustom:
		if _, err := vllm.ParseVersion(c.VLLMVersion); err != nil {
			fail("vllmVersion", c.VLLMVersion, "must be a vLLM release such as 0.11.0")
		}
	case ContainerLMI:
		if c.SageMakerImage != "" {
			fail("sagemakerImage", c.SageMakerImage, "is the custom container's image; with sagemakerContainer lmi "+
				"the image is AWS's LMI container (set lmiImageTag), or set sagemakerContainer to custom")
		}
		if c.Guardrail {
			fail("guardrail", "true", "needs the project's custom container, which runs the guardrail inside the "+
				"endpoint: set sagemakerContainer to custom (the default); AWS's LMI container cannot run it")
		}
		m := lmiTagPattern.FindStringSubmatch(c.LMIImageTag)
		if m == nil {
			fail("lmiImageTag", c.LMIImageTag, "must be a djl-inference LMI tag such as 0.33.0-lmi15.0.0-cu128")
		} else if major, _ := strconv.Atoi(m[1]); major < minLMIMajor {
			fail("lmiImageTag", c.LMIImageTag, "is LMI %d, whose vLLM may lack the DeepSeek-R1 reasoning parser: "+
				"use LMI %d or later, such as 0.33.0-lmi15.0.0-cu128", major, minLMIMajor)
		}
	default:
		fail("sagemakerContainer", c.SageMakerContainer, "must be custom (the project's vLLM container with the "+
			"guardrail inside, built from cmd/sagemaker-serve) or lmi (AWS's Large Model Inference container)")
	}
	return errs
}

// resolveSageMaker picks the container and sizes the endpoint's timeouts and
// volume to the weights.
func resolveSageMaker(d *Deployment) error {
	c := d.Config
	s := &SageMakerSettings{Container: c.SageMakerContainer}
	d.SageMaker = s
	switch s.Container {
	case ContainerLMI:
		s.Image = d.Region.DeepLearningContainersRegistry() + "/djl-inference:" + c.LMIImageTag
		s.Environment = lmiEnvironment(d)
	default:
		s.VLLM, _ = vllm.ParseVersion(c.VLLMVersion) // checkSageMaker refused a version that does not parse
		if err := s.VLLM.CheckGPU(d.Instance.GPU); err != nil {
			return &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion, Msg: fmt.Sprintf("on %s: %v", d.Instance.Name, err)}
		}
		s.Image = c.SageMakerImage
		if s.Image == "" {
			s.Image = DefaultSageMakerRepo + ":v" + s.VLLM.String()
			if d.Decision.Colocated != nil {
				// An entry point built before the guard model ignores
				// GUARD_*: the same tag would serve without the guard and
				// say nothing. The guard's image has a tag of its own.
				s.Image += guardImageSuffix
			}
		}
		s.Environment = customEnvironment(d)
		if note := sageMakerServer(d).AttentionNote(); note != "" {
			d.Decision.Notes = append(d.Decision.Notes, note)
		}
	}
	weightsGiB, startupExtra := d.Decision.WeightsGiB, 0
	if g := d.Decision.Colocated; g != nil {
		// SageMaker downloads the guard with the weights, and the container
		// starts the guard and waits for it before it starts the model.
		weightsGiB += sizing.GuardModel.WeightsBytes() / (1 << 30)
		startupExtra = guardStartupSeconds
	}
	s.DownloadTimeoutSeconds, s.StartupTimeoutSeconds = sageMakerTimeouts(weightsGiB, startupExtra)
	if d.Instance.LocalNVMeGB == 0 {
		s.VolumeSizeGiB = 30 + int(math.Ceil(d.Decision.WeightsGiB*1.2/10))*10
	}
	s.InferenceAMIVersion = inferenceAMI(c.SageMakerInferenceAMIVersion, d.Decision.InstanceType)
	if s.InferenceAMIVersion == "" {
		d.Decision.Notes = append(d.Decision.Notes, "sagemakerInferenceAmiVersion none: SageMaker's default host AMI "+
			"has NVIDIA driver 470 (CUDA 11.4) on ml.g4dn and ml.g5, older than the container's CUDA 12; it starts only "+
			"if the image brings CUDA forward-compatibility libraries")
	} else {
		d.Decision.Notes = append(d.Decision.Notes, "SageMaker host AMI "+s.InferenceAMIVersion+
			" (sagemakerInferenceAmiVersion): a CUDA 12 driver for the container")
	}
	if c.SageMakerMaxInstances > c.SageMakerMinInstances {
		d.Decision.Notes = append(d.Decision.Notes, fmt.Sprintf("autoscaling %d to %d instances: SageMaker refuses "+
			"an instance type change while the variant is registered for autoscaling, so change the type in two "+
			"`pulumi up`s: first sagemakerMaxInstances = sagemakerMinInstances (deregisters it), then the type and "+
			"sagemakerMaxInstances back", c.SageMakerMinInstances, c.SageMakerMaxInstances))
	}
	d.Cost.Notes = append(d.Cost.Notes, "SageMaker hosting (ml.*) prices are their own and are not in the sourced "+
		"tables; instance types were ordered by the EC2 price of the same hardware")
	return nil
}

// sageMakerTimeouts sizes the weights download (600 s + 20 s/GiB, about
// 50 MB/s from S3) and the start-up health check (600 s + 10 s/GiB, loading
// onto the GPUs and CUDA graphs), then scales both down to fit what the AWS
// provider's wait leaves after provisioning, each at least SageMaker's 60 s.
//
// startupExtra is added to the start-up: a colocated guard model's load
// (guardStartupSeconds), before the model's.
func sageMakerTimeouts(weightsGiB float64, startupExtra int) (download, startup int) {
	download = 600 + int(weightsGiB*20)
	startup = 600 + int(weightsGiB*10) + startupExtra
	if budget := providerWaitSeconds - provisionSeconds; download+startup > budget {
		total := float64(download + startup)
		download = int(float64(budget) * float64(download) / total)
		startup = budget - download
	}
	return clamp(download, 60, 3600), clamp(startup, 60, 3600)
}

// lmiEnvironment configures the LMI container's vLLM engine with the sizing.
// Names are from the djl-serving LMI docs of LMI 13 to 15: rolling-batch
// vLLM, the model SageMaker mounted at /opt/ml/model, and the DeepSeek-R1
// reasoning parser (LMI 14 and later; replies carry reasoning_content).
func lmiEnvironment(d *Deployment) map[string]string {
	dec := d.Decision
	env := map[string]string{
		"HF_MODEL_ID":                   "/opt/ml/model",
		"OPTION_ROLLING_BATCH":          "vllm",
		"OPTION_TENSOR_PARALLEL_DEGREE": strconv.Itoa(dec.TensorParallel),
		"OPTION_MAX_MODEL_LEN":          strconv.Itoa(dec.MaxModelLen),
		"OPTION_DTYPE":                  lmiDType(dec.DType),
		"OPTION_GPU_MEMORY_UTILIZATION": strconv.FormatFloat(dec.GPUMemoryUtilization, 'f', 2, 64),
		"OPTION_ENABLE_REASONING":       "true",
		"OPTION_REASONING_PARSER":       "deepseek_r1",
		// The container is network-isolated; never try the Hugging Face Hub.
		"HF_HUB_OFFLINE": "1",
	}
	// No OPTION_PIPELINE_PARALLEL_DEGREE: LMI's vLLM rolling batch refuses
	// it, and the sizing gave LMI tensor parallelism only.
	return env
}

// customEnvironment configures the custom container (cmd/sagemaker-serve),
// which turns SM_VLLM_<FLAG> variables into vLLM flags, as the AWS vLLM DLC
// for SageMaker does: the same sizing the EC2 server gets. The guardrail's
// policy location and digest are added where the policy is uploaded.
func customEnvironment(d *Deployment) map[string]string {
	dec := d.Decision
	env := map[string]string{
		"SM_VLLM_MODEL":                  "/opt/ml/model",
		"SM_VLLM_SERVED_MODEL_NAME":      d.Model.Key,
		"SM_VLLM_TENSOR_PARALLEL_SIZE":   strconv.Itoa(dec.TensorParallel),
		"SM_VLLM_DTYPE":                  dec.DType,
		"SM_VLLM_MAX_MODEL_LEN":          strconv.Itoa(dec.MaxModelLen),
		"SM_VLLM_GPU_MEMORY_UTILIZATION": strconv.FormatFloat(dec.GPUMemoryUtilization, 'f', 2, 64),
		"SM_VLLM_REASONING_PARSER":       "deepseek_r1",
		"HF_HUB_OFFLINE":                 "1",
		"VLLM_NO_USAGE_STATS":            "1",
		"GUARDRAIL_ENABLED":              strconv.FormatBool(d.Config.Guardrail),
	}
	if dec.PipelineParallel > 1 {
		env["SM_VLLM_PIPELINE_PARALLEL_SIZE"] = strconv.Itoa(dec.PipelineParallel)
	}
	if d.SageMaker.VLLM.LogsRequests() {
		// As on the other targets: each request's id in vLLM's log, no text.
		env["SM_VLLM_ENABLE_LOG_REQUESTS"] = "true"
		env["SM_VLLM_MAX_LOG_LEN"] = "0"
	}
	if g := dec.Colocated; g != nil {
		// The container starts the guard model's vLLM first, on the first
		// GPU, and has its gateway ask it (cmd/sagemaker-serve, guard.go).
		// SageMaker downloads the whole weights prefix, guard included.
		env["GUARD_MODEL_DIR"] = "/opt/ml/model/" + strings.TrimSuffix(weights.GuardModelDir, "/")
		env["GUARD_GPU_MEMORY_UTILIZATION"] = strconv.FormatFloat(g.GPUMemoryUtilization, 'f', 2, 64)
		env["GUARD_MAX_MODEL_LEN"] = strconv.Itoa(g.MaxModelLen)
		env["GUARD_MAX_CHARS"] = strconv.Itoa(sizing.GuardMaxChars)
		env["GUARD_DTYPE"] = g.DType
	}
	// The container passes its environment on to vLLM (cmd/sagemaker-serve).
	for _, v := range sageMakerServer(d).Env() {
		env[v.Name] = v.Value
	}
	return env
}

func lmiDType(vllmDType string) string {
	if vllmDType == "bfloat16" {
		return "bf16"
	}
	return "fp16"
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// sageMakerServer is the vLLM server the custom container runs.
func sageMakerServer(d *Deployment) vllm.Server {
	return vllm.Server{Decision: d.Decision, Version: d.SageMaker.VLLM, AttentionBackend: d.Config.VLLMAttentionBackend}
}
