// Package sizing decides whether a DeepSeek-R1 model fits a GPU instance and,
// when it does, how vLLM must be started there: dtype, tensor and pipeline
// parallelism, and the longest context the KV cache can hold.
//
// The model follows vLLM's own memory accounting: of each GPU it may use
// --gpu-memory-utilization of the total; from that it subtracts its share of
// the weights and a reserve for activations, CUDA graphs and NCCL buffers;
// what remains is KV cache. vLLM refuses to start when the KV cache cannot hold
// one sequence of --max-model-len tokens, so that is the limit here too.
package sizing

import (
	"fmt"
	"math"
)

const (
	gib = 1 << 30
	mib = 1 << 20

	// DefaultGPUMemoryUtilization is vLLM's default --gpu-memory-utilization.
	DefaultGPUMemoryUtilization = 0.90
	// DefaultMinContextLength is the shortest --max-model-len accepted as
	// "fits". R1 models reason at length before they answer: below 8k tokens
	// of prompt plus output they often stop mid-thought.
	DefaultMinContextLength = 8192
	// reserveGiBPerGPU is kept free on each GPU for activations at vLLM's
	// default batch budget, CUDA graphs, the CUDA context and NCCL buffers.
	// vLLM profiles the real figure at start-up; this is a deliberately
	// conservative estimate so that a "fits" here does not fail there.
	reserveGiBPerGPU = 2.0
	// kvSafety is the share of the estimated KV-cache tokens that the chosen
	// --max-model-len may use, since the estimate of the reserve is not exact.
	kvSafety = 0.90
	// maxModelLenStep rounds --max-model-len down to a readable multiple.
	maxModelLenStep = 1024
	// blockSize is vLLM's default KV-cache block size in tokens.
	blockSize = 16
)

// Options tune a decision. The zero value means vLLM's defaults.
type Options struct {
	// GPUMemoryUtilization is vLLM's --gpu-memory-utilization (0 < u <= 0.95).
	GPUMemoryUtilization float64
	// MinContextLength is the shortest --max-model-len that counts as fitting.
	MinContextLength int
	// MaxModelLen, when set, is the --max-model-len the user asks for; it
	// must be within what the KV cache allows.
	MaxModelLen int
	// NoPipelineParallel refuses an instance type whose GPUs tensor
	// parallelism alone cannot use, for servers without pipeline
	// parallelism: the AWS LMI container's vLLM rolling batch raises
	// "Pipeline parallelism is not supported in vLLM's LLMEngine used in
	// rolling_batch implementation" (djl-serving 0.33.0-dlc,
	// engines/python/setup/djl_python/properties_manager/vllm_rb_properties.py,
	// validate_pipeline_parallel).
	NoPipelineParallel bool
	// Server names that server in the refusal ("the LMI container").
	Server string
	// Colocated, when set, is a second model served on the first GPU: its
	// share comes out of GPUMemoryUtilization before the main model is sized.
	Colocated *Colocated
}

func (o Options) withDefaults() Options {
	if o.GPUMemoryUtilization == 0 {
		o.GPUMemoryUtilization = DefaultGPUMemoryUtilization
	}
	if o.MinContextLength == 0 {
		o.MinContextLength = DefaultMinContextLength
	}
	return o
}

// Decision is how a model is served on an instance type.
type Decision struct {
	Model        string
	InstanceType string
	GPU          string
	GPUs         int
	// ComputeCapability is the GPU's CUDA compute capability ("7.5"), which
	// decides among other things which attention kernels vLLM can use.
	ComputeCapability string
	// DType is vLLM's --dtype: bfloat16 where the GPU has it, else float16.
	DType string
	// TensorParallel and PipelineParallel multiply to GPUs.
	TensorParallel   int
	PipelineParallel int
	// GPUMemoryUtilization is vLLM's --gpu-memory-utilization.
	GPUMemoryUtilization float64
	// WeightsGiB is the whole model in 16-bit precision.
	WeightsGiB float64
	// KVCacheGiB is the memory left for KV cache on all GPUs together.
	KVCacheGiB float64
	// KVCacheTokens is how many tokens that KV cache holds.
	KVCacheTokens int
	// MaxModelLen is vLLM's --max-model-len.
	MaxModelLen int
	// Colocated is the second model on the first GPU, when there is one;
	// GPUMemoryUtilization is then the main model's share after it.
	Colocated *ColocatedDecision
	// Notes explain choices a reader would not guess (parallelism that is not
	// simply "all GPUs", float16 instead of bf16, a context shorter than the
	// model's).
	Notes []string
}

