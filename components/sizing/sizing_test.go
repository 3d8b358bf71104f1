package sizing

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	qwen1_5b = "deepseek-r1-distill-qwen-1.5b"
	qwen7b   = "deepseek-r1-distill-qwen-7b"
	llama8b  = "deepseek-r1-distill-llama-8b"
	qwen14b  = "deepseek-r1-distill-qwen-14b"
	qwen32b  = "deepseek-r1-distill-qwen-32b"
	llama70b = "deepseek-r1-distill-llama-70b"
	r1       = "deepseek-r1"
)

func mustModel(t *testing.T, key string) Model {
	t.Helper()
	m, err := LookupModel(key)
	require.NoError(t, err)
	return m
}

func mustType(t *testing.T, name string) InstanceType {
	t.Helper()
	it, err := LookupInstanceType(name)
	require.NoError(t, err)
	return it
}

func TestCatalogKeys(t *testing.T) {
	assert.Equal(t, []string{qwen1_5b, qwen7b, llama8b, qwen14b, qwen32b, llama70b, r1}, ModelKeys())
	assert.Equal(t, []string{
		"g4dn.12xlarge", "g4dn.16xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.xlarge",
		"g5.12xlarge", "g5.16xlarge", "g5.24xlarge", "g5.2xlarge", "g5.48xlarge", "g5.4xlarge", "g5.8xlarge", "g5.xlarge",
		"p3.16xlarge", "p3.2xlarge", "p3.8xlarge",
	}, InstanceTypeNames())
}

// dtypeFor is the expected --dtype per family: T4 (g4dn) and V100 (p3) have
// no bfloat16; A10G (g5) has.
func dtypeFor(t *testing.T, instanceType string) string {
	switch {
	case strings.HasPrefix(instanceType, "g4dn."), strings.HasPrefix(instanceType, "p3."):
		return "float16"
	case strings.HasPrefix(instanceType, "g5."):
		return "bfloat16"
	}
	t.Fatalf("no expected dtype for %s", instanceType)
	return ""
}

// TestDecideInvariants sizes every model on every instance type with the
// default options and checks what must hold for any decision.
func TestDecideInvariants(t *testing.T) {
	for _, key := range ModelKeys() {
		m := mustModel(t, key)
		for _, name := range InstanceTypeNames() {
			it := mustType(t, name)
			t.Run(key+"/"+name, func(t *testing.T) {
				d, err := Decide(m, it, Options{})
				if key == r1 {
					require.Error(t, err)
					var fe *FitError
					require.ErrorAs(t, err, &fe)
					assert.Equal(t, r1, fe.Model)
					assert.Equal(t, name, fe.InstanceType)
					assert.Contains(t, err.Error(), "distill-llama-70b")
					return
				}
				if err != nil {
					var fe *FitError
					assert.ErrorAs(t, err, &fe, "a model that does not fit must say so with a *FitError")
					return
				}
				assert.Equal(t, key, d.Model)
				assert.Equal(t, name, d.InstanceType)
				assert.Equal(t, it.GPUs, d.GPUs)
				assert.GreaterOrEqual(t, d.TensorParallel, 1)
				assert.GreaterOrEqual(t, d.PipelineParallel, 1)
				assert.LessOrEqual(t, d.TensorParallel*d.PipelineParallel, it.GPUs)
				assert.Zero(t, m.AttentionHeads%d.TensorParallel, "TP %d must divide %d heads", d.TensorParallel, m.AttentionHeads)
				assert.True(t, m.KVHeads%d.TensorParallel == 0 || d.TensorParallel%m.KVHeads == 0,
					"TP %d and %d KV heads", d.TensorParallel, m.KVHeads)
				assert.LessOrEqual(t, d.MaxModelLen, m.ContextLength)
				assert.LessOrEqual(t, d.MaxModelLen, d.KVCacheTokens)
				assert.GreaterOrEqual(t, d.MaxModelLen, DefaultMinContextLength)
				assert.Zero(t, d.MaxModelLen%1024, "max model length %d is a multiple of 1024", d.MaxModelLen)
				assert.Zero(t, d.KVCacheTokens%16, "KV cache tokens %d are whole blocks", d.KVCacheTokens)
				assert.Greater(t, d.KVCacheGiB, 0.0)
				assert.Equal(t, dtypeFor(t, name), d.DType)
				assert.InDelta(t, 0.90, d.GPUMemoryUtilization, 1e-12)
			})
		}
	}
}

