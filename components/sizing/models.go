package sizing

import (
	"fmt"
	"sort"
	"strings"
)

// Model is the part of a model's config.json that decides where it fits.
type Model struct {
	// Key is the config value of deepseek-r1-cn:model.
	Key string
	// ModelScopeID is the repository id on ModelScope (modelscope.cn), the
	// source of weights that is reachable from China.
	ModelScopeID string
	// ParamsBillion is the parameter count in billions.
	ParamsBillion float64
	// Layers, AttentionHeads, KVHeads, HeadDim and ContextLength come from the
	// model's config.json (num_hidden_layers, num_attention_heads,
	// num_key_value_heads, hidden_size/num_attention_heads,
	// max_position_embeddings).
	Layers         int
	AttentionHeads int
	KVHeads        int
	HeadDim        int
	ContextLength  int
	// Unservable, when set, says why no instance offered in the China regions
	// can serve the model, and what to use instead.
	Unservable string
}

// WeightsBytes is the size of the weights in 16-bit precision (bf16 or fp16),
// which is how vLLM loads the distills.
func (m Model) WeightsBytes() float64 { return m.ParamsBillion * 1e9 * 2 }

// models is the DeepSeek-R1 family. The distills follow their base models;
// numbers are from each model's config.json (see ../shared/reference/aws-cn.md).
var models = []Model{
	{Key: "deepseek-r1-distill-qwen-1.5b", ModelScopeID: "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
		ParamsBillion: 1.78, Layers: 28, AttentionHeads: 12, KVHeads: 2, HeadDim: 128, ContextLength: 131072},
	{Key: "deepseek-r1-distill-qwen-7b", ModelScopeID: "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
		ParamsBillion: 7.62, Layers: 28, AttentionHeads: 28, KVHeads: 4, HeadDim: 128, ContextLength: 131072},
	{Key: "deepseek-r1-distill-llama-8b", ModelScopeID: "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
		ParamsBillion: 8.03, Layers: 32, AttentionHeads: 32, KVHeads: 8, HeadDim: 128, ContextLength: 131072},
	{Key: "deepseek-r1-distill-qwen-14b", ModelScopeID: "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
		ParamsBillion: 14.8, Layers: 48, AttentionHeads: 40, KVHeads: 8, HeadDim: 128, ContextLength: 131072},
	{Key: "deepseek-r1-distill-qwen-32b", ModelScopeID: "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
		ParamsBillion: 32.8, Layers: 64, AttentionHeads: 40, KVHeads: 8, HeadDim: 128, ContextLength: 131072},
	{Key: "deepseek-r1-distill-llama-70b", ModelScopeID: "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
		ParamsBillion: 70.6, Layers: 80, AttentionHeads: 64, KVHeads: 8, HeadDim: 128, ContextLength: 131072},
	{Key: "deepseek-r1", ModelScopeID: "deepseek-ai/DeepSeek-R1",
		ParamsBillion: 671, Layers: 61, AttentionHeads: 128, ContextLength: 163840,
		Unservable: "DeepSeek-R1 is a 671B-parameter mixture-of-experts model whose FP8 weights alone are about 690 GB " +
			"(about 1.3 TB in bf16). The largest GPU instance offered in the China regions, g5.48xlarge, has " +
			"8 x 24 GB = 192 GB of GPU memory, and its A10G GPUs (like the T4 and V100) have no FP8 support; " +
			"no p4d, p5, Trn1 or Inf2 instance exists there. Use deepseek-r1-distill-llama-70b (g5.48xlarge) " +
			"or deepseek-r1-distill-qwen-32b (g5.12xlarge) instead"},
}

// LookupModel finds a model by its config key.
func LookupModel(key string) (Model, error) {
	for _, m := range models {
		if m.Key == key {
			return m, nil
		}
	}
	return Model{}, fmt.Errorf("unknown model %q: choose one of %s", key, strings.Join(ModelKeys(), ", "))
}

// ModelKeys lists every model key, smallest first.
func ModelKeys() []string {
	out := make([]string, len(models))
	for i, m := range models {
		out[i] = m.Key
	}
	return out
}

// Models returns the catalog, smallest first.
func Models() []Model { return append([]Model(nil), models...) }

// GPU is one accelerator model.
type GPU struct {
	Name string
	// MemoryMiB is the total memory as nvidia-smi reports it, which is what
	// vLLM's --gpu-memory-utilization is a fraction of.
	MemoryMiB int
	// BF16 says whether the GPU computes in bfloat16. T4 (Turing) and V100
	// (Volta) do not, so the distills' bf16 weights run as float16 there.
	BF16 bool
	// ComputeCapability is the CUDA compute capability.
	ComputeCapability string
	// OpenKernelDriver says whether NVIDIA's open GPU kernel modules (the
	// "OSS driver" Deep Learning AMIs) support the GPU: Turing and newer only.
	OpenKernelDriver bool
	// MemoryBandwidthGBps is the GPU memory bandwidth from the vendor's
	// specification, which bounds how fast vLLM decodes (see throughput.go).
	MemoryBandwidthGBps int
}

