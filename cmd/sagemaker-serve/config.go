package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/gateway"
)

// Environment variables the entry point reads (besides SM_VLLM_*, see
// vllmargs.go). The README lists them for the deployer.
const (
	// SageMaker sets SAGEMAKER_BIND_TO_PORT (and SAGEMAKER_SAFE_PORT_RANGE
	// for a container's other ports) when the container runs in an
	// inference pipeline or a multi-container endpoint; otherwise the port
	// is 8080 (awsdocs/amazon-sagemaker-developer-guide, doc_source/
	// inference-pipeline-real-time.md and multi-container-direct.md).
	envBindPort      = "SAGEMAKER_BIND_TO_PORT"
	envSafePortRange = "SAGEMAKER_SAFE_PORT_RANGE"

	envGuardrailEnabled = "GUARDRAIL_ENABLED"
	envGuardrailPolicy  = "GUARDRAIL_POLICY"
	envGuardrailSHA256  = "GUARDRAIL_POLICY_SHA256"
	// envGuardrailDirSHA256 pins the whole policy directory (policy.yaml
	// and its word lists): components/guardrail/policydigest.
	envGuardrailDirSHA256 = "GUARDRAIL_POLICY_DIR_SHA256"

	// envVLLMCommand replaces "vllm serve" (tests start a fake in its place).
	// A JSON array of strings, or words separated by spaces.
	envVLLMCommand = "VLLM_COMMAND"

	// The guard model (Qwen3Guard-Gen) the container runs itself, on the
	// same GPU, as a second vLLM: see guard.go. The stack sets them.
	envGuardModelDir             = "GUARD_MODEL_DIR"
	envGuardGPUMemoryUtilization = "GUARD_GPU_MEMORY_UTILIZATION"
	envGuardMaxModelLen          = "GUARD_MAX_MODEL_LEN"
	envGuardMaxChars             = "GUARD_MAX_CHARS"
	envGuardDType                = "GUARD_DTYPE"
)

// Guard model defaults and bounds.
const (
	// defaultGuardMaxModelLen is the guard vLLM's --max-model-len: a
	// prompt and an answer of defaultGuardMaxChars runes each, plus
	// Qwen3Guard's moderation template, in tokens.
	defaultGuardMaxModelLen = 8192
	minGuardMaxModelLen     = 1024
	maxGuardMaxModelLen     = 32768
	// defaultGuardMaxChars is how many runes of each message the gateway
	// sends to the guard model (guardmodel.ClientConfig.MaxChars).
	defaultGuardMaxChars = 2500
	// maxGuardGPUMemoryUtilization caps the guard's share of the GPU: it is
	// the second model on the GPU, a 0.6B one, beside the one being served.
	maxGuardGPUMemoryUtilization = 0.5
)

// guardDTypes are vLLM's --dtype choices (vLLM 0.11, vllm/config/model.py
// ModelDType).
var guardDTypes = []string{"auto", "half", "float16", "bfloat16", "float", "float32"}

// guardConfig is the guard model's part of the configuration.
type guardConfig struct {
	modelDir             string
	gpuMemoryUtilization float64
	maxModelLen          int
	maxChars             int
	dtype                string
}

const (
	defaultPort = 8080
	// defaultPolicyPath is where the Dockerfile copies
	// cmd/guardrail/policies/default.
	defaultPolicyPath = "/etc/guardrail/policy.yaml"
)

// defaultVLLMCommand is what the EKS target runs in the same image
// (components/k8sserving: Command "vllm", Args "serve" ...).
var defaultVLLMCommand = []string{"vllm", "serve"}

// portRange is an inclusive range of ports; the zero value is "any".
type portRange struct{ lo, hi int }

// config is what the arguments and the environment say.
type config struct {
	port      int
	safePorts portRange
	command   []string
	vllm      vllmCLI

	guardrail       bool
	policyPath      string
	policySHA256    string // lower-case hex, empty when not pinned
	policyDirSHA256 string // lower-case hex of the directory digest, empty when not pinned

	// guard is the guard model the container runs; nil without one.
	guard *guardConfig
	// ignoredGuardVars are GUARD_* variables set without GUARD_MODEL_DIR,
	// which then mean nothing: run warns about them.
	ignoredGuardVars []string
}