// Memory per GPU that vLLM may use at the default utilization of 0.9, less
// the 2 GiB reserve:
//
//	T4   15360 MiB x 0.9 = 13824 MiB = 13.50 GiB; - 2 = 11.50 GiB
//	V100 16384 MiB x 0.9 = 14745.6 MiB = 14.40 GiB; - 2 = 12.40 GiB
//	A10G 23028 MiB x 0.9 = 20725.2 MiB = 20.24 GiB; - 2 = 18.24 GiB
//
// Weights in 16 bits, params x 2 bytes / 2^30:
//
//	qwen-1.5b  1.78e9 x 2 =   3.32 GiB
//	qwen-7b    7.62e9 x 2 =  14.19 GiB
//	llama-8b   8.03e9 x 2 =  14.96 GiB
//	qwen-14b   14.8e9 x 2 =  27.57 GiB
//	qwen-32b   32.8e9 x 2 =  61.09 GiB
//	llama-70b  70.6e9 x 2 = 131.50 GiB
//
// KV bytes per token per GPU = 2 (K and V) x layers per stage x KV heads per
// GPU x 128 (head dim) x 2 bytes. Tokens are rounded down to 16, the allowed
// --max-model-len is 90% of that rounded down to 1024, capped at 131072.
func TestDecideExpectations(t *testing.T) {
	tests := []struct {
		model, instanceType string
		fits                bool
		tp, pp              int
		maxModelLen         int // 0: not checked
		why                 string
	}{
		{qwen1_5b, "g4dn.xlarge", true, 1, 1, 131072,
			"11.50 - 3.32 = 8.18 GiB KV; 2x28x2x128x2 = 28 KiB/token -> 306496 tokens; 90% > 131072, capped"},
		{qwen7b, "g4dn.xlarge", false, 0, 0, 0,
			"14.19 GiB weights > 13.50 GiB usable on the T4"},
		{qwen7b, "p3.2xlarge", false, 0, 0, 0,
			"14.19 GiB weights + 2 GiB reserve > 14.40 GiB usable on the V100"},
		{qwen7b, "g5.xlarge", true, 1, 1, 67584,
			"18.24 - 14.19 = 4.05 GiB KV; 2x28x4x128x2 = 56 KiB/token -> 75760 tokens; x0.9 = 68184 -> 67584"},
		{llama8b, "g5.xlarge", true, 1, 1, 23552,
			"18.24 - 14.96 = 3.28 GiB KV; 2x32x8x128x2 = 128 KiB/token -> 26880 tokens; x0.9 = 24192 -> 23552"},
		{llama8b, "g4dn.xlarge", false, 0, 0, 0,
			"14.96 GiB weights > 13.50 GiB usable on the T4"},
		{qwen14b, "g5.xlarge", false, 0, 0, 0,
			"27.57 GiB weights > 20.24 GiB usable on one A10G"},
		{qwen14b, "g4dn.12xlarge", true, 4, 1, 90112,
			"TP 4 (40 and 8 heads divide by 4); 11.50 - 27.57/4 = 4.61 GiB KV; 2x48x2x128x2 = 48 KiB/token " +
				"-> 100656 tokens; x0.9 = 90590 -> 90112"},
		{qwen14b, "g5.12xlarge", true, 4, 1, 131072,
			"18.24 - 6.89 = 11.35 GiB KV; 48 KiB/token -> 247888 tokens, capped at 131072"},
		{qwen32b, "g5.12xlarge", true, 4, 1, 43008,
			"18.24 - 61.09/4 = 18.24 - 15.27 = 2.97 GiB KV; 2x64x2x128x2 = 64 KiB/token -> 48576 tokens; " +
				"x0.9 = 43718 -> 43008"},
		{qwen32b, "g4dn.12xlarge", false, 0, 0, 0,
			"61.09/4 = 15.27 GiB per GPU > 13.50 GiB usable on the T4"},
		{qwen32b, "p3.8xlarge", false, 0, 0, 0,
			"61.09/4 = 15.27 GiB per GPU > 14.40 GiB usable on the V100"},
		{llama70b, "g5.48xlarge", true, 8, 1, 41984,
			"TP 8 (64 and 8 heads divide by 8); 18.24 - 131.50/8 = 18.24 - 16.44 = 1.80 GiB KV; " +
				"2x80x1x128x2 = 40 KiB/token -> 47216 tokens; x0.9 = 42494 -> 41984"},
		{llama70b, "g5.2xlarge", false, 0, 0, 0,
			"131.50 GiB weights on one A10G"},
		{llama70b, "g5.12xlarge", false, 0, 0, 0,
			"131.50/4 = 32.88 GiB per GPU > 20.24"},
		{llama70b, "p3.16xlarge", false, 0, 0, 0,
			"131.50/8 = 16.44 GiB per GPU > 14.40 GiB usable on the V100"},
		{qwen7b, "g5.48xlarge", true, 4, 2, 131072,
			"28 heads: 8, 7, 6, 5 do not divide both 8 GPUs and 28 heads; 4 does and divides 4 KV heads"},
		{qwen1_5b, "g5.48xlarge", true, 4, 2, 131072,
			"12 heads: 8 does not divide 12; 4 does and is a multiple of the 2 KV heads"},
		{qwen1_5b, "p3.16xlarge", true, 4, 2, 131072,
			"as on g5.48xlarge: 8 GPUs, TP 4 x PP 2"},
	}
	for _, tc := range tests {
		t.Run(tc.model+"/"+tc.instanceType, func(t *testing.T) {
			d, err := Decide(mustModel(t, tc.model), mustType(t, tc.instanceType), Options{})
			if !tc.fits {
				var fe *FitError
				require.ErrorAs(t, err, &fe, tc.why)
				assert.Equal(t, tc.model, fe.Model)
				assert.Equal(t, tc.instanceType, fe.InstanceType)
				assert.NotEmpty(t, fe.Reason)
				return
			}
			require.NoError(t, err, tc.why)
			assert.Equal(t, tc.tp, d.TensorParallel, tc.why)
			assert.Equal(t, tc.pp, d.PipelineParallel, tc.why)
			if tc.maxModelLen > 0 {
				assert.Equal(t, tc.maxModelLen, d.MaxModelLen, tc.why)
			}
		})
	}
}

