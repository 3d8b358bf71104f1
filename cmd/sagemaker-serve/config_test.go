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
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
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
