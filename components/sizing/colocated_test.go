package sizing

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The guard's footprint: 0.75B parameters in 16 bits (1.40 GiB), a KV cache
// of 8192 tokens x 2 x 28 layers x 8 KV heads x 128 x 2 bytes (0.875 GiB) over
// the 0.9 safety margin (0.97 GiB), and the 1 GiB reserve.
func TestGuardFootprint(t *testing.T) {
	assert.InDelta(t, 1.397+0.972+1.0, GuardColocated().GiB(), 0.01)
}

func TestDecideColocated(t *testing.T) {
	tests := []struct {
		model, instanceType string
		// guard and main are the two --gpu-memory-utilization values.
		guard, main float64
		// fits is false when the model no longer fits beside the guard.
		fits bool
	}{
		// A10G, 22.49 GiB: 3.37 GiB is 0.15 of it; 0.90 - 0.15 leaves 0.75.
		{qwen7b, "g5.xlarge", 0.15, 0.75, true},
		{qwen1_5b, "g5.xlarge", 0.15, 0.75, true},
		// T4, 15 GiB: 0.23 of it; 1.5B keeps 0.67.
		{qwen1_5b, "g4dn.xlarge", 0.23, 0.67, true},
		// 8B on one A10G: 14.96 GiB of weights + 2 GiB reserve do not fit in
		// 0.75 x 22.49 = 16.87 GiB.
		{llama8b, "g5.xlarge", 0, 0, false},
		// 14B on four A10Gs, TP 4: each GPU keeps 0.75.
		{qwen14b, "g5.12xlarge", 0.15, 0.75, true},
	}
	for _, tc := range tests {
		t.Run(tc.model+"/"+tc.instanceType, func(t *testing.T) {
			d, err := Decide(mustModel(t, tc.model), mustType(t, tc.instanceType), Options{Colocated: GuardColocated()})
			if !tc.fits {
				var fe *FitError
				require.True(t, errors.As(err, &fe), "want a FitError, got %v", err)
				assert.Contains(t, fe.Reason, "qwen3guard-gen-0.6b taking 0.15 of the first GPU")
				return
			}
			require.NoError(t, err)
			require.NotNil(t, d.Colocated)
			assert.InDelta(t, tc.guard, d.Colocated.GPUMemoryUtilization, 1e-9)
			assert.InDelta(t, tc.main, d.GPUMemoryUtilization, 1e-9)
			assert.LessOrEqual(t, d.GPUMemoryUtilization+d.Colocated.GPUMemoryUtilization, DefaultGPUMemoryUtilization+1e-9)
			assert.Equal(t, GuardMaxModelLen, d.Colocated.MaxModelLen)
			assert.Equal(t, d.DType, d.Colocated.DType)
			assert.Contains(t, d.Summary(), "with qwen3guard-gen-0.6b")

			// The main model is sized on its reduced share: exactly what
			// Decide gives for that share without a guard.
			alone, err := Decide(mustModel(t, tc.model), mustType(t, tc.instanceType), Options{GPUMemoryUtilization: tc.main})
			require.NoError(t, err)
			assert.Equal(t, alone.MaxModelLen, d.MaxModelLen)
			assert.Equal(t, alone.KVCacheTokens, d.KVCacheTokens)
		})
	}
}

// A guard that would leave the model less than 30% of the GPU is refused,
// naming both shares.
func TestColocatedTooLarge(t *testing.T) {
	big := &Colocated{Model: mustModel(t, qwen7b), MaxModelLen: 8192}
	_, err := Decide(mustModel(t, qwen1_5b), mustType(t, "g4dn.xlarge"), Options{Colocated: big})
	var fe *FitError
	require.True(t, errors.As(err, &fe), "got %v", err)
	assert.Contains(t, fe.Reason, "leaves the model")
}

// Without a colocated model nothing changes.
func TestNoColocated(t *testing.T) {
	d, err := Decide(mustModel(t, qwen7b), mustType(t, "g5.xlarge"), Options{})
	require.NoError(t, err)
	assert.Nil(t, d.Colocated)
	assert.InDelta(t, 0.90, d.GPUMemoryUtilization, 1e-9)
	assert.NotContains(t, d.Summary(), "qwen3guard")
}

// Above 0.90 together, the CUDA contexts and graphs outside the shares would
// not fit (0.75 GiB left on a T4 at 0.95).
func TestColocatedUtilizationCap(t *testing.T) {
	_, err := Decide(mustModel(t, qwen1_5b), mustType(t, "g4dn.xlarge"), Options{GPUMemoryUtilization: 0.95, Colocated: GuardColocated()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must be at most 0.90")
	d, err := Decide(mustModel(t, qwen1_5b), mustType(t, "g4dn.xlarge"), Options{GPUMemoryUtilization: 0.85, Colocated: GuardColocated()})
	require.NoError(t, err)
	assert.InDelta(t, 0.62, d.GPUMemoryUtilization, 1e-9)
}