// Summary is a one-line description, for messages and plans.
func (d Decision) Summary() string {
	par := fmt.Sprintf("TP %d", d.TensorParallel)
	if d.PipelineParallel > 1 {
		par += fmt.Sprintf(" x PP %d", d.PipelineParallel)
	}
	s := fmt.Sprintf("%d x %s, %s, %s, max model length %d", d.GPUs, d.GPU, par, d.DType, d.MaxModelLen)
	if d.Colocated != nil {
		s += fmt.Sprintf(", with %s (%.2f of GPU 0)", d.Colocated.Model, d.Colocated.GPUMemoryUtilization)
	}
	return s
}

// FitError says why a model does not fit an instance type.
type FitError struct {
	Model        string
	InstanceType string
	Reason       string
}

func (e *FitError) Error() string {
	return fmt.Sprintf("%s does not fit on %s: %s", e.Model, e.InstanceType, e.Reason)
}

// Decide sizes model m on instance type t.
func Decide(m Model, t InstanceType, opts Options) (Decision, error) {
	opts = opts.withDefaults()
	if m.Unservable != "" {
		return Decision{}, &FitError{Model: m.Key, InstanceType: t.Name, Reason: m.Unservable}
	}
	if opts.GPUMemoryUtilization <= 0 || opts.GPUMemoryUtilization > 0.95 {
		return Decision{}, fmt.Errorf("GPU memory utilization %.2f is outside (0, 0.95]", opts.GPUMemoryUtilization)
	}

	tp := TensorParallelSize(m, t.GPUs)
	pp := t.GPUs / tp
	if opts.NoPipelineParallel && pp > 1 {
		return Decision{}, &FitError{Model: m.Key, InstanceType: t.Name, Reason: fmt.Sprintf(
			"tensor parallelism can split its %d attention heads (%d KV heads) over %d of the %d GPUs, and %s "+
				"has no pipeline parallelism to use the others", m.AttentionHeads, m.KVHeads, tp, t.GPUs, opts.Server)}
	}
	if pp > m.Layers {
		pp = m.Layers
	}
	d := Decision{
		Model: m.Key, InstanceType: t.Name, GPU: t.GPU.Name, GPUs: t.GPUs, ComputeCapability: t.GPU.ComputeCapability,
		DType: "bfloat16", TensorParallel: tp, PipelineParallel: pp,
		GPUMemoryUtilization: opts.GPUMemoryUtilization,
		WeightsGiB:           m.WeightsBytes() / gib,
	}
	if !t.GPU.BF16 {
		d.DType = "float16"
		d.Notes = append(d.Notes, fmt.Sprintf("%s has no bfloat16: the bf16 weights run as float16, "+
			"where Qwen2.5-based models can overflow into NaN output (vLLM issue #14126); prefer g5 (A10G) when quality matters", t.GPU.Name))
	}
	if opts.Colocated != nil {
		main, cd, err := colocate(*opts.Colocated, t, opts.GPUMemoryUtilization)
		if err != nil {
			return Decision{}, &FitError{Model: m.Key, InstanceType: t.Name, Reason: err.Error()}
		}
		opts.GPUMemoryUtilization, d.GPUMemoryUtilization, d.Colocated = main, main, &cd
		d.Notes = append(d.Notes, fmt.Sprintf("%s runs beside it on the first GPU with %.2f of its memory (%.1f GiB, "+
			"--max-model-len %d); the model gets %.2f of each GPU", cd.Model, cd.GPUMemoryUtilization, cd.GiB, cd.MaxModelLen, main))
	}
	if tp*pp < t.GPUs {
		d.Notes = append(d.Notes, fmt.Sprintf("only %d of %d GPUs are used", tp*pp, t.GPUs))
	}
	if tp < t.GPUs {
		d.Notes = append(d.Notes, fmt.Sprintf("tensor parallelism must divide the %d attention heads and fit the %d KV heads, "+
			"so it is %d, not %d; pipeline parallelism %d spreads the layers over the other GPUs",
			m.AttentionHeads, m.KVHeads, tp, t.GPUs, pp))
	}

	usable := float64(t.GPU.MemoryMiB) * mib * opts.GPUMemoryUtilization
	stages := float64(tp * pp)
	weightsPerGPU := m.WeightsBytes() / stages
	kvPerGPU := usable - weightsPerGPU - reserveGiBPerGPU*gib
	if kvPerGPU <= 0 {
		return Decision{}, &FitError{Model: m.Key, InstanceType: t.Name, Reason: fmt.Sprintf(
			"its %.1f GiB of weights need %.1f GiB on each of %d %s GPUs, plus %.1f GiB for activations, "+
				"but vLLM may use only %.1f GiB of each (%.0f%% of %.1f GiB)",
			d.WeightsGiB, weightsPerGPU/gib, tp*pp, t.GPU.Name, reserveGiBPerGPU,
			usable/gib, opts.GPUMemoryUtilization*100, float64(t.GPU.MemoryMiB)/1024) + colocatedHint(d)}
	}

	// Each GPU holds the KV heads of its tensor-parallel shard for the layers
	// of its pipeline stage. With more shards than KV heads vLLM replicates
	// them, one per GPU.
	kvHeadsPerGPU := m.KVHeads / tp
	if kvHeadsPerGPU < 1 {
		kvHeadsPerGPU = 1
	}
	layersPerStage := int(math.Ceil(float64(m.Layers) / float64(pp)))
	bytesPerTokenPerGPU := float64(2 * layersPerStage * kvHeadsPerGPU * m.HeadDim * 2)
	tokens := int(kvPerGPU/bytesPerTokenPerGPU) / blockSize * blockSize
	d.KVCacheGiB = kvPerGPU * stages / gib
	d.KVCacheTokens = tokens

	allowed := int(float64(tokens)*kvSafety) / maxModelLenStep * maxModelLenStep
	if allowed > m.ContextLength {
		allowed = m.ContextLength
	}
	if allowed < opts.MinContextLength {
		return Decision{}, &FitError{Model: m.Key, InstanceType: t.Name, Reason: fmt.Sprintf(
			"after the weights, the KV cache holds about %d tokens (%.1f GiB), so the longest context "+
				"would be %d tokens, below the minimum of %d",
			tokens, d.KVCacheGiB, allowed, opts.MinContextLength) + colocatedHint(d)}
	}
	d.MaxModelLen = allowed
	if opts.MaxModelLen > 0 {
		if opts.MaxModelLen > allowed {
			return Decision{}, &FitError{Model: m.Key, InstanceType: t.Name, Reason: fmt.Sprintf(
				"a max model length of %d tokens needs more KV cache than the %d tokens (%.1f GiB) left "+
					"after the weights; at most %d fits", opts.MaxModelLen, tokens, d.KVCacheGiB, allowed) + colocatedHint(d)}
		}
		d.MaxModelLen = opts.MaxModelLen
	}
	if d.MaxModelLen < m.ContextLength && opts.MaxModelLen == 0 {
		d.Notes = append(d.Notes, fmt.Sprintf("context limited to %d of the model's %d tokens by KV-cache memory",
			d.MaxModelLen, m.ContextLength))
	}
	return d, nil
}

