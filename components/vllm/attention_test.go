package vllm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
)

func TestDefaultAttentionBackend(t *testing.T) {
	tests := []struct {
		name string
		v    Version
		cc   string
		want string
	}{
		{"T4 on 0.11.0 (V1, FlexAttention by default)", ver(0, 11, 0), "7.5", "TRITON_ATTN_VLLM_V1"},
		{"V100 on 0.11.0", ver(0, 11, 0), "7.0", "TRITON_ATTN_VLLM_V1"},
		{"T4 on 0.10.2, the first V1 release for SM < 8.0", ver(0, 10, 2), "7.5", "TRITON_ATTN_VLLM_V1"},
		{"T4 on 0.10.1 runs V0 (xFormers)", ver(0, 10, 1), "7.5", ""},
		{"T4 on 0.8.5 runs V0", ver(0, 8, 5), "7.5", ""},
		{"T4 on 0.12.0: the short name", ver(0, 12, 0), "7.5", "TRITON_ATTN"},
		{"A10G keeps FlashAttention", ver(0, 11, 0), "8.6", ""},
		{"A100 keeps FlashAttention", ver(0, 11, 0), "8.0", ""},
		{"unknown capability", ver(0, 11, 0), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, DefaultAttentionBackend(tc.v, tc.cc))
		})
	}
}

// Every GPU of the catalog, decided by sizing, gets the backend its compute
// capability calls for.
func TestAttentionBackendPerCatalogGPU(t *testing.T) {
	m, err := sizing.LookupModel("deepseek-r1-distill-qwen-1.5b")
	require.NoError(t, err)
	want := map[string]string{"NVIDIA T4": "TRITON_ATTN_VLLM_V1", "NVIDIA V100": "TRITON_ATTN_VLLM_V1", "NVIDIA A10G": ""}
	for _, it := range sizing.InstanceTypes() {
		d, err := sizing.Decide(m, it, sizing.Options{})
		require.NoError(t, err, it.Name)
		s := Server{Decision: d, Version: ver(0, 11, 0)}
		assert.Equal(t, want[it.GPU.Name], s.AttentionBackendName(), it.Name)
	}
}

func TestServerEnv(t *testing.T) {
	t4 := Server{Decision: sizing.Decision{GPU: "NVIDIA T4", ComputeCapability: "7.5"}, Version: ver(0, 11, 0)}
	assert.Equal(t, []EnvVar{{Name: "VLLM_ATTENTION_BACKEND", Value: "TRITON_ATTN_VLLM_V1"}}, t4.Env())

	auto := t4
	auto.AttentionBackend = AttentionAuto
	assert.Nil(t, auto.Env())

	forced := serverTP4()
	forced.AttentionBackend = "FLASHINFER"
	assert.Equal(t, []EnvVar{{Name: "VLLM_ATTENTION_BACKEND", Value: "FLASHINFER"}}, forced.Env())

	assert.Nil(t, serverTP4().Env(), "A10G: vLLM's default")
}

func TestAttentionNote(t *testing.T) {
	t4 := Server{Decision: sizing.Decision{GPU: "NVIDIA T4", ComputeCapability: "7.5"}, Version: ver(0, 11, 0)}
	note := t4.AttentionNote()
	assert.Contains(t, note, "NVIDIA T4 (compute capability 7.5) has no FlashAttention 2")
	assert.Contains(t, note, "vLLM issue #25528")
	assert.Contains(t, note, "VLLM_ATTENTION_BACKEND=TRITON_ATTN_VLLM_V1")

	auto := t4
	auto.AttentionBackend = AttentionAuto
	assert.Contains(t, auto.AttentionNote(), "left to vLLM as configured")

	forced := t4
	forced.AttentionBackend = "XFORMERS"
	assert.Equal(t, "vLLM runs with VLLM_ATTENTION_BACKEND=XFORMERS as configured", forced.AttentionNote())

	assert.Empty(t, serverTP4().AttentionNote(), "nothing to say on an A10G")
	old := t4
	old.Version = ver(0, 10, 1)
	assert.Empty(t, old.AttentionNote(), "V0 before 0.10.2")
}

func TestCheckAttentionBackend(t *testing.T) {
	for _, ok := range []string{"", "auto", "TRITON_ATTN", "TRITON_ATTN_VLLM_V1", "FLEX_ATTENTION", "XFORMERS"} {
		assert.NoError(t, CheckAttentionBackend(ok), ok)
	}
	for _, bad := range []string{"triton", "TRITON ATTN", "X;reboot", "$(id)", "1ABC"} {
		assert.Error(t, CheckAttentionBackend(bad), bad)
	}
}
