package k8sserving

import (
	"errors"
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Resources is a container's CPU and memory. Requests equal limits, so that
// a pod whose containers all have them is in the Guaranteed QoS class: the
// kubelet evicts, under node pressure, pods using more than they request
// first, and a Guaranteed pod never does; its processes also get the
// lowest OOM score (Kubernetes docs, node-pressure eviction and pod QoS).
type Resources struct {
	MilliCPU  int
	MemoryMiB int
}

func (r Resources) requirements(extra pulumi.StringMap) *corev1.ResourceRequirementsArgs {
	q := pulumi.StringMap{
		"cpu":    pulumi.String(fmt.Sprintf("%dm", r.MilliCPU)),
		"memory": pulumi.String(fmt.Sprintf("%dMi", r.MemoryMiB)),
	}
	for k, v := range extra {
		q[k] = v
	}
	return &corev1.ResourceRequirementsArgs{Requests: q, Limits: q}
}

// PodResources size the containers of one vLLM pod.
type PodResources struct {
	VLLM         Resources
	FetchWeights Resources
	// Guardrail is zero without the gateway.
	Guardrail Resources
	// MetricsAgent is zero without the CloudWatch agent sidecar.
	MetricsAgent Resources
	// ShmMiB bounds /dev/shm (in memory, so charged to vLLM's memory).
	ShmMiB int
}

// PodOptions say what a vLLM pod holds besides vLLM, and what else runs on
// its GPU node.
type PodOptions struct {
	Guardrail bool
	// MetricsAgent adds the CloudWatch agent sidecar (MetricsAgentResources).
	MetricsAgent bool
	// GuardModel runs the guard model's vLLM in the vLLM container too
	// (guard.go): a second Python process with PyTorch and CUDA, which needs
	// guardModelMemoryMiB of host memory on top.
	GuardModel bool
	// NodeDaemonSets are the requests of the DaemonSets that run on every
	// GPU node beyond those NodeReserve counts (aws-node, kube-proxy, the
	// device plugin): the CloudWatch Observability add-on's, when it runs.
	// A DaemonSet pod with a higher priority than vLLM's would otherwise
	// preempt vLLM to fit (the add-on's run as system-node-critical).
	NodeDaemonSets Resources
}

// guardModelMemoryMiB is the host memory of the guard model's vLLM process
// (PyTorch, CUDA libraries, the tokenizer; its 1.4 GiB of weights are read
// through the page cache): an estimate, UNCONFIRMED on a GPU.
const guardModelMemoryMiB = 3072

// MetricsAgentResources size the CloudWatch agent sidecar: it scrapes two
// local endpoints once a minute and keeps only the catalog's metrics, a
// small fraction of the 200m/200Mi that AWS's Container Insights Prometheus
// deployment requests for scraping a whole cluster
// (aws-samples/amazon-cloudwatch-container-insights prometheus-eks.yaml).
var MetricsAgentResources = Resources{MilliCPU: 200, MemoryMiB: 256}

// Validate checks that every container has CPU and memory.
func (p PodResources) Validate(o PodOptions) error {
	var errs []error
	for name, r := range map[string]Resources{"vLLM": p.VLLM, "fetch-weights": p.FetchWeights} {
		if r.MilliCPU <= 0 || r.MemoryMiB <= 0 {
			errs = append(errs, fmt.Errorf("%s container needs CPU and memory, got %+v", name, r))
		}
	}
	if o.Guardrail && (p.Guardrail.MilliCPU <= 0 || p.Guardrail.MemoryMiB <= 0) {
		errs = append(errs, fmt.Errorf("guardrail container needs CPU and memory, got %+v", p.Guardrail))
	}
	if o.MetricsAgent && (p.MetricsAgent.MilliCPU <= 0 || p.MetricsAgent.MemoryMiB <= 0) {
		errs = append(errs, fmt.Errorf("CloudWatch agent container needs CPU and memory, got %+v", p.MetricsAgent))
	}
	if p.ShmMiB <= 0 || p.ShmMiB >= p.VLLM.MemoryMiB {
		errs = append(errs, fmt.Errorf("/dev/shm of %d MiB must be positive and below vLLM's memory (%d MiB)", p.ShmMiB, p.VLLM.MemoryMiB))
	}
	return errors.Join(errs...)
}

// NodeReserve is what a GPU node keeps for itself and its DaemonSets.
//
//   - CPU: the kubelet's kube-reserved CPU on the EKS AL2023 AMI (nodeadm
//     internal/kubelet/config.go getCPUMillicoresToReserve: 6% of the first
//     core, 1% of the second, 0.5% of the next two, 0.25% of the rest) plus
//     400m for aws-node, kube-proxy and the device plugin, rounded up to
//     100m.
//   - Memory: 1 GiB + 9% of the node's nominal size. The node's capacity,
//     the kernel's MemTotal that the kubelet reports, is about 3% below the
//     nominal size (firmware and kernel reservations; EKS's own measured
//     figures for r5 and g4dn nodes), 4% is kept for it. kube-reserved is
//     11 MiB per pod the node may run + 255 MiB
//     (getMemoryMebibytesToReserve), plus the 100 MiB hard eviction
//     threshold; at the 737 pods of the largest g5 types that is 8.3 GiB of
//     192 GiB (4.3%), and at most 1.2 GiB on the small ones, so the other
//     1 GiB + 5% covers it and the DaemonSets for every type the sizing
//     catalog has (TestNodeReserveCoversKubeReserved).
func NodeReserve(vcpus, memoryGiB int) Resources {
	total := vcpus * 1000
	reserved := 0
	bounds := []int{0, 1000, 2000, 4000, total}
	per10k := []int{600, 100, 50, 25}
	for i, p := range per10k {
		lo, hi := bounds[i], bounds[i+1]
		if total > lo {
			reserved += (min(total, hi) - lo) * p / 10000
		}
	}
	cpu := (reserved + 400 + 99) / 100 * 100
	mem := 1024 + memoryGiB*1024*9/100
	return Resources{MilliCPU: cpu, MemoryMiB: mem}
}

// SizePod shares a GPU node's CPU and memory between the vLLM pods it holds
// (replicasPerNode), after NodeReserve and the other DaemonSets'
// requests. The weights copy (an init container, done before the others
// start, so it adds nothing to the pod's request) gets up to 2 vCPU and 2
// GiB; the guardrail gateway an eighth of the share's CPU (250m to 1 vCPU)
// and 512 MiB; the CloudWatch agent sidecar MetricsAgentResources; vLLM
// the rest, the lion's share. /dev/shm is a quarter of vLLM's memory, at
// most 16 GiB.
func SizePod(vcpus, memoryGiB, replicasPerNode int, o PodOptions) (PodResources, error) {
	if vcpus <= 0 || memoryGiB <= 0 || replicasPerNode <= 0 {
		return PodResources{}, fmt.Errorf("size a pod: %d vCPU, %d GiB, %d replicas per node", vcpus, memoryGiB, replicasPerNode)
	}
	reserve := NodeReserve(vcpus, memoryGiB)
	shareCPU := (vcpus*1000 - reserve.MilliCPU - o.NodeDaemonSets.MilliCPU) / replicasPerNode / 100 * 100
	shareMem := (memoryGiB*1024 - reserve.MemoryMiB - o.NodeDaemonSets.MemoryMiB) / replicasPerNode
	var p PodResources
	p.VLLM = Resources{MilliCPU: shareCPU, MemoryMiB: shareMem}
	if o.Guardrail {
		p.Guardrail = Resources{MilliCPU: min(max(shareCPU/8/50*50, 250), 1000), MemoryMiB: 512}
		p.VLLM.MilliCPU -= p.Guardrail.MilliCPU
		p.VLLM.MemoryMiB -= p.Guardrail.MemoryMiB
	}
	if o.MetricsAgent {
		p.MetricsAgent = MetricsAgentResources
		p.VLLM.MilliCPU -= p.MetricsAgent.MilliCPU
		p.VLLM.MemoryMiB -= p.MetricsAgent.MemoryMiB
	}
	p.FetchWeights = Resources{MilliCPU: min(2000, shareCPU), MemoryMiB: min(2048, shareMem)}
	p.ShmMiB = min(16384, p.VLLM.MemoryMiB/4)
	minMem, with := 4096, ""
	if o.GuardModel {
		minMem += guardModelMemoryMiB
		with = " (7 GiB with the guard model beside it)"
	}
	if p.VLLM.MilliCPU < 1000 || p.VLLM.MemoryMiB < minMem {
		return PodResources{}, fmt.Errorf("%d vCPU and %d GiB shared by %d replica(s) leave vLLM %dm CPU and %d MiB, "+
			"below 1 vCPU and 4 GiB%s", vcpus, memoryGiB, replicasPerNode, p.VLLM.MilliCPU, p.VLLM.MemoryMiB, with)
	}
	return p, p.Validate(o)
}
