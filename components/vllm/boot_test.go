package vllm

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testRegion    = "cn-northwest-1"
	testS3URI     = "s3://deepseek-weights-123456789012/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/"
	testSecretARN = "arn:aws-cn:secretsmanager:cn-northwest-1:123456789012:secret:deepseek-r1-cn/api-key-AbCdEf"
	testPipIndex  = "https://mirrors.aliyun.com/pypi/simple/"
	testImage     = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm/vllm-openai:v0.11.0"
	testMSID      = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"

	// The serve line of pip mode for serverTP4, written out by hand.
	pipServeLine = "exec /opt/deepseek-r1-cn/venv/bin/vllm serve /opt/deepseek-r1-cn/model" +
		" --served-model-name deepseek-r1-distill-qwen-32b --host 0.0.0.0 --port 8000" +
		" --tensor-parallel-size 4 --dtype bfloat16 --max-model-len 32768" +
		" --gpu-memory-utilization 0.90 --reasoning-parser deepseek_r1 --enable-log-requests --max-log-len 0\n"
	// The vLLM words of image mode: the model is mounted at /model.
	imageServeLine = "  serve /model --served-model-name deepseek-r1-distill-qwen-32b --host 0.0.0.0 --port 8000" +
		" --tensor-parallel-size 4 --dtype bfloat16 --max-model-len 32768" +
		" --gpu-memory-utilization 0.90 --reasoning-parser deepseek_r1 --enable-log-requests --max-log-len 0\n"
)

// pipBoot installs vLLM with pip and takes the weights from S3.
func pipBoot() Boot {
	return Boot{
		Region:          testRegion,
		Server:          serverTP4(),
		Weights:         Weights{S3URI: testS3URI},
		Install:         Install{PipIndexURL: testPipIndex},
		APIKeySecretARN: testSecretARN,
	}
}

// imageBoot runs the vLLM image from the region's ECR, as the stacks do
// (they always pass a pip index too).
func imageBoot() Boot {
	b := pipBoot()
	b.Install.Image = testImage
	return b
}

// modelScopeBoot downloads the weights from ModelScope.
func modelScopeBoot() Boot {
	b := pipBoot()
	b.Weights = Weights{ModelScopeID: testMSID, ModelScopeRevision: "master"}
	return b
}

func mustRender(t *testing.T, b Boot) string {
	t.Helper()
	s, err := b.Render()
	require.NoError(t, err)
	return s
}

func TestRenderPip(t *testing.T) {
	s := mustRender(t, pipBoot())

	assert.True(t, strings.HasPrefix(s, "#!/bin/bash\n"))
	for _, want := range []string{
		pipServeLine,
		"--reasoning-parser deepseek_r1",
		"pip install --index-url https://mirrors.aliyun.com/pypi/simple/ --timeout 120 --retries 10 vllm==0.11.0\n",
		"vllm==0.11.0",
		"WEIGHTS_S3_URI=" + testS3URI + "\n",
		"API_KEY_SECRET=" + testSecretARN + "\n",
		"REGION=cn-northwest-1\n",
		"HF_HUB_OFFLINE=1",
		"User=vllm\n",
		"Restart=always\n",
		"ExecStartPre=+/usr/local/bin/deepseek-r1-cn-prepare\n",
		"aws s3 sync \"$WEIGHTS_S3_URI\"",
		"aws secretsmanager get-secret-value --secret-id \"$API_KEY_SECRET\"",
	} {
		assert.Contains(t, s, want)
	}
	for _, bad := range []string{
		"huggingface.co", "docker.io", "github.com", "pypi.org", "--api-key",
		"docker run", " modelscope\n", "<no value>", "{{",
	} {
		assert.NotContains(t, s, bad)
	}
}

func TestRenderImage(t *testing.T) {
	s := mustRender(t, imageBoot())

	for _, want := range []string{
		"exec /usr/bin/docker run ",
		"--entrypoint vllm " + testImage + " \\\n",
		imageServeLine,
		"aws ecr get-login-password --region \"$REGION\" | docker login --username AWS --password-stdin \"$REGISTRY\"",
		"IMAGE=" + testImage + "\n",
		"REGISTRY=123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn\n",
		"-e VLLM_API_KEY ",
		"-e HF_HUB_OFFLINE ",
		`-v "$(readlink -f /opt/deepseek-r1-cn/model)":/model:ro`,
		"Wants=network-online.target " + InstallUnit + " docker.service\n",
		"After=network-online.target multi-user.target " + InstallUnit + " docker.service\n",
		"--network host",
		"/usr/bin/docker rm -f vllm >/dev/null 2>&1 || true\n",
		"Restart=always\n",
	} {
		assert.Contains(t, s, want)
	}
	for _, bad := range []string{
		"vllm==", "pip install", "python3 -m venv", "/venv/bin/vllm", "apt-get", "python3-dev",
		"huggingface.co", "docker.io", "github.com", "pypi.org", "--api-key", "<no value>",
		// A required docker that fails to start would leave vLLM dead: see units.tmpl.
		"Requires=", "-p 8000:",
	} {
		assert.NotContains(t, s, bad)
	}
}

