package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail/policydigest"
)

func TestLoadConfig(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		args    []string
		environ []string
		check   func(t *testing.T, c config)
		wantErr []string
		notErr  []string
	}{
		{name: "defaults", args: []string{"serve"}, check: func(t *testing.T, c config) {
			assert.Equal(t, 8080, c.port)
			assert.Equal(t, portRange{}, c.safePorts)
			assert.Equal(t, []string{"vllm", "serve"}, c.command)
			assert.False(t, c.guardrail)
			assert.Equal(t, "/opt/ml/model", c.vllm.Model)
		}},
		{name: "no argument is serve too", check: func(t *testing.T, c config) { assert.Equal(t, 8080, c.port) }},
		{name: "SageMaker's ports", environ: []string{"SAGEMAKER_BIND_TO_PORT=9090", "SAGEMAKER_SAFE_PORT_RANGE=30000-30999"},
			check: func(t *testing.T, c config) {
				assert.Equal(t, 9090, c.port)
				assert.Equal(t, portRange{30000, 30999}, c.safePorts)
			}},
		{name: "the last value wins, as getenv", environ: []string{"SAGEMAKER_BIND_TO_PORT=9090", "SAGEMAKER_BIND_TO_PORT=9091"},
			check: func(t *testing.T, c config) { assert.Equal(t, 9091, c.port) }},
		{name: "command as words", environ: []string{"VLLM_COMMAND=python3 -m vllm.entrypoints.openai.api_server"},
			check: func(t *testing.T, c config) {
				assert.Equal(t, []string{"python3", "-m", "vllm.entrypoints.openai.api_server"}, c.command)
			}},
		{name: "command as JSON", environ: []string{`VLLM_COMMAND=["/opt/my dir/vllm", "serve"]`},
			check: func(t *testing.T, c config) { assert.Equal(t, []string{"/opt/my dir/vllm", "serve"}, c.command) }},
		{name: "guardrail with defaults", environ: []string{"GUARDRAIL_ENABLED=true"}, check: func(t *testing.T, c config) {
			assert.True(t, c.guardrail)
			assert.Equal(t, "/etc/guardrail/policy.yaml", c.policyPath)
			assert.Empty(t, c.policySHA256)
		}},
		{name: "guardrail as the deployer sets it", environ: []string{"GUARDRAIL_ENABLED=TRUE",
			"GUARDRAIL_POLICY=/opt/ml/model/.guardrail/policy.yaml", "GUARDRAIL_POLICY_SHA256=" + strings.ToUpper(sum)},
			check: func(t *testing.T, c config) {
				assert.True(t, c.guardrail)
				assert.Equal(t, "/opt/ml/model/.guardrail/policy.yaml", c.policyPath)
				assert.Equal(t, sum, c.policySHA256, "stored lower-case")
			}},
		{name: "guardrail off explicitly", environ: []string{"GUARDRAIL_ENABLED=false"},
			check: func(t *testing.T, c config) { assert.False(t, c.guardrail) }},
		{name: "no guard model by default", environ: []string{"GUARDRAIL_ENABLED=true"}, check: func(t *testing.T, c config) {
			assert.Nil(t, c.guard)
			assert.Empty(t, c.ignoredGuardVars)
		}},
		{name: "guard model as the stack sets it", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.08"),
			check: func(t *testing.T, c config) {
				assert.Equal(t, &guardConfig{modelDir: "/opt/ml/model/.guard-model", gpuMemoryUtilization: 0.08,
					maxModelLen: 8192, maxChars: 2500, dtype: "auto"}, c.guard)
			}},
		{name: "guard dtype follows the main vLLM's", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "SM_VLLM_DTYPE=float16"),
			check: func(t *testing.T, c config) { assert.Equal(t, "float16", c.guard.dtype) }},
		{name: "guard settings", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION= 0.5 ", "GUARD_MAX_MODEL_LEN=4096",
			"GUARD_MAX_CHARS=1000", "GUARD_DTYPE=BFloat16", "SM_VLLM_DTYPE=float16"),
			check: func(t *testing.T, c config) {
				assert.Equal(t, &guardConfig{modelDir: "/opt/ml/model/.guard-model", gpuMemoryUtilization: 0.5,
					maxModelLen: 4096, maxChars: 1000, dtype: "bfloat16"}, c.guard)
			}},
		{name: "guard bounds, low", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.001", "GUARD_MAX_MODEL_LEN=1024", "GUARD_MAX_CHARS=100"),
			check: func(t *testing.T, c config) {
				assert.Equal(t, 1024, c.guard.maxModelLen)
				assert.Equal(t, 100, c.guard.maxChars)
			}},
		{name: "guard bounds, high", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.5", "GUARD_MAX_MODEL_LEN=32768", "GUARD_MAX_CHARS=1048576"),
			check: func(t *testing.T, c config) {
				assert.Equal(t, 32768, c.guard.maxModelLen)
				assert.Equal(t, 1048576, c.guard.maxChars)
			}},
		{name: "an empty GUARD_MODEL_DIR is no guard model; the rest is ignored",
			environ: []string{"GUARD_MODEL_DIR=", "GUARD_GPU_MEMORY_UTILIZATION=2", "GUARD_DTYPE=x"},
			check: func(t *testing.T, c config) {
				assert.Nil(t, c.guard)
				assert.Equal(t, []string{"GUARD_GPU_MEMORY_UTILIZATION", "GUARD_DTYPE"}, c.ignoredGuardVars)
			}},

		{name: "train", args: []string{"train"}, wantErr: []string{`cannot "train"`}},
		{name: "other arguments", args: []string{"serve", "--port", "1"}, wantErr: []string{`the only argument is "serve"`}},
		{name: "bad port", environ: []string{"SAGEMAKER_BIND_TO_PORT=80a"}, wantErr: []string{`SAGEMAKER_BIND_TO_PORT: "80a" is not a TCP port`}},
		{name: "port out of range", environ: []string{"SAGEMAKER_BIND_TO_PORT=70000"}, wantErr: []string{"not a TCP port"}},
		{name: "bad range", environ: []string{"SAGEMAKER_SAFE_PORT_RANGE=3000"}, wantErr: []string{"want a range such as 30000-30999"}},
		{name: "reversed range", environ: []string{"SAGEMAKER_SAFE_PORT_RANGE=3001-3000"}, wantErr: []string{"first port is above the last"}},
		{name: "empty command", environ: []string{"VLLM_COMMAND= "}, wantErr: []string{"VLLM_COMMAND: empty command"}},
		{name: "bad JSON command", environ: []string{"VLLM_COMMAND=[vllm"}, wantErr: []string{"not a JSON array of strings"}},
		{name: "guardrail neither true nor false", environ: []string{"GUARDRAIL_ENABLED=yes"}, wantErr: []string{`GUARDRAIL_ENABLED="yes": want true or false`}},
		{name: "policy without the guardrail", environ: []string{"GUARDRAIL_POLICY_SHA256=" + sum},
			wantErr: []string{"GUARDRAIL_ENABLED is not true"}},
		{name: "empty policy path", environ: []string{"GUARDRAIL_ENABLED=true", "GUARDRAIL_POLICY="}, wantErr: []string{"GUARDRAIL_POLICY is empty"}},
		{name: "short hash", environ: []string{"GUARDRAIL_ENABLED=true", "GUARDRAIL_POLICY_SHA256=abc"}, wantErr: []string{"64 hex digits"}},
		{name: "guard model without the guardrail", environ: []string{"GUARD_MODEL_DIR=/opt/ml/model/.guard-model", "GUARD_GPU_MEMORY_UTILIZATION=0.1"},
			wantErr: []string{"GUARD_MODEL_DIR is set but GUARDRAIL_ENABLED is not true", "set GUARDRAIL_ENABLED=true to apply it, or remove GUARD_MODEL_DIR"}},
		{name: "guard model with GUARDRAIL_ENABLED=false", environ: []string{"GUARDRAIL_ENABLED=false", "GUARD_MODEL_DIR=/g", "GUARD_GPU_MEMORY_UTILIZATION=0.1"},
			wantErr: []string{"GUARD_MODEL_DIR is set but GUARDRAIL_ENABLED is not true"}},
		{name: "a bad GUARDRAIL_ENABLED is reported once", environ: []string{"GUARDRAIL_ENABLED=yes", "GUARD_MODEL_DIR=/g", "GUARD_GPU_MEMORY_UTILIZATION=0.1"},
			wantErr: []string{`GUARDRAIL_ENABLED="yes"`}, notErr: []string{"is not true"}},
		{name: "guard memory share missing", environ: guardEnv(),
			wantErr: []string{"GUARD_GPU_MEMORY_UTILIZATION is required with GUARD_MODEL_DIR"}},
		{name: "guard memory share empty", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION="),
			wantErr: []string{"GUARD_GPU_MEMORY_UTILIZATION is required"}},
		{name: "guard memory share 0", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0"),
			wantErr: []string{`GUARD_GPU_MEMORY_UTILIZATION="0": want a number above 0 and at most 0.5`}},
		{name: "guard memory share above half", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.51"),
			wantErr: []string{`GUARD_GPU_MEMORY_UTILIZATION="0.51"`}},
		{name: "guard memory share negative", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=-0.1"),
			wantErr: []string{`GUARD_GPU_MEMORY_UTILIZATION="-0.1"`}},
		{name: "guard memory share NaN", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=NaN"),
			wantErr: []string{`GUARD_GPU_MEMORY_UTILIZATION="NaN"`}},
		{name: "guard memory share a percentage", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=10%"),
			wantErr: []string{`GUARD_GPU_MEMORY_UTILIZATION="10%"`}},
		{name: "guard max model len too small", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "GUARD_MAX_MODEL_LEN=1023"),
			wantErr: []string{`GUARD_MAX_MODEL_LEN: "1023": want a whole number from 1024 to 32768`}},
		{name: "guard max model len too large", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "GUARD_MAX_MODEL_LEN=32769"),
			wantErr: []string{`GUARD_MAX_MODEL_LEN: "32769"`}},
		{name: "guard max model len not a number", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "GUARD_MAX_MODEL_LEN=8k"),
			wantErr: []string{`GUARD_MAX_MODEL_LEN: "8k"`}},
		{name: "guard max chars too small", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "GUARD_MAX_CHARS=99"),
			wantErr: []string{`GUARD_MAX_CHARS: "99": want a whole number from 100 to 1048576`}},
		{name: "guard max chars too large", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "GUARD_MAX_CHARS=1048577"),
			wantErr: []string{`GUARD_MAX_CHARS: "1048577"`}},
		{name: "guard dtype unknown", environ: append(guardEnv(), "GUARD_GPU_MEMORY_UTILIZATION=0.1", "GUARD_DTYPE=fp8"),
			wantErr: []string{`GUARD_DTYPE="fp8": want one of vLLM's --dtype values: auto, half, float16, bfloat16, float, float32`}},
		{name: "guard model dir relative", environ: []string{"GUARDRAIL_ENABLED=true", "GUARD_MODEL_DIR=.guard-model", "GUARD_GPU_MEMORY_UTILIZATION=0.1"},
			wantErr: []string{`GUARD_MODEL_DIR=".guard-model": want an absolute path`}},
		{name: "every guard problem at once", environ: []string{"GUARD_MODEL_DIR=g", "GUARD_GPU_MEMORY_UTILIZATION=1",
			"GUARD_MAX_MODEL_LEN=0", "GUARD_MAX_CHARS=0", "GUARD_DTYPE=int8", "SAGEMAKER_BIND_TO_PORT=x"},
			wantErr: []string{"GUARDRAIL_ENABLED is not true", "GUARD_MODEL_DIR=\"g\"", "GUARD_GPU_MEMORY_UTILIZATION=\"1\"", "GUARD_MAX_MODEL_LEN",
				"GUARD_MAX_CHARS", "GUARD_DTYPE", "SAGEMAKER_BIND_TO_PORT"}},
		{name: "every problem at once", args: []string{"train"}, environ: []string{"SAGEMAKER_BIND_TO_PORT=x", "SM_VLLM_HOST=0.0.0.0", "GUARDRAIL_ENABLED=1"},
			wantErr: []string{`cannot "train"`, "SAGEMAKER_BIND_TO_PORT", "SM_VLLM_HOST is not allowed", "GUARDRAIL_ENABLED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.args, tt.environ)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				for _, w := range tt.notErr {
					assert.NotContains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

// guardEnv is the guardrail with a guard model, without its memory share.
func guardEnv() []string {
	return []string{"GUARDRAIL_ENABLED=true", "GUARD_MODEL_DIR=/opt/ml/model/.guard-model"}
}

func TestVerifyPolicyDirSHA256(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(p, []byte("version: 1\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "words.txt"), []byte("a\n"), 0o600))
	want, err := policydigest.Dir(dir)
	require.NoError(t, err)
	require.NoError(t, verifyPolicyDirSHA256(p, want))

	// A word list changed beside an unchanged policy.yaml is refused.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "words.txt"), []byte("b\n"), 0o600))
	err = verifyPolicyDirSHA256(p, want)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GUARDRAIL_POLICY_DIR_SHA256 is "+want)

	c, err := loadConfig(nil, []string{"GUARDRAIL_ENABLED=true", "GUARDRAIL_POLICY_DIR_SHA256=" + strings.ToUpper(want)})
	require.NoError(t, err)
	assert.Equal(t, want, c.policyDirSHA256)
	_, err = loadConfig(nil, []string{"GUARDRAIL_POLICY_DIR_SHA256=" + want})
	require.Error(t, err, "a pinned policy without the guardrail")
	_, err = loadConfig(nil, []string{"GUARDRAIL_ENABLED=true", "GUARDRAIL_POLICY_DIR_SHA256=xyz"})
	require.Error(t, err)
}

func TestVerifyPolicySHA256(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(p, []byte("version: 1\n"), 0o600))
	// What `printf 'version: 1\n' | sha256sum` prints, and the same with one
	// more newline.
	const want = "09bfcc6a14b83e2192b8673677725c84883ee9cd0c70e45c9ec09daa8f2b2847"
	const oneMoreNewline = "767a156d63d59dad288a1f295080a82537f15462c9812579d921283a10248f9e"
	other := strings.Repeat("0", 64)
	tests := []struct {
		name    string
		path    string
		sum     string
		wantErr string
	}{
		{name: "match", path: p, sum: want},
		{name: "mismatch", path: p, sum: other, wantErr: "policy " + p + " has SHA-256 " + want + ", but GUARDRAIL_POLICY_SHA256 is " + other +
			": refusing to start with a policy other than the one deployed"},
		{name: "the bytes as stored are hashed", path: p, sum: oneMoreNewline, wantErr: "has SHA-256 " + want},
		{name: "missing file", path: filepath.Join(dir, "nope.yaml"), sum: want, wantErr: "reading the policy to check its SHA-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyPolicySHA256(tt.path, tt.sum)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}
