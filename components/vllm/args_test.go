package vllm

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    [3]int
		release string
	}{
		{"0.11.0", [3]int{0, 11, 0}, "0.11.0"},
		{"v0.8.5", [3]int{0, 8, 5}, "0.8.5"},
		{"0.10.1.1", [3]int{0, 10, 1}, "0.10.1.1"},
		{"0.8.5.post1", [3]int{0, 8, 5}, "0.8.5.post1"},
		{"0.11.0+cu128", [3]int{0, 11, 0}, "0.11.0+cu128"},
		{"v0.11.0+cu128", [3]int{0, 11, 0}, "0.11.0+cu128"},
		{"0.11", [3]int{0, 11, 0}, "0.11"},
		{"1.2.3", [3]int{1, 2, 3}, "1.2.3"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVersion(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, [3]int{got.Major, got.Minor, got.Patch})
			assert.Equal(t, tc.release, got.String(), "the release pip pins")
		})
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, in := range []string{"", "x.y", "1", "0.-1.0", "v", "0.11.x", "0.11.0-rc1", "0.11.0.1.2", "latest", " 0.11.0"} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			got, err := ParseVersion(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "is not a vLLM version such as 0.11.0")
			assert.Equal(t, Version{}, got)
		})
	}
}

func ver(major, minor, patch int) Version {
	return Version{Major: major, Minor: minor, Patch: patch}
}

func TestVersionString(t *testing.T) {
	assert.Equal(t, "0.11.0", ver(0, 11, 0).String())
	assert.Equal(t, "1.20.3", ver(1, 20, 3).String())
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b Version
		want bool
	}{
		{ver(0, 7, 0), ver(0, 7, 1), true},
		{ver(0, 7, 1), ver(0, 7, 0), false},
		{ver(0, 9, 9), ver(0, 10, 0), true},
		{ver(0, 10, 0), ver(0, 9, 9), false},
		{ver(0, 99, 99), ver(1, 0, 0), true},
		{ver(1, 0, 0), ver(0, 99, 99), false},
		{ver(0, 11, 0), ver(0, 11, 0), false},
		{ver(0, 8, 5), ver(0, 9, 0), true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v<%v", tc.a, tc.b), func(t *testing.T) {
			assert.Equal(t, tc.want, tc.a.Less(tc.b))
		})
	}
}

func gpuOf(t *testing.T, instanceType string) sizing.GPU {
	t.Helper()
	it, err := sizing.LookupInstanceType(instanceType)
	require.NoError(t, err)
	return it.GPU
}

func TestCheckGPU(t *testing.T) {
	tests := []struct {
		version      string
		instanceType string
		errContains  string // "" = no error
	}{
		{"0.7.0", "g4dn.xlarge", "predates the deepseek_r1 reasoning parser"},
		{"0.7.0", "g5.xlarge", "predates the deepseek_r1 reasoning parser"},
		{"0.7.0", "p3.2xlarge", "predates the deepseek_r1 reasoning parser"},
		{"0.6.6", "g5.xlarge", "use 0.7.1 or newer"},
		{"0.7.1", "g5.xlarge", ""},
		{"0.8.5", "p3.2xlarge", ""},
		{"0.11.0", "p3.2xlarge", ""},
		{"0.11.0", "g4dn.xlarge", ""},
		{"0.11.0", "g5.48xlarge", ""},
		{"0.19.9", "p3.16xlarge", ""},
		{"0.20.0", "p3.2xlarge", "compute capability 7.0"},
		{"0.20.0", "p3.16xlarge", "NVIDIA V100"},
		{"0.33.0", "p3.8xlarge", "compute capability 7.0"},
		{"1.0.0", "p3.2xlarge", "compute capability 7.0"},
		{"0.20.0", "g4dn.xlarge", ""},
		{"0.20.0", "g5.xlarge", ""},
		{"0.33.0", "g4dn.12xlarge", ""},
		{"0.33.0", "g5.12xlarge", ""},
	}
	for _, tc := range tests {
		t.Run(tc.version+"/"+tc.instanceType, func(t *testing.T) {
			v, err := ParseVersion(tc.version)
			require.NoError(t, err)
			err = v.CheckGPU(gpuOf(t, tc.instanceType))
			if tc.errContains == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.errContains)
		})
	}
}

// decisionTP4 is a hand-written decision: 4 x A10G, TP 4, bfloat16.
func decisionTP4() sizing.Decision {
	return sizing.Decision{
		Model: "deepseek-r1-distill-qwen-32b", InstanceType: "g5.12xlarge", GPU: "NVIDIA A10G", GPUs: 4,
		DType: "bfloat16", TensorParallel: 4, PipelineParallel: 1,
		GPUMemoryUtilization: 0.9, MaxModelLen: 32768,
	}
}

func serverTP4() Server {
	return Server{
		Model:           "/opt/deepseek-r1-cn/model",
		ServedModelName: "deepseek-r1-distill-qwen-32b",
		Host:            "0.0.0.0",
		Port:            8000,
		Decision:        decisionTP4(),
		Version:         ver(0, 11, 0),
	}
}