func TestRenderModelScope(t *testing.T) {
	s := mustRender(t, modelScopeBoot())

	for _, want := range []string{
		"modelscope download --model \"$MODELSCOPE_ID\" --revision \"$MODELSCOPE_REVISION\"",
		"MODELSCOPE_ID=" + testMSID + "\n",
		"MODELSCOPE_REVISION=master\n",
		"WEIGHTS_S3_URI=''\n",
		"pip install --index-url https://mirrors.aliyun.com/pypi/simple/ --timeout 120 --retries 10 vllm==0.11.0 modelscope\n",
		pipServeLine,
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "--api-key")
	assert.NotContains(t, s, "pypi.org")
}

func TestRenderImageModelScope(t *testing.T) {
	b := imageBoot()
	b.Weights = Weights{ModelScopeID: testMSID, ModelScopeRevision: "master"}
	s := mustRender(t, b)
	// vLLM comes from the image; only modelscope is installed with pip.
	assert.Contains(t, s, "pip install --index-url https://mirrors.aliyun.com/pypi/simple/ --timeout 120 --retries 10 modelscope\n")
	assert.NotContains(t, s, "vllm==")
	assert.Contains(t, s, "exec /usr/bin/docker run ")
}

// Image mode with ModelScope weights still pip-installs modelscope, so it
// needs a pip index; without one the boot script runs pip install with an
// empty --index-url and fails at boot.
func TestValidateImageModelScopeNeedsPipIndex(t *testing.T) {
	b := imageBoot()
	b.Install.PipIndexURL = ""
	b.Weights = Weights{ModelScopeID: testMSID, ModelScopeRevision: "master"}
	s, err := b.Render()
	if err == nil {
		assert.NotContains(t, s, "--index-url ''")
	}
	assert.Error(t, err)
}

// vLLM releases have four-part versions (0.10.1.1); the pin must not drop
// the fourth part and install another release.
func TestRenderPinsFourPartVersion(t *testing.T) {
	v, err := ParseVersion("0.10.1.1")
	require.NoError(t, err)
	b := pipBoot()
	b.Server.Version = v
	assert.Contains(t, mustRender(t, b), "vllm==0.10.1.1\n")
}

func TestRenderChinaMirrorNeverMentionsPyPI(t *testing.T) {
	for name, b := range map[string]Boot{"pip": pipBoot(), "image": imageBoot(), "modelscope": modelScopeBoot()} {
		t.Run(name, func(t *testing.T) {
			assert.NotContains(t, mustRender(t, b), "pypi.org")
		})
	}
}

func TestRenderGlobalIndex(t *testing.T) {
	b := pipBoot()
	b.Region = "us-east-1"
	b.Install.PipIndexURL = "https://pypi.org/simple/"
	s := mustRender(t, b)
	assert.Contains(t, s, "pip install --index-url https://pypi.org/simple/ ")
	assert.Contains(t, s, "REGION=us-east-1\n")
}