// Among the whole catalog, only g5.48xlarge (8 x A10G) holds llama-70b.
func TestLlama70BFitsOnlyG548xlarge(t *testing.T) {
	m := mustModel(t, llama70b)
	var fits []string
	for _, it := range InstanceTypes() {
		if _, err := Decide(m, it, Options{}); err == nil {
			fits = append(fits, it.Name)
		}
	}
	assert.Equal(t, []string{"g5.48xlarge"}, fits)
}

func TestDecideNotes(t *testing.T) {
	t.Run("qwen-7b on 8 GPUs explains TP 4 x PP 2", func(t *testing.T) {
		d, err := Decide(mustModel(t, qwen7b), mustType(t, "g5.48xlarge"), Options{})
		require.NoError(t, err)
		joined := strings.Join(d.Notes, "\n")
		assert.Contains(t, joined, "28 attention heads")
		assert.Contains(t, joined, "4 KV heads")
		assert.Contains(t, joined, "so it is 4, not 8")
		assert.Contains(t, joined, "pipeline parallelism 2")
	})
	t.Run("T4 warns about float16", func(t *testing.T) {
		d, err := Decide(mustModel(t, qwen1_5b), mustType(t, "g4dn.xlarge"), Options{})
		require.NoError(t, err)
		assert.Contains(t, strings.Join(d.Notes, "\n"), "NVIDIA T4 has no bfloat16")
	})
	t.Run("A10G with all GPUs in TP has no parallelism note", func(t *testing.T) {
		d, err := Decide(mustModel(t, qwen1_5b), mustType(t, "g5.xlarge"), Options{})
		require.NoError(t, err)
		assert.Empty(t, d.Notes, "full context, bf16, one GPU")
	})
	t.Run("short context is noted", func(t *testing.T) {
		d, err := Decide(mustModel(t, qwen32b), mustType(t, "g5.12xlarge"), Options{})
		require.NoError(t, err)
		assert.Contains(t, strings.Join(d.Notes, "\n"), "context limited to 43008 of the model's 131072 tokens")
	})
}

