package k8sserving

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

func testGuard() *vllm.GuardModel {
	return &vllm.GuardModel{
		Decision: sizing.ColocatedDecision{Model: "qwen3guard-gen-0.6b", MaxModelLen: 8192, GPUMemoryUtilization: 0.15, DType: "bfloat16"},
		Port:     8002, MaxChars: 2500,
	}
}

func testServer() vllm.Server {
	v, _ := vllm.ParseVersion("0.11.0")
	return vllm.Server{Model: "/models/model", ServedModelName: "m", Host: "127.0.0.1", Port: 8001, Version: v,
		Decision: sizing.Decision{TensorParallel: 1, PipelineParallel: 1, DType: "bfloat16", MaxModelLen: 8192, GPUMemoryUtilization: 0.75}}
}

// supervise runs the container's command with vllm and python3 replaced by
// stubs that log their environment's CUDA_VISIBLE_DEVICES and arguments.
func supervise(t *testing.T, healthyAfter int, guardExits bool) []string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	log := filepath.Join(dir, "calls.log")
	guardBody := `sleep 30`
	if guardExits {
		guardBody = `exit 3`
	}
	stubs := map[string]string{
		// The guard's vllm blocks (or exits at once); the model's returns
		// at once, ending the test.
		"vllm": `echo "vllm CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-} $*" >>"$LOG"
case "$*" in *qwen3guard*) ` + guardBody + ` ;; esac`,
		"python3": `n=$(grep -c '^health' "$LOG"); echo "health $*" >>"$LOG"; [ "$n" -ge "$HEALTHY_AFTER" ]`,
		"sleep":   `echo "sleep $*" >>"$LOG"; [ "$1" = 30 ] && exec /bin/sleep 2; true`,
	}
	for name, body := range stubs {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755))
	}
	command, args := guardCommand(testGuard(), testServer(), "/models/model")
	require.Equal(t, []string{"/bin/bash", "-c"}, command[:2])
	outFile, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	defer outFile.Close()
	cmd := exec.Command(bash, append(command[1:], args...)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "LOG="+log, "HEALTHY_AFTER="+strconv.Itoa(healthyAfter))
	// The guard's loop outlives the model's stub: its own process group is
	// killed once the command has returned.
	cmd.Stdout, cmd.Stderr = outFile, outFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	out, _ := os.ReadFile(outFile.Name())
	require.NoError(t, err, string(out))
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// The guard starts first, on GPU 0, from its directory under the weights;
// the model starts once the guard answers, with all of the container's GPUs.
func TestGuardSupervisorOrder(t *testing.T) {
	calls := supervise(t, 2, false)
	var guard, model, lastHealth int = -1, -1, -1
	for i, c := range calls {
		switch {
		case strings.HasPrefix(c, "vllm CUDA_VISIBLE_DEVICES=0 serve /models/model/.guard-model --served-model-name qwen3guard"):
			guard = i
		case strings.HasPrefix(c, "vllm CUDA_VISIBLE_DEVICES= serve /models/model --served-model-name m"):
			model = i
		case strings.HasPrefix(c, "health"):
			lastHealth = i
		}
	}
	require.GreaterOrEqual(t, guard, 0, "%q", calls)
	require.GreaterOrEqual(t, model, 0, "%q", calls)
	assert.Less(t, guard, model)
	assert.Less(t, lastHealth, model, "the model starts after the guard's health answered")
	assert.Contains(t, calls[lastHealth], "http://127.0.0.1:8002/health")
	assert.Contains(t, calls[guard], "--gpu-memory-utilization 0.15")
	assert.Contains(t, calls[model], "--gpu-memory-utilization 0.75")
}

// A guard that exits is started again, and the model does not wait for it
// forever.
func TestGuardSupervisorRestartsTheGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the restart loop")
	}
	command, _ := guardCommand(testGuard(), testServer(), "/models/model")
	require.Contains(t, command[2], fmt.Sprintf("$(seq %d)", guardWaitSeconds/5))
	// Ten minutes of waits, run here as 12 (each is two processes).
	defer func(n int) { guardWaitTries = n }(guardWaitTries)
	guardWaitTries = 12
	calls := supervise(t, 1000, true)
	var waits, guards, lastHealth, model int
	for i, c := range calls {
		if strings.HasPrefix(c, "health") {
			waits++
			lastHealth = i
		}
		if strings.Contains(c, "qwen3guard") {
			guards++
		}
		if strings.Contains(c, "serve /models/model --served-model-name m ") {
			model = i
		}
	}
	assert.Equal(t, 12, waits, "it gave up waiting after its tries")
	assert.Greater(t, model, lastHealth, "then it started the model")
	assert.Greater(t, guards, 1, "the guard was started again after it exited")
}

func TestFetchScriptWaitsForTheGuard(t *testing.T) {
	plain := fetchScript(&Args{})
	assert.Equal(t, fetchWeightsScript, plain)
	with := fetchScript(&Args{Guard: testGuard()})
	assert.Contains(t, with, `--key "${WEIGHTS_PREFIX}.guard-model/config.json"`)
	assert.Less(t, strings.Index(with, ".guard-model/config.json"), strings.Index(with, "exec aws s3 sync"))
}

// The supervisor script passes shellcheck, where it is installed.
func TestGuardSupervisorShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed")
	}
	command, _ := guardCommand(testGuard(), testServer(), "/models/model")
	cmd := exec.Command(sc, "-s", "bash", "-")
	cmd.Stdin = strings.NewReader("#!/bin/bash\n" + command[2] + "\n")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s", out)
}

// The pod's guard is checked as the instance's is (vllm.GuardModel.CheckBeside),
// and may not take the Service's port either.
func TestValidateGuard(t *testing.T) {
	a := &Args{Server: testServer(), ServicePort: 8000, Guardrail: &Guardrail{}, Guard: testGuard()}
	assert.Empty(t, a.validateGuard())
	a.Guard.Port = 8000
	assert.Contains(t, fmt.Sprint(a.validateGuard()), "guard model port 8000 must be a free port")
	a.Guard, a.Guardrail = testGuard(), nil
	assert.Contains(t, fmt.Sprint(a.validateGuard()), "needs the guardrail gateway")
	a.Guardrail, a.Server.Decision.GPUMemoryUtilization = &Guardrail{}, 0.80
	assert.Contains(t, fmt.Sprint(a.validateGuard()), "must add up to at most 0.90")
}