func TestRenderOldVersionAddsEnableReasoning(t *testing.T) {
	b := pipBoot()
	b.Server.Version = ver(0, 8, 5)
	s := mustRender(t, b)
	assert.Contains(t, s, "vllm==0.8.5\n")
	assert.Contains(t, s, "--reasoning-parser deepseek_r1 --enable-reasoning --disable-log-requests\n")
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*Boot)
		contains string // "" = valid
	}{
		{"pip and S3", func(*Boot) {}, ""},
		{"image without pip index", func(b *Boot) { b.Install = Install{Image: testImage} }, ""},
		{"ModelScope", func(b *Boot) { b.Weights = Weights{ModelScopeID: testMSID} }, ""},
		{"both S3 and ModelScope", func(b *Boot) { b.Weights.ModelScopeID = testMSID },
			"exactly one of the S3 URI and the ModelScope id must be set"},
		{"neither S3 nor ModelScope", func(b *Boot) { b.Weights = Weights{} },
			"exactly one of the S3 URI and the ModelScope id must be set"},
		{"https URI", func(b *Boot) { b.Weights.S3URI = "https://bucket.s3.amazonaws.com.cn/models/" },
			"is not an s3:// URI"},
		{"bucket without scheme", func(b *Boot) { b.Weights.S3URI = "bucket/models/" },
			"is not an s3:// URI"},
		{"missing secret ARN", func(b *Boot) { b.APIKeySecretARN = "" },
			"the API key secret ARN is empty"},
		{"missing pip index and image", func(b *Boot) { b.Install = Install{} },
			"a pip index is needed"},
		{"missing region", func(b *Boot) { b.Region = "" },
			"region is empty"},
		{"apt mirror", func(b *Boot) { b.Install.AptMirror = "http://mirrors.aliyun.com/ubuntu/" }, ""},
		{"apt mirror over https", func(b *Boot) { b.Install.AptMirror = "https://mirrors.tuna.tsinghua.edu.cn/ubuntu/" }, ""},
		{"apt mirror without scheme", func(b *Boot) { b.Install.AptMirror = "mirrors.aliyun.com/ubuntu/" },
			"is not an http(s) URL"},
		{"apt mirror with a space", func(b *Boot) { b.Install.AptMirror = "http://a/ubuntu/ jammy main" },
			"is not an http(s) URL"},
		{"apt mirror with a quote", func(b *Boot) { b.Install.AptMirror = "http://a/'$(id)'" },
			"is not an http(s) URL"},
		{"NVMe size", func(b *Boot) { b.LocalNVMeGB = 125 }, ""},
		{"negative NVMe size", func(b *Boot) { b.LocalNVMeGB = -1 },
			"local NVMe of -1 GB is negative"},
		{"attention backend", func(b *Boot) { b.Server.AttentionBackend = "TRITON_ATTN" }, ""},
		{"attention backend auto", func(b *Boot) { b.Server.AttentionBackend = AttentionAuto }, ""},
		{"bad attention backend", func(b *Boot) { b.Server.AttentionBackend = "triton; reboot" },
			"is not a vLLM backend name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := pipBoot()
			tc.mutate(&b)
			err := b.Validate()
			if tc.contains == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.contains)
			// Render refuses what Validate refuses.
			s, rerr := b.Render()
			require.Error(t, rerr)
			assert.Contains(t, rerr.Error(), tc.contains)
			assert.Empty(t, s)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Boot{}.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"region is empty",
		"exactly one of the S3 URI and the ModelScope id must be set",
		"a pip index is needed",
		"the API key secret ARN is empty",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestRenderSize(t *testing.T) {
	largest := imageGuardrailBoot()
	largest.Weights = Weights{ModelScopeID: testMSID, ModelScopeRevision: "master"}
	largest.LocalNVMeGB = 7600
	largest.Install.AptMirror = "http://mirrors.tuna.tsinghua.edu.cn/ubuntu/"
	largest.Server.AttentionBackend = "TRITON_ATTN_VLLM_V1"
	// A long stack name and a package of the stack's own, with its hash.
	largest.Telemetry = &Telemetry{Stack: "deepseek-r1-cn-production-cn-northwest-1-ec2",
		AgentPackageS3URI:  "s3://deepseek-weights-123456789012/artifacts/cloudwatch-agent/ubuntu/amd64/amazon-cloudwatch-agent.deb",
		AgentPackageSHA256: strings.Repeat("ab", 32)}
	pipAll := guardrailBoot()
	pipAll.Weights = largest.Weights
	pipAll.LocalNVMeGB, pipAll.Install.AptMirror = largest.LocalNVMeGB, largest.Install.AptMirror
	pipAll.Telemetry = largest.Telemetry
	for name, b := range map[string]Boot{
		"pip": pipBoot(), "image": imageBoot(), "modelscope": modelScopeBoot(),
		"everything, image": largest, "everything, pip": pipAll,
	} {
		t.Run(name, func(t *testing.T) {
			ud, err := b.UserData()
			require.NoError(t, err)
			assert.Less(t, len(ud), 16384, "EC2 user data limit, gzip-compressed as sent")
			z, err := gzip.NewReader(bytes.NewReader(ud))
			require.NoError(t, err)
			plain, err := io.ReadAll(z)
			require.NoError(t, err)
			assert.Equal(t, mustRender(t, b), string(plain), "cloud-init unpacks exactly the script")
			again, err := b.UserData()
			require.NoError(t, err)
			assert.Equal(t, ud, again, "the same script gives the same bytes (no time in the gzip header)")
		})
	}
	t.Run("over the limit is an error", func(t *testing.T) {
		// Random text does not compress: 40,000 hex digits stay over 16 KiB.
		b := pipBoot()
		rnd := make([]byte, 20000)
		_, _ = rand.New(rand.NewSource(1)).Read(rnd)
		b.Server.ServedModelName = hex.EncodeToString(rnd)
		_, err := b.Render()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "over EC2's 16384-byte user data limit")
	})
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"abc", "abc"},
		{"deepseek-r1-distill-qwen-1.5b", "deepseek-r1-distill-qwen-1.5b"},
		{"s3://bucket/models/x/", "s3://bucket/models/x/"},
		{"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:k-AbC", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:k-AbC"},
		{"0.90", "0.90"},
		{"a=b,c+d@e", "a=b,c+d@e"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'"'"'s'`},
		{"'", `''"'"''`},
		{"$HOME", "'$HOME'"},
		{"$(reboot)", "'$(reboot)'"},
		{"`id`", "'`id`'"},
		{"a;b", "'a;b'"},
		{"*", "'*'"},
		{"~", "'~'"},
		{`a"b`, `'a"b'`},
		{`a\b`, `'a\b'`},
		{"a\nb", "'a\nb'"},
		{"模型", "'模型'"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			assert.Equal(t, tc.want, ShellQuote(tc.in))
		})
	}
}