func TestTensorParallelSize(t *testing.T) {
	tests := []struct {
		name       string
		heads, kv  int
		gpus, want int
	}{
		{"qwen-7b on 8", 28, 4, 8, 4},
		{"qwen-14b on 8", 40, 8, 8, 8},
		{"llama-70b on 4", 64, 8, 4, 4},
		{"qwen-1.5b on 4", 12, 2, 4, 4},
		{"llama-8b on 1", 32, 8, 1, 1},
		{"no KV heads", 128, 0, 8, 1},
		{"no attention heads", 0, 8, 8, 1},
		{"28 heads on 1", 28, 4, 1, 1},
		{"12 heads, 2 KV, on 8", 12, 2, 8, 4},
		{"odd heads on 4", 7, 7, 4, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Model{AttentionHeads: tc.heads, KVHeads: tc.kv}
			assert.Equal(t, tc.want, TensorParallelSize(m, tc.gpus))
		})
	}
}

func TestDecideOptions(t *testing.T) {
	qwen := mustModel(t, qwen7b)
	g5 := mustType(t, "g5.xlarge")

	t.Run("MaxModelLen above the allowed maximum", func(t *testing.T) {
		// qwen-7b on g5.xlarge allows at most 67584 (see TestDecideExpectations).
		_, err := Decide(qwen, g5, Options{MaxModelLen: 67584 + 1024})
		var fe *FitError
		require.ErrorAs(t, err, &fe)
		assert.Contains(t, err.Error(), "at most 67584 fits")
		assert.Contains(t, err.Error(), "68608")
	})
	t.Run("MaxModelLen at the allowed maximum", func(t *testing.T) {
		d, err := Decide(qwen, g5, Options{MaxModelLen: 67584})
		require.NoError(t, err)
		assert.Equal(t, 67584, d.MaxModelLen)
	})
	t.Run("MaxModelLen above the model context", func(t *testing.T) {
		_, err := Decide(mustModel(t, qwen1_5b), g5, Options{MaxModelLen: 131072 + 1})
		var fe *FitError
		require.ErrorAs(t, err, &fe)
		assert.Contains(t, err.Error(), "at most 131072 fits")
	})
	t.Run("MaxModelLen 4096 with MinContextLength 4096 is honoured", func(t *testing.T) {
		d, err := Decide(qwen, g5, Options{MaxModelLen: 4096, MinContextLength: 4096})
		require.NoError(t, err)
		assert.Equal(t, 4096, d.MaxModelLen)
		for _, n := range d.Notes {
			assert.NotContains(t, n, "context limited", "a length the user chose is not a KV-cache limit")
		}
	})
	t.Run("explicit utilization is used", func(t *testing.T) {
		// 23028 MiB x 0.95 = 21876.6 MiB = 21.36 GiB; - 14.19 - 2 = 5.17 GiB KV;
		// / 56 KiB = 96800 tokens (more than the 75760 at 0.9).
		d, err := Decide(qwen, g5, Options{GPUMemoryUtilization: 0.95})
		require.NoError(t, err)
		assert.InDelta(t, 0.95, d.GPUMemoryUtilization, 1e-12)
		assert.Equal(t, 96800, d.KVCacheTokens)
	})
	for _, u := range []float64{0.99, -0.1, 1.0, 0.951} {
		t.Run(fmt.Sprintf("utilization %g is out of range", u), func(t *testing.T) {
			_, err := Decide(qwen, g5, Options{GPUMemoryUtilization: u})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "outside (0, 0.95]")
		})
	}
	t.Run("MinContextLength 131072 rules out qwen-7b on g5.xlarge", func(t *testing.T) {
		_, err := Decide(qwen, g5, Options{MinContextLength: 131072})
		var fe *FitError
		require.ErrorAs(t, err, &fe)
		assert.Contains(t, err.Error(), "below the minimum of 131072")
	})
	t.Run("MinContextLength at the boundary", func(t *testing.T) {
		// qwen-7b on g5.xlarge allows 67584 (see TestDecideExpectations).
		d, err := Decide(qwen, g5, Options{MinContextLength: 67584})
		require.NoError(t, err)
		assert.Equal(t, 67584, d.MaxModelLen)
		_, err = Decide(qwen, g5, Options{MinContextLength: 67584 + 1})
		var fe *FitError
		require.ErrorAs(t, err, &fe)
		assert.Contains(t, err.Error(), "would be 67584 tokens, below the minimum of 67585")
	})
	t.Run("MinContextLength 131072 still fits qwen-7b on g5.12xlarge", func(t *testing.T) {
		d, err := Decide(qwen, mustType(t, "g5.12xlarge"), Options{MinContextLength: 131072})
		require.NoError(t, err)
		assert.Equal(t, 131072, d.MaxModelLen)
	})
}