// Memory bandwidths: T4 320 GB/s (NVIDIA T4 datasheet, "320+ GB/s"); A10G
// 600 GB/s, the same GDDR6 memory and bandwidth as the A10 (Baseten, "NVIDIA
// A10 vs A10G for ML model inference"; NVIDIA A10 datasheet); V100 900 GB/s
// for the SXM2 module of p3 instances (NVIDIA V100 datasheet).
var (
	gpuT4 = GPU{Name: "NVIDIA T4", MemoryMiB: 15360, BF16: false, ComputeCapability: "7.5", OpenKernelDriver: true,
		MemoryBandwidthGBps: 320}
	gpuA10G = GPU{Name: "NVIDIA A10G", MemoryMiB: 23028, BF16: true, ComputeCapability: "8.6", OpenKernelDriver: true,
		MemoryBandwidthGBps: 600}
	gpuV100 = GPU{Name: "NVIDIA V100", MemoryMiB: 16384, BF16: false, ComputeCapability: "7.0", OpenKernelDriver: false,
		MemoryBandwidthGBps: 900}
)

// InstanceType is the hardware of one GPU instance type.
type InstanceType struct {
	Name      string
	GPU       GPU
	GPUs      int
	VCPUs     int
	MemoryGiB int
	// LocalNVMeGB is the instance store, where weights are copied for fast
	// loading; 0 for EBS-only types.
	LocalNVMeGB int
}

// GPUMemoryMiB is the memory of all GPUs together.
func (t InstanceType) GPUMemoryMiB() int { return t.GPU.MemoryMiB * t.GPUs }

// instanceTypes are the GPU families that AWS offers in the China regions and
// that vLLM can run on (g3 and p2 are Maxwell and Kepler, which it cannot).
var instanceTypes = []InstanceType{
	{Name: "g4dn.xlarge", GPU: gpuT4, GPUs: 1, VCPUs: 4, MemoryGiB: 16, LocalNVMeGB: 125},
	{Name: "g4dn.2xlarge", GPU: gpuT4, GPUs: 1, VCPUs: 8, MemoryGiB: 32, LocalNVMeGB: 225},
	{Name: "g4dn.4xlarge", GPU: gpuT4, GPUs: 1, VCPUs: 16, MemoryGiB: 64, LocalNVMeGB: 225},
	{Name: "g4dn.8xlarge", GPU: gpuT4, GPUs: 1, VCPUs: 32, MemoryGiB: 128, LocalNVMeGB: 900},
	{Name: "g4dn.16xlarge", GPU: gpuT4, GPUs: 1, VCPUs: 64, MemoryGiB: 256, LocalNVMeGB: 900},
	{Name: "g4dn.12xlarge", GPU: gpuT4, GPUs: 4, VCPUs: 48, MemoryGiB: 192, LocalNVMeGB: 900},
	{Name: "g5.xlarge", GPU: gpuA10G, GPUs: 1, VCPUs: 4, MemoryGiB: 16, LocalNVMeGB: 250},
	{Name: "g5.2xlarge", GPU: gpuA10G, GPUs: 1, VCPUs: 8, MemoryGiB: 32, LocalNVMeGB: 450},
	{Name: "g5.4xlarge", GPU: gpuA10G, GPUs: 1, VCPUs: 16, MemoryGiB: 64, LocalNVMeGB: 600},
	{Name: "g5.8xlarge", GPU: gpuA10G, GPUs: 1, VCPUs: 32, MemoryGiB: 128, LocalNVMeGB: 900},
	{Name: "g5.16xlarge", GPU: gpuA10G, GPUs: 1, VCPUs: 64, MemoryGiB: 256, LocalNVMeGB: 1900},
	{Name: "g5.12xlarge", GPU: gpuA10G, GPUs: 4, VCPUs: 48, MemoryGiB: 192, LocalNVMeGB: 3800},
	{Name: "g5.24xlarge", GPU: gpuA10G, GPUs: 4, VCPUs: 96, MemoryGiB: 384, LocalNVMeGB: 3800},
	{Name: "g5.48xlarge", GPU: gpuA10G, GPUs: 8, VCPUs: 192, MemoryGiB: 768, LocalNVMeGB: 7600},
	{Name: "p3.2xlarge", GPU: gpuV100, GPUs: 1, VCPUs: 8, MemoryGiB: 61},
	{Name: "p3.8xlarge", GPU: gpuV100, GPUs: 4, VCPUs: 32, MemoryGiB: 244},
	{Name: "p3.16xlarge", GPU: gpuV100, GPUs: 8, VCPUs: 64, MemoryGiB: 488},
}

// sageMakerPrefix marks SageMaker hosting instance types (ml.g5.12xlarge),
// which have the same hardware as their EC2 namesakes.
const sageMakerPrefix = "ml."

// LookupInstanceType finds the hardware of an EC2 (g5.12xlarge) or SageMaker
// (ml.g5.12xlarge) instance type.
func LookupInstanceType(name string) (InstanceType, error) {
	base := strings.TrimPrefix(name, sageMakerPrefix)
	for _, t := range instanceTypes {
		if t.Name == base {
			t.Name = name
			return t, nil
		}
	}
	return InstanceType{}, fmt.Errorf("%q is not a GPU instance type this project can size: choose one of %s",
		name, strings.Join(InstanceTypeNames(), ", "))
}

// InstanceTypeNames lists the EC2 names of the catalog, sorted.
func InstanceTypeNames() []string {
	out := make([]string, len(instanceTypes))
	for i, t := range instanceTypes {
		out[i] = t.Name
	}
	sort.Strings(out)
	return out
}

// InstanceTypes returns the catalog.
func InstanceTypes() []InstanceType { return append([]InstanceType(nil), instanceTypes...) }

// GPUNames lists the GPUs of the catalog, sorted.
func GPUNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range instanceTypes {
		if !seen[t.GPU.Name] {
			seen[t.GPU.Name] = true
			out = append(out, t.GPU.Name)
		}
	}
	sort.Strings(out)
	return out
}