// env looks variables up in a KEY=value list; the last entry wins, as in
// os.Getenv.
type env []string

func (e env) get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// loadConfig reads the container's arguments (SageMaker runs the image as
// "docker run <image> serve") and the environment the endpoint passes. Every
// problem is reported at once: a container that restarts once per typo is a
// slow way to deploy.
func loadConfig(args []string, environ []string) (config, error) {
	e := env(environ)
	c := config{port: defaultPort, command: defaultVLLMCommand, policyPath: defaultPolicyPath}
	var problems []error

	switch {
	case len(args) == 0, len(args) == 1 && args[0] == "serve":
	case len(args) == 1 && args[0] == "train":
		problems = append(problems, errors.New(`this image serves a model; it cannot "train"`))
	default:
		problems = append(problems, fmt.Errorf(`unexpected arguments %q: the only argument is "serve"`, args))
	}

	if v, ok := e.get(envBindPort); ok {
		p, err := parsePort(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", envBindPort, err))
		}
		c.port = p
	}
	if v, ok := e.get(envSafePortRange); ok && v != "" {
		r, err := parsePortRange(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", envSafePortRange, err))
		}
		c.safePorts = r
	}
	if v, ok := e.get(envVLLMCommand); ok {
		cmd, err := parseCommand(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", envVLLMCommand, err))
		}
		c.command = cmd
	}

	vc, err := parseVLLMEnv(environ)
	if err != nil {
		problems = append(problems, err)
	}
	c.vllm = vc

	guardrailErr := c.guardrailConfig(e)
	if guardrailErr != nil {
		problems = append(problems, guardrailErr)
	}
	if err := c.guardModelConfig(e, guardrailErr == nil); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return config{}, err
	}
	return c, nil
}

// guardrailConfig reads GUARDRAIL_*. The policy's path and hash without
// GUARDRAIL_ENABLED=true are refused rather than ignored: they mean the
// deployer wanted content safety, and serving without it would be the
// silent failure this setting exists to prevent.
func (c *config) guardrailConfig(e env) error {
	enabled, _ := e.get(envGuardrailEnabled)
	switch strings.ToLower(strings.TrimSpace(enabled)) {
	case "true":
		c.guardrail = true
	case "", "false":
	default:
		return fmt.Errorf("%s=%q: want true or false", envGuardrailEnabled, enabled)
	}
	path, pathSet := e.get(envGuardrailPolicy)
	sum, sumSet := e.get(envGuardrailSHA256)
	dirSum, dirSumSet := e.get(envGuardrailDirSHA256)
	if !c.guardrail {
		if pathSet || sumSet || dirSumSet {
			return fmt.Errorf("%s, %s or %s is set but %s is not true: set %s=true to apply the policy, or remove them",
				envGuardrailPolicy, envGuardrailSHA256, envGuardrailDirSHA256, envGuardrailEnabled, envGuardrailEnabled)
		}
		return nil
	}
	if dirSumSet {
		s := strings.ToLower(strings.TrimSpace(dirSum))
		if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
			return fmt.Errorf("%s=%q: want the 64 hex digits of the policy directory's digest", envGuardrailDirSHA256, dirSum)
		}
		c.policyDirSHA256 = s
	}
	if pathSet {
		if path == "" {
			return fmt.Errorf("%s is empty: give the policy file, or leave it unset for %s", envGuardrailPolicy, defaultPolicyPath)
		}
		c.policyPath = path
	}
	if sumSet {
		s := strings.ToLower(strings.TrimSpace(sum))
		if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
			return fmt.Errorf("%s=%q: want the 64 hex digits of a SHA-256 (sha256sum policy.yaml)", envGuardrailSHA256, sum)
		}
		c.policySHA256 = s
	}
	return nil
}