// colocatedHint says, in a refusal, that the guard took part of the GPU.
func colocatedHint(d Decision) string {
	if d.Colocated == nil {
		return ""
	}
	return fmt.Sprintf(" (with %s taking %.2f of the first GPU beside it)", d.Colocated.Model, d.Colocated.GPUMemoryUtilization)
}

// TensorParallelSize is the largest tensor-parallel size vLLM accepts for the
// model that also divides the GPU count: it must divide the attention heads,
// and either divide the KV heads or be a multiple of them (vLLM then
// replicates KV heads). A 28-head model on 8 GPUs gets 4.
func TensorParallelSize(m Model, gpus int) int {
	if m.AttentionHeads <= 0 || m.KVHeads <= 0 {
		return 1
	}
	for tp := gpus; tp > 1; tp-- {
		if gpus%tp != 0 || m.AttentionHeads%tp != 0 {
			continue
		}
		if m.KVHeads%tp == 0 || tp%m.KVHeads == 0 {
			return tp
		}
	}
	return 1
}

// FirstFit sizes the model on each candidate in order and returns the first
// decision that fits. Callers order candidates by price, cheapest first.
func FirstFit(m Model, candidates []InstanceType, opts Options) (Decision, bool) {
	for _, t := range candidates {
		if d, err := Decide(m, t, opts); err == nil {
			return d, true
		}
	}
	return Decision{}, false
}
