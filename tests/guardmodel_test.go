package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// The guard model on EC2: a second vLLM on the first GPU, its share taken out
// of the model's, its weights beside the model's, and the gateway asking it.
func TestGuardModelColocatedOnEC2(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true", "guardModel", "colocated"))
	lts := launchTemplates(t, p)
	require.NotEmpty(t, lts)
	for _, lt := range lts {
		ud, ok := lt.Inputs["userData"].(string)
		require.True(t, ok)
		typ := lt.Inputs["instanceType"].(string)
		share := flagOf(t, guardServeLine(t, ud), "--gpu-memory-utilization")
		main := flagOf(t, serveLine(t, ud), "--gpu-memory-utilization")
		assert.InDelta(t, 0.90, number(t, share)+number(t, main), 0.001, "%s: the two shares add up to gpuMemoryUtilization", typ)
		assert.Less(t, number(t, main), 0.90, "%s", typ)
		for _, want := range []string{
			"GUARD_S3_URI=s3://dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/.guard-model/\n",
			"-guard-endpoint http://127.0.0.1:8002/v1 -guard-model qwen3guard",
		} {
			assert.True(t, strings.Contains(ud, want), "%s: no %q", typ, want)
		}
		assert.Regexp(t, `(?m)^After=.* vllm-guard\.service$`, unitOf(t, ud, "vllm.service"), "%s: vLLM starts after the guard", typ)
	}
	// The role that reads the model reads the guard (under its prefix).
	doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	assert.Equal(t, []string{"arn:aws-cn:s3:::dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/*"},
		statement(t, doc, "ReadWeights").Resource)

	// The staging commands put the guard where the instance reads it.
	assert.Contains(t, p.Outputs["stageWeightsCommands"], "modelscope download --model Qwen/Qwen3Guard-Gen-0.6B --local_dir ./qwen3guard-gen-0.6b && "+
		"aws s3 sync ./qwen3guard-gen-0.6b s3://dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-7B/.guard-model/ --region cn-northwest-1")

	// The plan says so, and the 7B still fits one A10G beside it.
	assert.Equal(t, "g5.xlarge", lts[0].Inputs["instanceType"])
	assert.Contains(t, strings.Join(p.Sizing.Notes, "\n"), "qwen3guard-gen-0.6b runs beside it on the first GPU")
	require.NotNil(t, p.Sizing.GuardModel)
	assert.Equal(t, 0.15, p.Sizing.GuardModel.GPUMemoryUtilization)
	for _, f := range p.Fallbacks {
		assert.NotNil(t, f.Sizing.GuardModel, "every fallback type is sized with the guard: %s", f.Sizing.InstanceType)
	}

	t.Run("off by default", func(t *testing.T) {
		ud := bootScript(t, mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true")))
		assert.False(t, strings.Contains(ud, "vllm-guard"))
		assert.Equal(t, "0.90", flagOf(t, serveLine(t, ud), "--gpu-memory-utilization"))
	})
	t.Run("ModelScope weights: the guard from ModelScope too", func(t *testing.T) {
		ud := bootScript(t, mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true", "guardModel", "colocated",
			"weightsSource", "modelscope", "natGateway", "true")))
		assert.True(t, strings.Contains(ud, "GUARD_MODELSCOPE_ID=Qwen/Qwen3Guard-Gen-0.6B\n"))
		assert.True(t, strings.Contains(ud, "GUARD_S3_URI=''\n"))
	})
	t.Run("8B no longer fits one A10G", func(t *testing.T) {
		err := configErr(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true", "guardModel", "colocated",
			"model", "deepseek-r1-distill-llama-8b", "instanceType", "g5.xlarge"))
		assert.Contains(t, err.Error(), "deepseek-r1-cn:instanceType")
		assert.Contains(t, err.Error(), "with qwen3guard-gen-0.6b taking 0.15 of the first GPU beside it")
	})
}

func TestGuardModelConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"without the gateway", cfg("aws:region", "cn-northwest-1", "guardModel", "colocated"),
			`deepseek-r1-cn:guardModel = "colocated": needs the guardrail gateway`},
		{"unknown value", cfg("aws:region", "cn-northwest-1", "guardrail", "true", "guardModel", "qwen"),
			`deepseek-r1-cn:guardModel = "qwen": must be none, or colocated`},
		{"GPU memory above 0.90", cfg("aws:region", "cn-northwest-1", "guardrail", "true", "guardModel", "colocated",
			"gpuMemoryUtilization", "0.93"), `deepseek-r1-cn:gpuMemoryUtilization = "0.93": must be at most 0.90 with guardModel colocated`},
		{"LMI", cfg("aws:region", "cn-northwest-1", "target", "sagemaker", "guardrail", "true", "guardModel", "colocated",
			"sagemakerContainer", "lmi"), "needs sagemakerContainer custom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := configErr(t, tc.values)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// guardServeLine is the guard model's vllm serve command line.
func guardServeLine(t *testing.T, userData string) string {
	t.Helper()
	for _, l := range strings.Split(userData, "\n") {
		if strings.Contains(l, "serve ") && strings.Contains(l, "--served-model-name qwen3guard") {
			return l
		}
	}
	require.Fail(t, "no guard serve line in the boot script")
	return ""
}

// unitOf is a unit file the boot script writes.
func unitOf(t *testing.T, userData, name string) string {
	t.Helper()
	start := strings.Index(userData, "cat >/etc/systemd/system/"+name+" <<'UNIT'\n")
	require.GreaterOrEqual(t, start, 0, "no unit %s", name)
	body := userData[start:]
	return body[:strings.Index(body, "\nUNIT\n")]
}

func number(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// flagOf is the value after a flag in a command line.
func flagOf(t *testing.T, line, name string) string {
	t.Helper()
	f := strings.Fields(line)
	for i := range f[:len(f)-1] {
		if f[i] == name {
			return f[i+1]
		}
	}
	require.Failf(t, "no flag", "%s in %s", name, line)
	return ""
}

// On SageMaker the custom container runs the guard itself: the stack tells it
// where SageMaker put the guard's weights and how much of the first GPU it
// takes, and gives the model the rest.
func TestGuardModelColocatedOnSageMaker(t *testing.T) {
	inProject(t)
	// The 32B of sagemakerCfg no longer fits ml.g5.12xlarge beside it: the
	// guard's share comes out of every GPU (vLLM has one share for all).
	err := configErr(t, sagemakerCfg("cn-northwest-1", "guardrail", "true", "guardModel", "colocated"))
	assert.Contains(t, err.Error(), "with qwen3guard-gen-0.6b taking 0.15 of the first GPU beside it")
	p := mustPlan(t, sagemakerCfg("cn-northwest-1", "guardrail", "true", "guardModel", "colocated", "model", "deepseek-r1-distill-qwen-14b"))
	env := one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
	assert.Equal(t, "/opt/ml/model/.guard-model", env["GUARD_MODEL_DIR"])
	assert.Equal(t, "0.15", env["GUARD_GPU_MEMORY_UTILIZATION"])
	assert.Equal(t, "0.75", env["SM_VLLM_GPU_MEMORY_UTILIZATION"])
	assert.Equal(t, "8192", env["GUARD_MAX_MODEL_LEN"])
	assert.Equal(t, "2500", env["GUARD_MAX_CHARS"])
	assert.Equal(t, "bfloat16", env["GUARD_DTYPE"])
	require.NotNil(t, p.Sizing.GuardModel)
	// An image built before the guard would ignore GUARD_*: the guard's has
	// its own tag.
	assert.Equal(t, "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/deepseek-r1-cn/sagemaker-vllm:v0.11.0-guard",
		one(t, p, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["image"])

	off := mustPlan(t, sagemakerCfg("cn-northwest-1", "guardrail", "true", "model", "deepseek-r1-distill-qwen-14b"))
	// The container waits for the guard before it starts the model, and
	// SageMaker downloads the guard with the weights.
	variant := func(p *plan.Plan) map[string]any {
		return one(t, p, "aws:sagemaker/endpointConfiguration:EndpointConfiguration").Inputs["productionVariants"].([]any)[0].(map[string]any)
	}
	assert.GreaterOrEqual(t, variant(p)["containerStartupHealthCheckTimeoutInSeconds"].(float64),
		variant(off)["containerStartupHealthCheckTimeoutInSeconds"].(float64)+300)
	assert.Greater(t, variant(p)["modelDataDownloadTimeoutInSeconds"], variant(off)["modelDataDownloadTimeoutInSeconds"])
	env = one(t, off, "aws:sagemaker/model:Model").Inputs["primaryContainer"].(map[string]any)["environment"].(map[string]any)
	for k := range env {
		assert.False(t, strings.HasPrefix(k, "GUARD_"), "%s without the guard model", k)
	}
	assert.Equal(t, "0.90", env["SM_VLLM_GPU_MEMORY_UTILIZATION"])
}

// On EKS the guard runs in the vLLM container (the device plugin gives a GPU
// to one container): a supervisor starts it first, then execs the model's
// vLLM; the gateway asks it with the pod's key; the init container waits for
// its weights; the start-up probe allows for it.
func TestGuardModelColocatedOnEKS(t *testing.T) {
	inProject(t)
	off := mustPlan(t, eksCfg("cn-northwest-1", "guardrail", "true"))
	p := mustPlan(t, eksCfg("cn-northwest-1", "guardrail", "true", "guardModel", "colocated"))
	spec := podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))
	cs := containers(spec)
	v := cs["vllm"]
	cmd := toStrings(v["command"])
	require.Len(t, cmd, 4)
	assert.Equal(t, []string{"/bin/bash", "-c"}, cmd[:2])
	args := strings.Join(toStrings(v["args"]), " ")
	guard, model, ok := strings.Cut(args, " -- ")
	require.True(t, ok, "%s", args)
	assert.True(t, strings.HasPrefix(guard, "/models/model/.guard-model --served-model-name qwen3guard --host 127.0.0.1 --port 8002"), guard)
	assert.Contains(t, guard, "--gpu-memory-utilization 0.15")
	assert.True(t, strings.HasPrefix(model, "/models/model --served-model-name deepseek-r1-distill-qwen-14b"), model)
	assert.Contains(t, model, "--gpu-memory-utilization 0.75")

	gw := cs["guardrail"]
	assert.Contains(t, strings.Join(toStrings(gw["args"]), " "), "-guard-endpoint http://127.0.0.1:8002/v1 -guard-model qwen3guard -guard-max-chars 2500")
	var keyEnv bool
	for _, e := range gw["env"].([]any) {
		if e.(map[string]any)["name"] == "GUARDRAIL_GUARD_API_KEY" {
			keyEnv = e.(map[string]any)["valueFrom"] != nil
		}
	}
	assert.True(t, keyEnv, "the guard's key comes from the Secret")

	fetch := strings.Join(toStrings(spec["initContainers"].([]any)[0].(map[string]any)["command"]), " ")
	assert.Contains(t, fetch, ".guard-model/config.json")

	startup := func(p *plan.Plan) float64 {
		return containers(podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment")))["vllm"]["startupProbe"].(map[string]any)["failureThreshold"].(float64)
	}
	assert.Equal(t, startup(off)+60, startup(p), "ten more minutes at one probe every 10 s")

	// A gateway built before the guard's flags would not start: the
	// guard's has its own tag, and the old default tag is refused with it.
	assert.Equal(t, "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/deepseek-r1-cn/guardrail:0.2.0", gw["image"])
	assert.Equal(t, "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/deepseek-r1-cn/guardrail:0.1.0", containers(podSpec(k8s(t, off, "kubernetes:apps/v1:Deployment")))["guardrail"]["image"])
	err := configErr(t, eksCfg("cn-northwest-1", "guardrail", "true", "guardModel", "colocated", "guardrailImageTag", "0.1.0"))
	assert.Contains(t, err.Error(), `deepseek-r1-cn:guardrailImageTag = "0.1.0": is the gateway from before the guard model's flags`)

	offVLLM := containers(podSpec(k8s(t, off, "kubernetes:apps/v1:Deployment")))["vllm"]
	assert.Equal(t, []string{"vllm"}, toStrings(offVLLM["command"]), "unchanged without the guard")
}

// The EC2 guard passes the gateway flags an older build lacks; such a build
// is refused before anything is registered. Checked against the real
// gateway, built here, and against a build without them.
func TestGatewayBinaryKnowsTheGuardFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway")
	}
	bin := filepath.Join(t.TempDir(), "guardrail")
	build := exec.Command("go", "build", "-o", bin, "./cmd/guardrail")
	build.Dir = projectDir
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NoError(t, stacks.CheckGatewayBinary(bin))

	old := filepath.Join(t.TempDir(), "old-guardrail")
	require.NoError(t, os.WriteFile(old, []byte("ELF ... -guard-endpoint -guard-api-key-file -listen -upstream"), 0o755))
	err = stacks.CheckGatewayBinary(old)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "was built before the guard model's flags (it has no -guard-max-chars)")
}
