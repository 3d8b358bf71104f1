package stacks

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// SageMakerSettings is what the SageMaker target decides beyond sizing.
type SageMakerSettings struct {
	// Container is "lmi" (the AWS Large Model Inference container) or
	// "custom" (your image, configured through SM_VLLM_* variables).
	Container   string
	Image       string
	Environment map[string]string
	// Timeouts of the first health check and the weights download, sized
	// to the weights.
	StartupTimeoutSeconds  int
	DownloadTimeoutSeconds int
	// VolumeSizeGiB is the ML storage volume, 0 where the instance type has
	// local NVMe (SageMaker accepts no volume size there).
	VolumeSizeGiB int
}

// lmiTagPattern reads a djl-inference LMI tag; the group is the LMI major
// version, which must be 14 or later for the DeepSeek-R1 reasoning parser.
var lmiTagPattern = regexp.MustCompile(`^\d+\.\d+\.\d+-lmi(\d+)\.\d+\.\d+-cu\d+$`)

const minLMIMajor = 14

// checkSageMaker holds the SageMaker rules that need only the config and
// the region.
func checkSageMaker(c *Config, reg region.Info) []error {
	var errs []error
	if c.InstanceType != "" && !strings.HasPrefix(c.InstanceType, "ml.") {
		errs = append(errs, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: fmt.Sprintf(
			"is an EC2 type; SageMaker hosting types start with ml., such as ml.%s", c.InstanceType)})
	}
	if c.SageMakerImage != "" && !reg.IsRegionalECRImage(c.SageMakerImage) {
		errs = append(errs, &ConfigError{Key: key("sagemakerImage"), Value: c.SageMakerImage, Msg: fmt.Sprintf(
			"must be an image in a private ECR registry of %s (%s/<repository>:<tag>)", reg.Name, reg.ECRRegistry("<account>"))})
	}
	if c.SageMakerImage == "" {
		m := lmiTagPattern.FindStringSubmatch(c.LMIImageTag)
		if m == nil {
			errs = append(errs, &ConfigError{Key: key("lmiImageTag"), Value: c.LMIImageTag,
				Msg: "must be a djl-inference LMI tag such as 0.33.0-lmi15.0.0-cu128"})
		} else if major, _ := strconv.Atoi(m[1]); major < minLMIMajor {
			errs = append(errs, &ConfigError{Key: key("lmiImageTag"), Value: c.LMIImageTag, Msg: fmt.Sprintf(
				"is LMI %d, which has no DeepSeek-R1 reasoning parser: use LMI %d or later, such as 0.33.0-lmi15.0.0-cu128",
				major, minLMIMajor)})
		}
	}
	return errs
}

// resolveSageMaker picks the container and sizes the endpoint's timeouts and
// volume to the weights.
func resolveSageMaker(d *Deployment) error {
	c := d.Config
	s := &SageMakerSettings{Container: "lmi", Image: d.Region.DeepLearningContainersRegistry() + "/djl-inference:" + c.LMIImageTag}
	if c.SageMakerImage != "" {
		s.Container, s.Image = "custom", c.SageMakerImage
		s.Environment = customEnvironment(d)
	} else {
		s.Environment = lmiEnvironment(d)
	}
	// Assume at least ~50 MB/s from S3 and ~100 MB/s onto the GPUs, plus
	// ten minutes for the container and CUDA graphs; SageMaker caps both at
	// an hour.
	s.DownloadTimeoutSeconds = clamp(600+int(d.Decision.WeightsGiB*20), 60, 3600)
	s.StartupTimeoutSeconds = clamp(600+int(d.Decision.WeightsGiB*10), 60, 3600)
	if d.Instance.LocalNVMeGB == 0 {
		s.VolumeSizeGiB = 30 + int(math.Ceil(d.Decision.WeightsGiB*1.2/10))*10
	}
	d.SageMaker = s
	d.Cost.Notes = append(d.Cost.Notes, "SageMaker hosting (ml.*) prices are their own and are not in the sourced "+
		"tables; instance types were ordered by the EC2 price of the same hardware")
	return nil
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
	if dec.PipelineParallel > 1 {
		// UNCONFIRMED for LMI's vLLM rolling batch; the sizing asks for it
		// only when the attention heads cannot be split over every GPU.
		env["OPTION_PIPELINE_PARALLEL_DEGREE"] = strconv.Itoa(dec.PipelineParallel)
	}
	return env
}

// customEnvironment configures an image that turns SM_VLLM_<FLAG> variables
// into vLLM flags (the AWS vLLM DLC for SageMaker and vLLM's own SageMaker
// image do): the same arguments the EC2 server gets.
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
	}
	if dec.PipelineParallel > 1 {
		env["SM_VLLM_PIPELINE_PARALLEL_SIZE"] = strconv.Itoa(dec.PipelineParallel)
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
