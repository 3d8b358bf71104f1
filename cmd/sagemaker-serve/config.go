package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
)

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

	if err := c.guardrailConfig(e); err != nil {
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
