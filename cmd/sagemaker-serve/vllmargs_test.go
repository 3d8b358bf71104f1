package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVLLMEnv(t *testing.T) {
	tests := []struct {
		name      string
		environ   []string
		wantArgs  []string
		wantModel string
		wantName  string
		wantErr   []string
	}{
		{name: "nothing set", environ: []string{"PATH=/bin"},
			wantArgs: []string{"/opt/ml/model"}, wantModel: "/opt/ml/model", wantName: "/opt/ml/model"},
		{name: "the sized flags", environ: []string{
			"SM_VLLM_SERVED_MODEL_NAME=deepseek-r1", "SM_VLLM_TENSOR_PARALLEL_SIZE=4", "SM_VLLM_PIPELINE_PARALLEL_SIZE=2",
			"SM_VLLM_DTYPE=bfloat16", "SM_VLLM_MAX_MODEL_LEN=32768", "SM_VLLM_GPU_MEMORY_UTILIZATION=0.90",
			"SM_VLLM_REASONING_PARSER=deepseek_r1", "HOME=/root"},
			wantArgs: []string{"/opt/ml/model", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.90",
				"--max-model-len", "32768", "--pipeline-parallel-size", "2", "--reasoning-parser", "deepseek_r1",
				"--served-model-name", "deepseek-r1", "--tensor-parallel-size", "4"},
			wantModel: "/opt/ml/model", wantName: "deepseek-r1"},
		{name: "model path is the positional argument", environ: []string{"SM_VLLM_MODEL=/opt/ml/model/weights"},
			wantArgs: []string{"/opt/ml/model/weights"}, wantModel: "/opt/ml/model/weights", wantName: "/opt/ml/model/weights"},
		{name: "true and empty are bare flags", environ: []string{"SM_VLLM_ENFORCE_EAGER=true", "SM_VLLM_TRUST_REMOTE_CODE=", "SM_VLLM_NO_ENABLE_PREFIX_CACHING=True"},
			wantArgs:  []string{"/opt/ml/model", "--enforce-eager", "--no-enable-prefix-caching", "--trust-remote-code"},
			wantModel: "/opt/ml/model", wantName: "/opt/ml/model"},
		{name: "a value is one argument, spaces and JSON kept", environ: []string{`SM_VLLM_OVERRIDE_GENERATION_CONFIG={"temperature": 0.6}`},
			wantArgs:  []string{"/opt/ml/model", "--override-generation-config", `{"temperature": 0.6}`},
			wantModel: "/opt/ml/model", wantName: "/opt/ml/model"},
		{name: "a value with = in it", environ: []string{"SM_VLLM_HF_OVERRIDES=a=b"},
			wantArgs: []string{"/opt/ml/model", "--hf-overrides", "a=b"}, wantModel: "/opt/ml/model", wantName: "/opt/ml/model"},
		{name: "lower-case names are lower-cased anyway", environ: []string{"SM_VLLM_max_num_seqs=64"},
			wantArgs: []string{"/opt/ml/model", "--max-num-seqs", "64"}, wantModel: "/opt/ml/model", wantName: "/opt/ml/model"},
		{name: "prefix alone is not a flag", environ: []string{"SM_VLLM=1", "XSM_VLLM_DTYPE=half"},
			wantArgs: []string{"/opt/ml/model"}, wantModel: "/opt/ml/model", wantName: "/opt/ml/model"},
		{name: "owned flags refused, all reported", environ: []string{"SM_VLLM_HOST=0.0.0.0", "SM_VLLM_PORT=8000",
			"SM_VLLM_API_KEY=secret", "SM_VLLM_UDS=/tmp/s", "SM_VLLM_SSL_KEYFILE=k", "SM_VLLM_SSL_CERTFILE=c"},
			wantErr: []string{"SM_VLLM_HOST is not allowed: vLLM listens on 127.0.0.1 only", "SM_VLLM_PORT is not allowed",
				"SM_VLLM_API_KEY is not allowed: the entry point gives vLLM a random key", "SM_VLLM_UDS is not allowed",
				"SM_VLLM_SSL_KEYFILE is not allowed", "SM_VLLM_SSL_CERTFILE is not allowed"}},
		{name: "owned flag in lower case", environ: []string{"SM_VLLM_port=1"}, wantErr: []string{"SM_VLLM_port is not allowed"}},
		{name: "false is ambiguous", environ: []string{"SM_VLLM_ENFORCE_EAGER=false"},
			wantErr: []string{"SM_VLLM_ENFORCE_EAGER=false is ambiguous", "SM_VLLM_NO_ENFORCE_EAGER=true"}},
		{name: "bad name", environ: []string{"SM_VLLM_MAX-LEN=1"}, wantErr: []string{"SM_VLLM_MAX-LEN: not a vLLM flag name"}},
		{name: "empty model", environ: []string{"SM_VLLM_MODEL="}, wantErr: []string{"SM_VLLM_MODEL is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseVLLMEnv(tt.environ)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantArgs, c.Args())
			assert.Equal(t, tt.wantModel, c.Model)
			assert.Equal(t, tt.wantName, c.ServedModelName)
		})
	}
}

// TestParseVLLMEnvOrder: the command line does not depend on the order of
// the environment.
func TestParseVLLMEnvOrder(t *testing.T) {
	a, err := parseVLLMEnv([]string{"SM_VLLM_DTYPE=half", "SM_VLLM_MAX_MODEL_LEN=8192", "SM_VLLM_ENFORCE_EAGER=true"})
	require.NoError(t, err)
	b, err := parseVLLMEnv([]string{"SM_VLLM_ENFORCE_EAGER=true", "SM_VLLM_MAX_MODEL_LEN=8192", "SM_VLLM_DTYPE=half"})
	require.NoError(t, err)
	assert.Equal(t, a.Args(), b.Args())
}