func TestShellJoin(t *testing.T) {
	assert.Equal(t, "a 'b c' '' 'it'\"'\"'s'", ShellJoin([]string{"a", "b c", "", "it's"}))
	assert.Equal(t, "", ShellJoin(nil))
}

func requireBash(t *testing.T) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	return bash
}

// ShellQuote's output, read back by bash, is the original string.
func TestShellQuoteRoundTripInBash(t *testing.T) {
	bash := requireBash(t)
	for _, in := range []string{"", "plain", "a b", "it's", "'", "''", "$HOME", "$(echo hi)", "`id`", `a"b\c`, "a\nb", "*", "~", "!x", "模型"} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			out, err := exec.Command(bash, "-c", "printf '%s' "+ShellQuote(in)).CombinedOutput()
			require.NoError(t, err, string(out))
			assert.Equal(t, in, string(out))
		})
	}
}

// heredoc returns the body of the here-document `cat >... <<'tag'`.
func heredoc(t *testing.T, script, tag string) string {
	t.Helper()
	start := strings.Index(script, "<<'"+tag+"'\n")
	require.GreaterOrEqual(t, start, 0, "no here-document %s", tag)
	body := script[start+len("<<'"+tag+"'\n"):]
	end := strings.Index(body, "\n"+tag+"\n")
	require.GreaterOrEqual(t, end, 0, "here-document %s is not closed", tag)
	return body[:end+1]
}

func bashSyntaxOK(t *testing.T, bash, what, script string) {
	t.Helper()
	cmd := exec.Command(bash, "-n")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "bash -n on %s: %s", what, out)
}

// Every rendered mode, and the scripts it writes, are valid bash.
func TestRenderedScriptsParse(t *testing.T) {
	bash := requireBash(t)
	quoted := pipBoot()
	quoted.Server.ServedModelName = "it's a \"model\" $HOME"
	quotedImage := imageBoot()
	quotedImage.Server.ServedModelName = quoted.Server.ServedModelName
	for name, b := range map[string]Boot{
		"pip": pipBoot(), "image": imageBoot(), "modelscope": modelScopeBoot(),
		"quoted name": quoted, "quoted name in image": quotedImage,
		"NVMe": nvmeBoot(), "image with guardrail": imageGuardrailBoot(),
	} {
		t.Run(name, func(t *testing.T) {
			s := mustRender(t, b)
			bashSyntaxOK(t, bash, "boot script", s)
			bashSyntaxOK(t, bash, "install script", heredoc(t, s, "INSTALL"))
			bashSyntaxOK(t, bash, "prepare script", heredoc(t, s, "PREPARE"))
			bashSyntaxOK(t, bash, "serve script", heredoc(t, s, "SERVE"))
			bashSyntaxOK(t, bash, "settings", heredoc(t, s, "SETTINGS"))
		})
	}
}

// serveWords runs the exec line of the rendered serve script with the vLLM
// and docker binaries replaced by functions that print their arguments, and
// returns the words after "serve" as bash splits them.
func serveWords(t *testing.T, bash, script string) []string {
	t.Helper()
	serve := heredoc(t, script, "SERVE")
	at := strings.Index(serve, "\nexec ")
	require.GreaterOrEqual(t, at, 0, "no exec line in:\n%s", serve)
	shim := "/usr/bin/docker() { printf '%s\\n' \"$@\"; }\n" +
		"/opt/deepseek-r1-cn/venv/bin/vllm() { printf '%s\\n' \"$@\"; }\n" +
		"readlink() { echo /data/model; }\n"
	out, err := exec.Command(bash, "-c", shim+serve[at+len("\nexec "):]).CombinedOutput()
	require.NoError(t, err, string(out))
	words := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for i, w := range words {
		if w == "serve" {
			return words[i+1:]
		}
	}
	t.Fatalf("no serve word in %q", words)
	return nil
}