func TestFirstFit(t *testing.T) {
	types := func(names ...string) []InstanceType {
		out := make([]InstanceType, len(names))
		for i, n := range names {
			out[i] = mustType(t, n)
		}
		return out
	}
	tests := []struct {
		name       string
		model      string
		candidates []InstanceType
		want       string // "" = none fits
	}{
		{"first candidate fits", qwen1_5b, types("g4dn.xlarge", "g5.xlarge"), "g4dn.xlarge"},
		{"order is the caller's", qwen1_5b, types("g5.xlarge", "g4dn.xlarge"), "g5.xlarge"},
		{"skips what does not fit", qwen7b, types("g4dn.xlarge", "p3.2xlarge", "g5.xlarge", "g5.12xlarge"), "g5.xlarge"},
		{"llama-70b", llama70b, types("g5.12xlarge", "p3.16xlarge", "g5.48xlarge"), "g5.48xlarge"},
		{"none fits", qwen32b, types("g4dn.xlarge", "g5.xlarge", "p3.8xlarge"), ""},
		{"no candidates", qwen1_5b, nil, ""},
		{"deepseek-r1 never fits", r1, InstanceTypes(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := FirstFit(mustModel(t, tc.model), tc.candidates, Options{})
			if tc.want == "" {
				assert.False(t, ok)
				assert.Equal(t, Decision{}, d)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tc.want, d.InstanceType)
		})
	}
	t.Run("options apply", func(t *testing.T) {
		d, ok := FirstFit(mustModel(t, qwen7b), types("g5.xlarge", "g5.12xlarge"), Options{MinContextLength: 131072})
		require.True(t, ok)
		assert.Equal(t, "g5.12xlarge", d.InstanceType)
	})
}