// guardModelConfig reads GUARD_*. Without GUARD_MODEL_DIR (unset or empty)
// there is no guard model and the other variables are ignored (run warns).
// With it, the guard model is a step of the guardrail: GUARD_MODEL_DIR
// without GUARDRAIL_ENABLED=true is refused, as guardrailConfig refuses a
// policy without it, since the deployer asked for a check that would not
// run. guardrailValid is false when GUARDRAIL_ENABLED itself was refused
// (not to report it twice).
func (c *config) guardModelConfig(e env, guardrailValid bool) error {
	dir, _ := e.get(envGuardModelDir)
	dir = strings.TrimSpace(dir)
	if dir == "" {
		for _, k := range []string{envGuardGPUMemoryUtilization, envGuardMaxModelLen, envGuardMaxChars, envGuardDType} {
			if _, ok := e.get(k); ok {
				c.ignoredGuardVars = append(c.ignoredGuardVars, k)
			}
		}
		return nil
	}
	g := &guardConfig{modelDir: dir, maxModelLen: defaultGuardMaxModelLen, maxChars: defaultGuardMaxChars, dtype: c.vllm.DType}
	if g.dtype == "" {
		g.dtype = "auto"
	}
	var problems []error
	if guardrailValid && !c.guardrail {
		problems = append(problems, fmt.Errorf("%s is set but %s is not true: the guard model is a step of the guardrail; "+
			"set %s=true to apply it, or remove %s", envGuardModelDir, envGuardrailEnabled, envGuardrailEnabled, envGuardModelDir))
	}
	if !filepath.IsAbs(dir) {
		problems = append(problems, fmt.Errorf("%s=%q: want an absolute path, such as /opt/ml/model/.guard-model", envGuardModelDir, dir))
	}
	if v, ok := e.get(envGuardGPUMemoryUtilization); !ok || strings.TrimSpace(v) == "" {
		problems = append(problems, fmt.Errorf("%s is required with %s: the guard vLLM's --gpu-memory-utilization, above 0 and at most %g",
			envGuardGPUMemoryUtilization, envGuardModelDir, maxGuardGPUMemoryUtilization))
	} else {
		u, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(u > 0 && u <= maxGuardGPUMemoryUtilization) { // also refuses NaN
			problems = append(problems, fmt.Errorf("%s=%q: want a number above 0 and at most %g (a share of the GPU's memory)",
				envGuardGPUMemoryUtilization, v, maxGuardGPUMemoryUtilization))
		}
		g.gpuMemoryUtilization = u
	}
	if v, ok := e.get(envGuardMaxModelLen); ok {
		n, err := parseIntIn(v, minGuardMaxModelLen, maxGuardMaxModelLen)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", envGuardMaxModelLen, err))
		}
		g.maxModelLen = n
	}
	if v, ok := e.get(envGuardMaxChars); ok {
		n, err := parseIntIn(v, gateway.MinGuardMaxChars, gateway.MaxGuardMaxChars)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", envGuardMaxChars, err))
		}
		g.maxChars = n
	}
	if v, ok := e.get(envGuardDType); ok {
		d := strings.ToLower(strings.TrimSpace(v))
		if !slices.Contains(guardDTypes, d) {
			problems = append(problems, fmt.Errorf("%s=%q: want one of vLLM's --dtype values: %s", envGuardDType, v, strings.Join(guardDTypes, ", ")))
		}
		g.dtype = d
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	c.guard = g
	return nil
}

// parseIntIn reads a decimal integer within lo..hi.
func parseIntIn(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q: want a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%q is not a TCP port (1-65535)", s)
	}
	return p, nil
}

// parsePortRange reads SageMaker's "XXXX-YYYY" (inclusive).
func parsePortRange(s string) (portRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return portRange{}, fmt.Errorf("%q: want a range such as 30000-30999", s)
	}
	l, err1 := parsePort(lo)
	h, err2 := parsePort(hi)
	if err := errors.Join(err1, err2); err != nil {
		return portRange{}, fmt.Errorf("%q: %w", s, err)
	}
	if l > h {
		return portRange{}, fmt.Errorf("%q: the first port is above the last", s)
	}
	return portRange{lo: l, hi: h}, nil
}

// parseCommand reads VLLM_COMMAND: a JSON array of strings (for paths with
// spaces), or words separated by spaces.
func parseCommand(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	var cmd []string
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &cmd); err != nil {
			return nil, fmt.Errorf("not a JSON array of strings: %w", err)
		}
	} else {
		cmd = strings.Fields(s)
	}
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, errors.New("empty command")
	}
	return cmd, nil
}