// A served model name with a single quote, spaces and $ stays one word.
func TestRenderedServeLineQuoting(t *testing.T) {
	bash := requireBash(t)
	const name = "it's a \"model\" $HOME"
	tests := []struct {
		name  string
		boot  Boot
		model string
	}{
		{"pip", pipBoot(), "/opt/deepseek-r1-cn/model"},
		{"image", imageBoot(), "/model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.boot
			b.Server.ServedModelName = name
			words := serveWords(t, bash, mustRender(t, b))
			assert.Equal(t, []string{
				tc.model,
				"--served-model-name", name,
				"--host", "0.0.0.0",
				"--port", "8000",
				"--tensor-parallel-size", "4",
				"--dtype", "bfloat16",
				"--max-model-len", "32768",
				"--gpu-memory-utilization", "0.90",
				"--reasoning-parser", "deepseek_r1",
				"--enable-log-requests", "--max-log-len", "0",
			}, words)
		})
	}
}

// The settings file is sourced by the prepare script: each value must come
// back unchanged.
func TestRenderedSettingsRoundTrip(t *testing.T) {
	bash := requireBash(t)
	b := modelScopeBoot()
	b.Weights.ModelScopeRevision = "v1 'beta' $X"
	settings := heredoc(t, mustRender(t, b), "SETTINGS")
	out, err := exec.Command(bash, "-c", settings+
		`printf '%s\n' "$REGION" "$API_KEY_SECRET" "$WEIGHTS_S3_URI" "$MODELSCOPE_ID" "$MODELSCOPE_REVISION" "$IMAGE" "$REGISTRY"`).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, strings.Join([]string{
		testRegion, testSecretARN, "", testMSID, "v1 'beta' $X", "", "",
	}, "\n")+"\n", string(out))
}

// guardrailBoot puts the gateway in front of vLLM, which moves to loopback.
func guardrailBoot() Boot {
	b := pipBoot()
	b.Server.Host, b.Server.Port = "127.0.0.1", 8001
	b.Guardrail = &Guardrail{
		BinaryS3URI: "s3://bucket/artifacts/guardrail/guardrail-linux-amd64",
		PolicyS3URI: "s3://bucket/artifacts/guardrail/policy.zip",
		Listen:      "0.0.0.0:8000",
		Upstream:    "http://127.0.0.1:8001",
	}
	return b
}

func TestRenderGuardrail(t *testing.T) {
	s := mustRender(t, guardrailBoot())
	for _, want := range []string{
		"GUARDRAIL_BINARY=s3://bucket/artifacts/guardrail/guardrail-linux-amd64\n",
		"GUARDRAIL_POLICY=s3://bucket/artifacts/guardrail/policy.zip\n",
		"ExecStart=/opt/deepseek-r1-cn/guardrail/guardrail -listen 0.0.0.0:8000 -upstream http://127.0.0.1:8001 " +
			"-policy /etc/deepseek-r1-cn/guardrail/policy.yaml -api-keys-file /run/deepseek-r1-cn-guardrail/api-key " +
			"-upstream-api-key-file /run/deepseek-r1-cn-guardrail/api-key\n",
		"User=guardrail\n",
		"systemctl enable guardrail.service\n",
		"--host 127.0.0.1 --port 8001 ",
	} {
		assert.Contains(t, s, want)
	}
	assert.NotContains(t, s, "--api-key", "keys go through files, never the command line")
	if bash, err := exec.LookPath("bash"); err == nil {
		bashSyntaxOK(t, bash, "boot script", s)
		bashSyntaxOK(t, bash, "guardrail prepare script", heredoc(t, s, "GUARDRAIL"))
	}
	assert.NotContains(t, mustRender(t, pipBoot()), "guardrail", "off unless asked for")
}

func TestValidateGuardrail(t *testing.T) {
	b := guardrailBoot()
	b.Server.Host = "0.0.0.0"
	_, err := b.Render()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "vLLM must listen on 127.0.0.1")

	b = guardrailBoot()
	b.Guardrail.BinaryS3URI = "https://github.com/x/guardrail"
	_, err = b.Render()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "s3:// URIs")
}
