package k8sserving

import (
	"errors"
	"fmt"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// The guard model on Kubernetes. The NVIDIA device plugin hands a GPU to one
// container only (nvidia.com/gpu is an extended resource, not shareable
// without time-slicing), so the guard's vLLM runs in the vLLM container
// itself, on the container's first GPU, started by a small supervisor
// (guardSupervisor) before the model's vLLM, as vllm-guard.service does on
// EC2 (components/vllm): the model's engine then profiles the GPU with the
// guard's share already taken. Its weights are staged under the model's
// prefix (weights.GuardModelDir) and arrive with the model's copy.

// guardWaitSeconds is how long the supervisor waits for the guard's health
// before it starts the model anyway; the start-up probe allows for it.
const guardWaitSeconds = 600

// GuardStartupSeconds is what a colocated guard adds to the pod's start-up.
const GuardStartupSeconds = guardWaitSeconds

// guardSupervisor is run by bash -c with the guard's vLLM arguments, "--",
// and the model's. It restarts the guard when it exits (the gateway's fail
// mode decides what requests get meanwhile) and replaces itself with the
// model's vLLM, which stays the container's main process: when it exits the
// container ends and the kubelet restarts it, guard included.
const guardSupervisor = `set -u
guard=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do guard+=("$1"); shift; done
shift
(
  export CUDA_VISIBLE_DEVICES=0
  while :; do
    vllm serve "${guard[@]}"
    echo "deepseek-r1-cn: the guard model's vLLM exited ($?); restarting it in 15 s" >&2
    sleep 15
  done
) &
for _ in $(seq %[1]d); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:%[2]d/health', timeout=5)" 2>/dev/null && break
  sleep 5
done
exec vllm serve "$@"`

// guardWaitTries is how many 5-second waits that is (a variable for tests).
var guardWaitTries = guardWaitSeconds / 5

// guardCommand is the vLLM container's command and arguments with the guard.
func guardCommand(g *vllm.GuardModel, server vllm.Server, modelDir string) (command, args []string) {
	script := fmt.Sprintf(guardSupervisor, guardWaitTries, g.Port)
	args = append(g.Args(strings.TrimSuffix(modelDir, "/")+"/"+strings.TrimSuffix(weights.GuardModelDir, "/"), server.Version), "--")
	return []string{"/bin/bash", "-c", script, "vllm-with-guard"}, append(args, server.Args()...)
}

// guardGatewayArgs point the gateway at the guard.
func guardGatewayArgs(g *vllm.GuardModel) []string {
	if g == nil {
		return nil
	}
	return []string{"-guard-endpoint", g.Endpoint(), "-guard-model", vllm.GuardServedModelName,
		"-guard-max-chars", fmt.Sprint(g.MaxChars)}
}

// guardGatewayEnv gives the gateway the guard's API key: the guard's vLLM
// runs with the pod's VLLM_API_KEY, and the gateway reads
// GUARDRAIL_GUARD_API_KEY (cmd/guardrail, -guard-api-key-file).
func guardGatewayEnv(g *vllm.GuardModel, key *corev1.EnvVarSourceArgs) corev1.EnvVarArray {
	if g == nil {
		return nil
	}
	return corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("GUARDRAIL_GUARD_API_KEY"), ValueFrom: key}}
}

func (a *Args) validateGuard() []error {
	g := a.Guard
	if g == nil {
		return nil
	}
	var errs []error
	if a.Guardrail == nil {
		errs = append(errs, errors.New("the guard model needs the guardrail gateway, which asks it"))
	}
	return append(errs, g.CheckBeside(a.Server, a.ServicePort)...)
}

// guardWeightsWait waits for the guard's weights too, after the model's: the
// init container runs once per pod, and a guard staged later would
// otherwise never be copied.
var guardWeightsWait = `until aws s3api head-object --bucket "$WEIGHTS_BUCKET" --key "${WEIGHTS_PREFIX}` + weights.GuardModelDir + `config.json" --region "$AWS_REGION" >/dev/null 2>&1; do
  echo "waiting for the guard model at s3://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX` + weights.GuardModelDir + ` (Qwen3Guard-Gen-0.6B, see README)"
  sleep 30
done
`

// fetchScript is the init container's script, with the guard's wait when
// there is a guard.
func fetchScript(a *Args) string {
	if a.Guard == nil {
		return fetchWeightsScript
	}
	i := strings.Index(fetchWeightsScript, "exec aws s3 sync")
	return fetchWeightsScript[:i] + guardWeightsWait + fetchWeightsScript[i:]
}
