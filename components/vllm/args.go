// Package vllm turns a sizing decision into the vLLM command line, and
// renders the boot script that installs and runs vLLM on a GPU instance.
// It is shared by the alternatives that run vLLM themselves (EC2, EKS).
package vllm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
)

// Version is a vLLM release, such as 0.11.0 or 0.10.1.1.
type Version struct {
	Major, Minor, Patch int
	// release is the whole version as pip knows it (0.10.1.1,
	// 0.8.5.post1, 0.11.0+cu128), which is what gets installed.
	release string
}

var releasePattern = regexp.MustCompile(`^\d+\.\d+(\.\d+)?(\.(\d+|post\d+))?(\+[a-z0-9.]+)?$`)

// ParseVersion reads a vLLM release number; a leading "v" is allowed. The
// first three numbers order releases; the whole number is what is pinned.
func ParseVersion(s string) (Version, error) {
	release := strings.TrimPrefix(s, "v")
	if !releasePattern.MatchString(release) {
		return Version{}, fmt.Errorf("%q is not a vLLM version such as 0.11.0", s)
	}
	core, _, _ := strings.Cut(release, "+")
	parts := strings.Split(core, ".")
	var n [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return Version{}, fmt.Errorf("%q is not a vLLM version such as 0.11.0", s)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2], release: release}, nil
}

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// String is the release as pip pins it.
func (v Version) String() string {
	if v.release != "" {
		return v.release
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

var (
	// MinVersion introduced --reasoning-parser deepseek_r1 (vLLM PR #12473).
	MinVersion = Version{Major: 0, Minor: 7, Patch: 1}
	// reasoningFlagDropped: --enable-reasoning was required until 0.9.0,
	// deprecated then, and rejected from 0.10.0 (vLLM PRs #17452, #18404).
	reasoningFlagDropped = Version{Major: 0, Minor: 9}
	// voltaDropped: from 0.20.0 the default wheels and images are CUDA 13,
	// which cannot target compute capability 7.0 (V100).
	voltaDropped = Version{Major: 0, Minor: 20}
	// logRequestsFlag: --enable-log-requests replaced --disable-log-requests
	// in 0.10.1 (vLLM PR #21739), request logging off by default.
	logRequestsFlag = Version{Major: 0, Minor: 10, Patch: 1}
)

// CheckGPU says whether this vLLM release runs on the GPU.
func (v Version) CheckGPU(g sizing.GPU) error {
	if v.Less(MinVersion) {
		return fmt.Errorf("vLLM %s predates the deepseek_r1 reasoning parser: use %s or newer", v, MinVersion)
	}
	if g.ComputeCapability == "7.0" && !v.Less(voltaDropped) {
		return fmt.Errorf("vLLM %s is built for CUDA 13, which does not support the %s (compute capability 7.0): "+
			"use a vLLM release before %s, or a g4dn/g5 instance", v, g.Name, voltaDropped)
	}
	return nil
}

// Server is one vLLM OpenAI-compatible server.
type Server struct {
	// Model is what vLLM loads: a local directory of weights.
	Model string
	// ServedModelName is the model name clients send (the project's model key).
	ServedModelName string
	Host            string
	Port            int
	Decision        sizing.Decision
	Version         Version
	// AttentionBackend overrides vLLM's attention backend
	// (VLLM_ATTENTION_BACKEND): "" is the project's default for the GPU and
	// version (DefaultAttentionBackend), "auto" leaves it to vLLM.
	AttentionBackend string
}

// Args is the command line after "vllm serve". The API key is not among
// them: vLLM reads it from the VLLM_API_KEY environment variable, so that it
// never shows in a process list or a rendered file.
func (s Server) Args() []string {
	d := s.Decision
	args := []string{
		s.Model,
		"--served-model-name", s.ServedModelName,
		"--host", s.Host,
		"--port", strconv.Itoa(s.Port),
		"--tensor-parallel-size", strconv.Itoa(d.TensorParallel),
	}
	if d.PipelineParallel > 1 {
		args = append(args, "--pipeline-parallel-size", strconv.Itoa(d.PipelineParallel))
	}
	args = append(args,
		"--dtype", d.DType,
		"--max-model-len", strconv.Itoa(d.MaxModelLen),
		"--gpu-memory-utilization", strconv.FormatFloat(d.GPUMemoryUtilization, 'f', 2, 64),
		"--reasoning-parser", "deepseek_r1",
	)
	if s.Version.Less(reasoningFlagDropped) {
		args = append(args, "--enable-reasoning")
	}
	if s.Version.LogsRequests() {
		// One log line per request, with the request's id (vLLM takes the
		// X-Request-Id header the guardrail sends: serving_engine.py
		// _base_request_id), so that a request is followed from the audit
		// log into vLLM's; --max-log-len 0 cuts the prompt and its token ids
		// to nothing, so that no text reaches the log.
		args = append(args, "--enable-log-requests", "--max-log-len", "0")
	} else {
		// Before 0.10.1 every request was logged with its whole prompt
		// unless --disable-log-requests was given (vLLM PR #21739 turned
		// it around): prompts must not reach the journal or CloudWatch.
		args = append(args, "--disable-log-requests")
	}
	return args
}

// LogsRequests says whether this release takes --enable-log-requests, with
// which the server logs each request's id (never its text, with
// --max-log-len 0).
func (v Version) LogsRequests() bool { return !v.Less(logRequestsFlag) }