func TestLookupInstanceType(t *testing.T) {
	tests := []struct {
		name     string
		wantName string
		gpu      string
		gpus     int
		memMiB   int
		bf16     bool
	}{
		{"g5.12xlarge", "g5.12xlarge", "NVIDIA A10G", 4, 23028, true},
		{"ml.g5.12xlarge", "ml.g5.12xlarge", "NVIDIA A10G", 4, 23028, true},
		{"g4dn.xlarge", "g4dn.xlarge", "NVIDIA T4", 1, 15360, false},
		{"p3.16xlarge", "p3.16xlarge", "NVIDIA V100", 8, 16384, false},
		{"g5.48xlarge", "g5.48xlarge", "NVIDIA A10G", 8, 23028, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, err := LookupInstanceType(tc.name)
			require.NoError(t, err)
			assert.Equal(t, tc.wantName, it.Name)
			assert.Equal(t, tc.gpu, it.GPU.Name)
			assert.Equal(t, tc.gpus, it.GPUs)
			assert.Equal(t, tc.memMiB, it.GPU.MemoryMiB)
			assert.Equal(t, tc.bf16, it.GPU.BF16)
			assert.Equal(t, tc.gpus*tc.memMiB, it.GPUMemoryMiB())
		})
	}
	t.Run("ml. prefix has the EC2 hardware", func(t *testing.T) {
		ml := mustType(t, "ml.g5.12xlarge")
		ec2 := mustType(t, "g5.12xlarge")
		ml.Name = ec2.Name
		assert.Equal(t, ec2, ml)
	})
	for _, bad := range []string{"g6.xlarge", "p4d.24xlarge", "", "G5.XLARGE", "ml.ml.g5.xlarge", "g5"} {
		t.Run("unknown "+bad, func(t *testing.T) {
			_, err := LookupInstanceType(bad)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "choose one of")
			assert.Contains(t, err.Error(), "g4dn.xlarge")
			assert.Contains(t, err.Error(), "g5.48xlarge")
			assert.Contains(t, err.Error(), "p3.2xlarge")
		})
	}
}

func TestLookupModel(t *testing.T) {
	m := mustModel(t, qwen7b)
	assert.Equal(t, "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", m.ModelScopeID)
	assert.Equal(t, 28, m.AttentionHeads)
	assert.Equal(t, 4, m.KVHeads)
	assert.Equal(t, 28, m.Layers)

	for _, bad := range []string{"", "qwen-7b", "DeepSeek-R1", "deepseek-r1-distill-qwen-72b"} {
		t.Run("unknown "+bad, func(t *testing.T) {
			_, err := LookupModel(bad)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "choose one of")
			assert.Contains(t, err.Error(), qwen1_5b)
			assert.Contains(t, err.Error(), llama70b)
		})
	}
}

func TestCatalogCopies(t *testing.T) {
	ms := Models()
	ms[0].Key = "mutated"
	assert.NotEqual(t, "mutated", Models()[0].Key)
	ts := InstanceTypes()
	ts[0].Name = "mutated"
	assert.NotEqual(t, "mutated", InstanceTypes()[0].Name)
}

func TestWeightsBytes(t *testing.T) {
	// 7.62e9 parameters x 2 bytes.
	assert.InDelta(t, 15.24e9, mustModel(t, qwen7b).WeightsBytes(), 1)
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"with pipeline parallelism",
			Decision{GPUs: 8, GPU: "NVIDIA A10G", TensorParallel: 4, PipelineParallel: 2, DType: "bfloat16", MaxModelLen: 131072},
			"8 x NVIDIA A10G, TP 4 x PP 2, bfloat16, max model length 131072"},
		{"tensor parallelism only",
			Decision{GPUs: 4, GPU: "NVIDIA A10G", TensorParallel: 4, PipelineParallel: 1, DType: "bfloat16", MaxModelLen: 43008},
			"4 x NVIDIA A10G, TP 4, bfloat16, max model length 43008"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.d.Summary())
		})
	}
	t.Run("decided qwen-7b on g5.48xlarge", func(t *testing.T) {
		d, err := Decide(mustModel(t, qwen7b), mustType(t, "g5.48xlarge"), Options{})
		require.NoError(t, err)
		s := d.Summary()
		assert.Contains(t, s, "TP 4")
		assert.Contains(t, s, "PP 2")
	})
	t.Run("no PP when PP is 1", func(t *testing.T) {
		d, err := Decide(mustModel(t, qwen32b), mustType(t, "g5.12xlarge"), Options{})
		require.NoError(t, err)
		assert.NotContains(t, d.Summary(), "PP")
	})
}

func TestFitErrorMessage(t *testing.T) {
	err := error(&FitError{Model: "m", InstanceType: "t", Reason: "r"})
	assert.Equal(t, "m does not fit on t: r", err.Error())
	var fe *FitError
	assert.True(t, errors.As(err, &fe))
}