func TestServerArgs(t *testing.T) {
	pp2 := serverTP4()
	pp2.Decision.TensorParallel, pp2.Decision.PipelineParallel, pp2.Decision.GPUs = 4, 2, 8
	old := serverTP4()
	old.Version = ver(0, 8, 5)
	v090 := serverTP4()
	v090.Version = ver(0, 9, 0)
	fp16 := serverTP4()
	fp16.Decision.DType, fp16.Decision.GPUMemoryUtilization, fp16.Port = "float16", 0.85, 8080

	tests := []struct {
		name   string
		server Server
		want   []string
	}{
		{"TP 4, 0.11.0", serverTP4(), []string{
			"/opt/deepseek-r1-cn/model",
			"--served-model-name", "deepseek-r1-distill-qwen-32b",
			"--host", "0.0.0.0",
			"--port", "8000",
			"--tensor-parallel-size", "4",
			"--dtype", "bfloat16",
			"--max-model-len", "32768",
			"--gpu-memory-utilization", "0.90",
			"--reasoning-parser", "deepseek_r1",
			"--enable-log-requests", "--max-log-len", "0",
		}},
		{"TP 4 x PP 2", pp2, []string{
			"/opt/deepseek-r1-cn/model",
			"--served-model-name", "deepseek-r1-distill-qwen-32b",
			"--host", "0.0.0.0",
			"--port", "8000",
			"--tensor-parallel-size", "4",
			"--pipeline-parallel-size", "2",
			"--dtype", "bfloat16",
			"--max-model-len", "32768",
			"--gpu-memory-utilization", "0.90",
			"--reasoning-parser", "deepseek_r1",
			"--enable-log-requests", "--max-log-len", "0",
		}},
		{"0.8.5 needs --enable-reasoning", old, []string{
			"/opt/deepseek-r1-cn/model",
			"--served-model-name", "deepseek-r1-distill-qwen-32b",
			"--host", "0.0.0.0",
			"--port", "8000",
			"--tensor-parallel-size", "4",
			"--dtype", "bfloat16",
			"--max-model-len", "32768",
			"--gpu-memory-utilization", "0.90",
			"--reasoning-parser", "deepseek_r1",
			"--enable-reasoning",
			"--disable-log-requests",
		}},
		// 0.9.0 has no --enable-log-requests (0.10.1, vLLM PR #21739), and
		// logs every prompt unless told not to.
		{"0.9.0 drops --enable-reasoning", v090, []string{
			"/opt/deepseek-r1-cn/model",
			"--served-model-name", "deepseek-r1-distill-qwen-32b",
			"--host", "0.0.0.0",
			"--port", "8000",
			"--tensor-parallel-size", "4",
			"--dtype", "bfloat16",
			"--max-model-len", "32768",
			"--gpu-memory-utilization", "0.90",
			"--reasoning-parser", "deepseek_r1",
			"--disable-log-requests",
		}},
		{"float16, 0.85, port 8080", fp16, []string{
			"/opt/deepseek-r1-cn/model",
			"--served-model-name", "deepseek-r1-distill-qwen-32b",
			"--host", "0.0.0.0",
			"--port", "8080",
			"--tensor-parallel-size", "4",
			"--dtype", "float16",
			"--max-model-len", "32768",
			"--gpu-memory-utilization", "0.85",
			"--reasoning-parser", "deepseek_r1",
			"--enable-log-requests", "--max-log-len", "0",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.server.Args()
			assert.Equal(t, tc.want, args)
			for _, a := range args {
				assert.NotContains(t, a, "--api-key")
			}
		})
	}
}

func TestServerArgsFromDecide(t *testing.T) {
	m, err := sizing.LookupModel("deepseek-r1-distill-qwen-7b")
	require.NoError(t, err)
	it, err := sizing.LookupInstanceType("g5.48xlarge")
	require.NoError(t, err)
	d, err := sizing.Decide(m, it, sizing.Options{})
	require.NoError(t, err)
	s := Server{Model: "/m", ServedModelName: m.Key, Host: "0.0.0.0", Port: 8000, Decision: d, Version: ver(0, 11, 0)}
	args := s.Args()
	// 28 heads on 8 GPUs: TP 4 x PP 2 (see the sizing tests).
	assert.Equal(t, "4", flagValue(args, "--tensor-parallel-size"))
	assert.Equal(t, "2", flagValue(args, "--pipeline-parallel-size"))
	assert.Equal(t, "bfloat16", flagValue(args, "--dtype"))
	assert.Equal(t, "131072", flagValue(args, "--max-model-len"))
	assert.Equal(t, "0.90", flagValue(args, "--gpu-memory-utilization"))
	assert.NotContains(t, args, "--api-key")
	assert.NotContains(t, args, "--enable-reasoning")
}

// flagValue is the word after flag in args, or "" when flag is absent.
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// Before 0.10.1 vLLM logged every request with its whole prompt unless told
// not to: it is told; from then on it logs each request's id with no text.
func TestServerArgsNeverLogPrompts(t *testing.T) {
	for _, v := range []Version{ver(0, 7, 1), ver(0, 9, 2), ver(0, 10, 0)} {
		s := serverTP4()
		s.Version = v
		assert.Contains(t, s.Args(), "--disable-log-requests", "vLLM %s", v)
		assert.NotContains(t, s.Args(), "--enable-log-requests")
	}
	s := serverTP4()
	s.Version = ver(0, 11, 0)
	assert.NotContains(t, s.Args(), "--disable-log-requests")
	assert.Equal(t, "0", flagValue(s.Args(), "--max-log-len"))
}
