package vllm

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Attention kernels for GPUs without FlashAttention 2 (compute capability
// below 8.0: the T4 of g4dn, the V100 of p3).
//
// Until 0.10.1 vLLM ran these GPUs on its V0 engine with xFormers. vLLM
// 0.10.2 moved them onto the V1 engine (PR #23614, "Enable V1 for compute
// capability < 8.0"), and 0.11 has no V0 at all. There,
// vllm/platforms/cuda.py get_attn_backend_cls picks FlashAttention for
// SM 8.0+ and, "FlexAttention is the default for older GPUs", FlexAttention
// otherwise, unless VLLM_ATTENTION_BACKEND names a backend (vllm/envs.py,
// read by vllm/attention/selector.py). FlexAttention is much slower on V100
// and 2080 Ti (vLLM issue #25528); a published profile (on an A10G) shows its
// decode as one monolithic Triton kernel without split-KV, against
// FlashAttention's split-KV kernel. The Triton backend (TRITON_ATTN, PR
// #14071, tested on a T4) is vLLM's own unified attention kernel, and later
// vLLM releases rank it above FlexAttention on every CUDA GPU (cuda.py
// _get_backend_priorities: FLASH_ATTN, FLASHINFER, TRITON_ATTN,
// FLEX_ATTENTION). FlashInfer is not chosen: a vLLM fork reports its paged
// prefill failing on SM 7.5 (1CatAI/1Cat-vLLM issue #612), and whether it
// has SM 7.0 kernels is UNCONFIRMED. How much faster TRITON_ATTN is than
// FlexAttention on T4 and V100 is UNCONFIRMED here (no such GPU to measure
// on), hence Server.AttentionBackend overrides it.
//
// The backend's name: TRITON_ATTN_VLLM_V1 until vLLM renamed its backends
// around 0.11.0; the selector has since stripped a "_VLLM_V1" suffix (with a
// deprecation warning), so the long name is accepted by every release from
// 0.10.2 whichever name it has, and the short one is used from 0.12.

// AttentionAuto, as Server.AttentionBackend, leaves the choice to vLLM.
const AttentionAuto = "auto"

var (
	// v1OnPreAmpere is the first release that serves compute capability
	// below 8.0 on the V1 engine, where FlexAttention is the default.
	v1OnPreAmpere = Version{Major: 0, Minor: 10, Patch: 2}
	// tritonShortName is from when TRITON_ATTN is surely the backend's name.
	tritonShortName = Version{Major: 0, Minor: 12}
)

var backendNamePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// CheckAttentionBackend checks a configured VLLM_ATTENTION_BACKEND: "" (the
// project's default), "auto" (vLLM's choice) or a backend name such as
// TRITON_ATTN.
func CheckAttentionBackend(name string) error {
	if name == "" || name == AttentionAuto || backendNamePattern.MatchString(name) {
		return nil
	}
	return fmt.Errorf("attention backend %q is not a vLLM backend name such as TRITON_ATTN, or %q", name, AttentionAuto)
}

// preAmpere reports whether a compute capability ("7.5") is below 8.0; an
// unknown one is not.
func preAmpere(computeCapability string) bool {
	major, _, _ := strings.Cut(computeCapability, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n < 8
}

// DefaultAttentionBackend is the VLLM_ATTENTION_BACKEND this project sets for
// vLLM release v on a GPU of the given compute capability; "" leaves vLLM's
// own choice.
func DefaultAttentionBackend(v Version, computeCapability string) string {
	if !preAmpere(computeCapability) || v.Less(v1OnPreAmpere) {
		return ""
	}
	if v.Less(tritonShortName) {
		return "TRITON_ATTN_VLLM_V1"
	}
	return "TRITON_ATTN"
}

// AttentionBackendName is the VLLM_ATTENTION_BACKEND the server runs with:
// the configured one, or the default for its version and GPU; "" when vLLM
// chooses.
func (s Server) AttentionBackendName() string {
	switch s.AttentionBackend {
	case AttentionAuto:
		return ""
	case "":
		return DefaultAttentionBackend(s.Version, s.Decision.ComputeCapability)
	}
	return s.AttentionBackend
}

// EnvVar is one environment variable of the vLLM process.
type EnvVar struct {
	Name, Value string
}

// Env is what the server's environment needs besides the API key and the
// offline switches the boot script sets: the attention backend, where one is
// set. The EKS target passes the same to its container.
func (s Server) Env() []EnvVar {
	if b := s.AttentionBackendName(); b != "" {
		return []EnvVar{{Name: "VLLM_ATTENTION_BACKEND", Value: b}}
	}
	return nil
}

// AttentionNote explains the attention backend for a plan's notes; "" when
// nothing needs saying (FlashAttention on SM 8.0+, or V0 before 0.10.2).
func (s Server) AttentionNote() string {
	cc := s.Decision.ComputeCapability
	gpu := s.Decision.GPU
	if gpu == "" {
		gpu = "the GPU"
	}
	b := s.AttentionBackendName()
	switch {
	case s.AttentionBackend != "" && s.AttentionBackend != AttentionAuto:
		return fmt.Sprintf("vLLM runs with VLLM_ATTENTION_BACKEND=%s as configured", b)
	case !preAmpere(cc) || s.Version.Less(v1OnPreAmpere):
		return ""
	case b == "":
		return fmt.Sprintf("%s (compute capability %s) has no FlashAttention 2, and vLLM %s defaults to FlexAttention there, "+
			"which is much slower on pre-Ampere GPUs (vLLM issue #25528); the attention backend is left to vLLM as configured",
			gpu, cc, s.Version)
	}
	return fmt.Sprintf("%s (compute capability %s) has no FlashAttention 2, and vLLM %s would default to FlexAttention there, "+
		"which is much slower on pre-Ampere GPUs (vLLM issue #25528): the server sets VLLM_ATTENTION_BACKEND=%s "+
		"(Triton kernels with split-KV decode); expect lower throughput than an A10G all the same",
		gpu, cc, s.Version, b)
}
