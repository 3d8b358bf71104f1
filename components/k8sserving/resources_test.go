package k8sserving

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNodeReserveCoversKubeReserved: the reserve holds the EKS AL2023
// kubelet's kube-reserved memory (11 MiB per pod + 255 MiB, nodeadm) at the
// maximum pods of each type, plus the 100 MiB eviction threshold and about
// 300 MiB for aws-node, kube-proxy and the device plugin. Max pods are the
// ENI formula (ENIs x (IPv4 per ENI - 1) + 2) for each type.
func TestNodeReserveCoversKubeReserved(t *testing.T) {
	cases := []struct {
		instance          string
		vcpus, memGiB     int
		maxPods           int
		wantReserveMilliC int
	}{
		{"g4dn.xlarge", 4, 16, 29, 500},
		{"g5.xlarge", 4, 16, 58, 500},
		{"g5.4xlarge", 16, 64, 234, 600},
		{"g5.12xlarge", 48, 192, 737, 600},
		{"g5.24xlarge", 96, 384, 737, 800},
		{"g5.48xlarge", 192, 768, 345, 1000},
		{"p3.2xlarge", 8, 61, 58, 500},
		{"p3.16xlarge", 64, 488, 234, 700},
	}
	for _, c := range cases {
		t.Run(c.instance, func(t *testing.T) {
			r := NodeReserve(c.vcpus, c.memGiB)
			kubeReserved := 11*c.maxPods + 255
			// Capacity (MemTotal) is up to 3.5% below the nominal size.
			kernel := c.memGiB * 1024 * 35 / 1000
			assert.GreaterOrEqual(t, r.MemoryMiB, kernel+kubeReserved+100+300)
			assert.Equal(t, c.wantReserveMilliC, r.MilliCPU)
		})
	}
}

func TestSizePod(t *testing.T) {
	p, err := SizePod(48, 192, 1, PodOptions{Guardrail: true})
	require.NoError(t, err)
	assert.Equal(t, PodResources{
		VLLM:         Resources{MilliCPU: 46400, MemoryMiB: 177378},
		FetchWeights: Resources{MilliCPU: 2000, MemoryMiB: 2048},
		Guardrail:    Resources{MilliCPU: 1000, MemoryMiB: 512},
		ShmMiB:       16384,
	}, p)

	p, err = SizePod(4, 16, 1, PodOptions{})
	require.NoError(t, err)
	assert.Equal(t, Resources{MilliCPU: 3500, MemoryMiB: 13886}, p.VLLM)
	assert.Equal(t, 13886/4, p.ShmMiB, "a quarter of vLLM's memory on a small node")
	assert.Zero(t, p.Guardrail)

	// Four replicas share the node: each gets a quarter, and the sum fits.
	p, err = SizePod(48, 192, 4, PodOptions{Guardrail: true})
	require.NoError(t, err)
	assert.LessOrEqual(t, 4*(p.VLLM.MilliCPU+p.Guardrail.MilliCPU), 48000-NodeReserve(48, 192).MilliCPU)
	assert.LessOrEqual(t, 4*(p.VLLM.MemoryMiB+p.Guardrail.MemoryMiB), 192*1024-NodeReserve(48, 192).MemoryMiB)

	_, err = SizePod(4, 8, 2, PodOptions{Guardrail: true})
	assert.ErrorContains(t, err, "below 1 vCPU and 4 GiB")
	_, err = SizePod(0, 16, 1, PodOptions{})
	assert.Error(t, err)
}

func TestPodResourcesValidate(t *testing.T) {
	ok := PodResources{VLLM: Resources{1000, 8192}, FetchWeights: Resources{500, 512}, ShmMiB: 1024}
	assert.NoError(t, ok.Validate(PodOptions{}))
	assert.ErrorContains(t, ok.Validate(PodOptions{Guardrail: true}), "guardrail container needs CPU and memory")
	noShm := ok
	noShm.ShmMiB = 0
	assert.ErrorContains(t, noShm.Validate(PodOptions{}), "/dev/shm")
	assert.ErrorContains(t, PodResources{ShmMiB: 1}.Validate(PodOptions{}), "vLLM container needs CPU and memory")
	assert.ErrorContains(t, ok.Validate(PodOptions{MetricsAgent: true}), "CloudWatch agent container needs CPU and memory")
}

// The sidecar and the add-on's DaemonSets come out of vLLM's share, never
// on top of the node: the pod still fits beside them, and vLLM keeps the
// lion's share.
func TestSizePodWithSidecarAndAddon(t *testing.T) {
	daemonSets := Resources{MilliCPU: 550, MemoryMiB: 281}
	for _, tc := range []struct {
		vcpus, memGiB, perNode int
	}{{48, 192, 1}, {4, 16, 1}, {48, 192, 4}, {8, 32, 1}} {
		t.Run(fmt.Sprintf("%d vCPU %d GiB x%d", tc.vcpus, tc.memGiB, tc.perNode), func(t *testing.T) {
			bare, err := SizePod(tc.vcpus, tc.memGiB, tc.perNode, PodOptions{Guardrail: true})
			require.NoError(t, err)
			p, err := SizePod(tc.vcpus, tc.memGiB, tc.perNode, PodOptions{Guardrail: true, MetricsAgent: true, NodeDaemonSets: daemonSets})
			require.NoError(t, err)
			assert.Equal(t, MetricsAgentResources, p.MetricsAgent)
			reserve := NodeReserve(tc.vcpus, tc.memGiB)
			podCPU := p.VLLM.MilliCPU + p.Guardrail.MilliCPU + p.MetricsAgent.MilliCPU
			podMem := p.VLLM.MemoryMiB + p.Guardrail.MemoryMiB + p.MetricsAgent.MemoryMiB
			assert.LessOrEqual(t, tc.perNode*podCPU+daemonSets.MilliCPU+reserve.MilliCPU, tc.vcpus*1000, "fits beside the DaemonSets")
			assert.LessOrEqual(t, tc.perNode*podMem+daemonSets.MemoryMiB+reserve.MemoryMiB, tc.memGiB*1024)
			assert.Less(t, p.VLLM.MilliCPU, bare.VLLM.MilliCPU, "taken from vLLM's share")
			assert.Greater(t, p.VLLM.MilliCPU*100, tc.vcpus*1000*55/tc.perNode, "vLLM keeps the lion's share")
		})
	}
	// Too small a node for the sidecar beside vLLM says so.
	_, err := SizePod(2, 8, 1, PodOptions{MetricsAgent: true, NodeDaemonSets: daemonSets})
	assert.ErrorContains(t, err, "below 1 vCPU and 4 GiB")
}

// The guard model's process needs 3 GiB more of the vLLM container: a share
// that fits vLLM alone (about 6 GiB) is refused with it.
func TestSizePodWithGuardModel(t *testing.T) {
	p, err := SizePod(4, 16, 2, PodOptions{Guardrail: true})
	require.NoError(t, err)
	require.Less(t, p.VLLM.MemoryMiB, 4096+guardModelMemoryMiB)
	_, err = SizePod(4, 16, 2, PodOptions{Guardrail: true, GuardModel: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "7 GiB with the guard model beside it")
	_, err = SizePod(48, 192, 1, PodOptions{Guardrail: true, GuardModel: true})
	assert.NoError(t, err)
}
