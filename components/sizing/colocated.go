package sizing

import (
	"fmt"
	"math"
)

// GuardModel is the guard model the guardrail gateway can ask about what its
// rules cannot judge (cmd/guardrail, "Guard model"): Qwen3Guard-Gen-0.6B,
// Apache-2.0, on ModelScope as Qwen/Qwen3Guard-Gen-0.6B. Its architecture is
// Qwen3-0.6B's (config.json of Qwen/Qwen3-0.6B: 28 layers, 16 attention
// heads, 8 KV heads, head_dim 128, max_position_embeddings 40960; the
// Qwen3Guard README says the Gen models are fine-tuned from Qwen3 of the same
// size; that the guard's config.json is identical is UNCONFIRMED). The
// parameter count is taken as 0.75B, the size of the published 1.5 GB bf16
// checkpoint (embedding and output layer both stored), not the 0.6B of the
// name, so that the estimate errs on the large side.
var GuardModel = Model{
	Key: "qwen3guard-gen-0.6b", ModelScopeID: "Qwen/Qwen3Guard-Gen-0.6B",
	ParamsBillion: 0.75, Layers: 28, AttentionHeads: 16, KVHeads: 8, HeadDim: 128, ContextLength: 32768,
}

const (
	// GuardMaxModelLen is the guard vLLM's --max-model-len. The gateway sends
	// it at most GuardMaxChars runes per message and an answer check sends
	// two messages (the prompt and the answer): 2 x 2500 runes of Chinese,
	// at up to about 1.4 tokens a character in Qwen's tokenizer, plus the
	// moderation template, stay below 8192 tokens.
	GuardMaxModelLen = 8192
	// GuardMaxChars is the gateway's -guard-max-chars for a colocated guard.
	GuardMaxChars = 2500
	// guardReserveGiB is kept for the guard's activations, sampler and
	// cuBLAS workspace. It runs with --enforce-eager and --max-num-seqs 8,
	// so there are no CUDA graphs to hold.
	guardReserveGiB = 1.0
	// minMainShare is the least of each GPU that the main model must keep;
	// below it a colocated guard is refused rather than squeezed in.
	minMainShare = 0.30
	// MaxColocatedUtilization bounds the two shares together. What is left
	// holds both engines' CUDA contexts (created before vLLM's memory
	// snapshot, so outside either share) and the main model's CUDA graphs
	// (captured after the KV cache is sized, outside the share in vLLM 0.11:
	// vllm/v1/worker/gpu_model_runner.py capture_model): at 0.95 a T4 would
	// have 0.75 GiB for all three.
	MaxColocatedUtilization = 0.90
)

// Colocated is a second, small model served by its own vLLM beside the main
// one, on the first GPU of the instance.
type Colocated struct {
	Model       Model
	MaxModelLen int
}

// GuardColocated is the guard model as the deploy targets colocate it.
func GuardColocated() *Colocated {
	return &Colocated{Model: GuardModel, MaxModelLen: GuardMaxModelLen}
}

// GiB is the memory its vLLM needs: the weights, the reserve, and a KV cache
// that holds one sequence of MaxModelLen tokens with the same safety margin
// the main model gets.
func (c Colocated) GiB() float64 {
	kv := float64(2*c.Model.Layers*c.Model.KVHeads*c.Model.HeadDim*2) * float64(c.MaxModelLen) / kvSafety
	return (c.Model.WeightsBytes()+kv)/gib + guardReserveGiB
}

// ColocatedDecision is how the colocated model runs.
type ColocatedDecision struct {
	Model       string
	MaxModelLen int
	// GPUMemoryUtilization is its vLLM's --gpu-memory-utilization: its share
	// of the first GPU, taken from the main model's.
	GPUMemoryUtilization float64
	GiB                  float64
	DType                string
}

// colocate splits the GPU memory share u between the main model and c:
// vLLM gives each engine total x --gpu-memory-utilization, whatever else
// runs on the GPU (vllm/config/cache.py gpu_memory_utilization: "a
// per-instance limit"), and refuses to start when less than that is free
// (vllm/v1/worker/gpu_worker.py init_device, "Free memory on device ... is
// less than desired GPU memory utilization"). The two shares therefore add up
// to u, which leaves the rest of the GPU for the two CUDA contexts. The main
// share applies to every GPU (vLLM has one value for all of them), so with
// tensor parallelism the other GPUs keep the guard's share unused.
func colocate(c Colocated, t InstanceType, u float64) (main float64, cd ColocatedDecision, err error) {
	if u > MaxColocatedUtilization+1e-9 {
		return 0, ColocatedDecision{}, fmt.Errorf("with %s beside it, the GPU memory utilization %.2f must be at most %.2f: "+
			"the rest holds both engines' CUDA contexts and the model's CUDA graphs", c.Model.Key, u, MaxColocatedUtilization)
	}
	gpuGiB := float64(t.GPU.MemoryMiB) / 1024
	need := c.GiB()
	share := math.Ceil(need/gpuGiB*100) / 100
	main = math.Floor((u-share)*100+1e-9) / 100
	cd = ColocatedDecision{Model: c.Model.Key, MaxModelLen: c.MaxModelLen, GPUMemoryUtilization: share, GiB: need, DType: "bfloat16"}
	if !t.GPU.BF16 {
		cd.DType = "float16"
	}
	if main < minMainShare {
		return 0, cd, fmt.Errorf("the colocated %s needs %.1f GiB (%.0f%%) of a %.1f GiB %s, which leaves the model "+
			"%.0f%% of %.0f%%", c.Model.Key, need, share*100, gpuGiB, t.GPU.Name, main*100, u*100)
	}
	return main, cd, nil
}
