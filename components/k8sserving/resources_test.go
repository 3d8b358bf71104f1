package k8sserving

import (
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
			assert.GreaterOrEqual(t, r.MemoryMiB, kubeReserved+100+300)
			assert.Equal(t, c.wantReserveMilliC, r.MilliCPU)
		})
	}
}

func TestSizePod(t *testing.T) {
	p, err := SizePod(48, 192, 1, true)
	require.NoError(t, err)
	assert.Equal(t, PodResources{
		VLLM:         Resources{MilliCPU: 46400, MemoryMiB: 185242},
		FetchWeights: Resources{MilliCPU: 2000, MemoryMiB: 2048},
		Guardrail:    Resources{MilliCPU: 1000, MemoryMiB: 512},
		ShmMiB:       16384,
	}, p)

	p, err = SizePod(4, 16, 1, false)
	require.NoError(t, err)
	assert.Equal(t, Resources{MilliCPU: 3500, MemoryMiB: 14541}, p.VLLM)
	assert.Equal(t, 14541/4, p.ShmMiB, "a quarter of vLLM's memory on a small node")
	assert.Zero(t, p.Guardrail)

	// Four replicas share the node: each gets a quarter, and the sum fits.
	p, err = SizePod(48, 192, 4, true)
	require.NoError(t, err)
	assert.LessOrEqual(t, 4*(p.VLLM.MilliCPU+p.Guardrail.MilliCPU), 48000-NodeReserve(48, 192).MilliCPU)
	assert.LessOrEqual(t, 4*(p.VLLM.MemoryMiB+p.Guardrail.MemoryMiB), 192*1024-NodeReserve(48, 192).MemoryMiB)

	_, err = SizePod(4, 8, 2, true)
	assert.ErrorContains(t, err, "below 1 vCPU and 4 GiB")
	_, err = SizePod(0, 16, 1, false)
	assert.Error(t, err)
}

func TestPodResourcesValidate(t *testing.T) {
	ok := PodResources{VLLM: Resources{1000, 8192}, FetchWeights: Resources{500, 512}, ShmMiB: 1024}
	assert.NoError(t, ok.Validate(false))
	assert.ErrorContains(t, ok.Validate(true), "guardrail container needs CPU and memory")
	noShm := ok
	noShm.ShmMiB = 0
	assert.ErrorContains(t, noShm.Validate(false), "/dev/shm")
	assert.ErrorContains(t, PodResources{ShmMiB: 1}.Validate(false), "vLLM container needs CPU and memory")
}
