package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// vLLM's arguments come from the endpoint's environment, with the
// convention of vLLM's own SageMaker image (vllm-project/vllm,
// examples/online_serving/sagemaker-entrypoint.sh, run by the vllm-sagemaker
// target of docker/Dockerfile): SM_VLLM_<FLAG>=value becomes
// --<flag> value, the name lower-cased with underscores turned to dashes.
// An empty value, as there, or "true" gives the bare flag.
const vllmEnvPrefix = "SM_VLLM_"

// defaultModelDir is where SageMaker puts the model artifacts
// (awsdocs/amazon-sagemaker-developer-guide, doc_source/
// your-algorithms-inference-code.md, "How SageMaker Loads Your Model
// Artifacts"), and so the weights.
const defaultModelDir = "/opt/ml/model"

// ownedFlags are vLLM flags the entry point sets itself: vLLM must listen
// on the loopback port the entry point picked, with the key it made, over
// plain HTTP on TCP, or the entry point cannot reach it. An override is a
// configuration error, not something to let through silently.
var ownedFlags = map[string]string{
	"HOST":         "vLLM listens on 127.0.0.1 only; SageMaker reaches the entry point on SAGEMAKER_BIND_TO_PORT (8080)",
	"PORT":         "the entry point picks vLLM's loopback port; set SAGEMAKER_BIND_TO_PORT for the container's port",
	"API_KEY":      "the entry point gives vLLM a random key of its own; SageMaker authenticates callers with IAM",
	"UDS":          "the entry point talks to vLLM over loopback TCP",
	"SSL_KEYFILE":  "the entry point talks to vLLM over plain HTTP on loopback",
	"SSL_CERTFILE": "the entry point talks to vLLM over plain HTTP on loopback",
}

var envFlagName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// vllmCLI is what the environment says about vLLM's command line.
type vllmCLI struct {
	// Model is the weights directory: SM_VLLM_MODEL, default /opt/ml/model.
	Model string
	// ServedModelName is SM_VLLM_SERVED_MODEL_NAME, or the model path (what
	// vLLM then calls the model).
	ServedModelName string
	// DType is SM_VLLM_DTYPE's value ("" when unset: vLLM's auto), which
	// the guard model gets too unless GUARD_DTYPE says otherwise.
	DType string
	// Flags are the flags, sorted by variable name so the command line is
	// the same whatever order the environment lists them in.
	Flags []string
}

// Args is the command line after "vllm serve": the model path as the
// positional argument, then the flags. The host, the port and the key are
// the caller's to add.
func (c vllmCLI) Args() []string {
	return append([]string{c.Model}, c.Flags...)
}

// parseVLLMEnv converts the SM_VLLM_* variables of environ (KEY=value
// entries, as os.Environ) to vLLM's command line.
func parseVLLMEnv(environ []string) (vllmCLI, error) {
	c := vllmCLI{Model: defaultModelDir}
	type kv struct{ key, value string }
	var vars []kv
	for _, e := range environ {
		k, v, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, vllmEnvPrefix) {
			vars = append(vars, kv{strings.TrimPrefix(k, vllmEnvPrefix), v})
		}
	}
	slices.SortFunc(vars, func(a, b kv) int { return strings.Compare(a.key, b.key) })

	var problems []string
	for _, e := range vars {
		name := strings.ToUpper(e.key)
		switch {
		case !envFlagName.MatchString(e.key):
			problems = append(problems, fmt.Sprintf("%s%s: not a vLLM flag name (letters, digits and underscores)", vllmEnvPrefix, e.key))
			continue
		case ownedFlags[name] != "":
			problems = append(problems, fmt.Sprintf("%s%s is not allowed: %s", vllmEnvPrefix, e.key, ownedFlags[name]))
			continue
		case name == "MODEL":
			if e.value == "" {
				problems = append(problems, vllmEnvPrefix+"MODEL is empty: give the weights directory, or leave it unset for "+defaultModelDir)
				continue
			}
			c.Model = e.value
			continue
		case name == "SERVED_MODEL_NAME":
			c.ServedModelName = e.value
		case name == "DTYPE":
			c.DType = e.value
		}
		flag := "--" + strings.ReplaceAll(strings.ToLower(e.key), "_", "-")
		switch strings.ToLower(e.value) {
		case "", "true":
			c.Flags = append(c.Flags, flag)
		case "false":
			// Not every vLLM boolean has a --no- form, and leaving the flag
			// out keeps vLLM's default, which may be true: neither is
			// necessarily what "false" meant.
			problems = append(problems, fmt.Sprintf("%s%s=false is ambiguous: leave the variable unset for vLLM's default, "+
				"or set %sNO_%s=true for vLLM's --no- form of the flag", vllmEnvPrefix, e.key, vllmEnvPrefix, e.key))
		default:
			c.Flags = append(c.Flags, flag, e.value)
		}
	}
	if len(problems) > 0 {
		return vllmCLI{}, fmt.Errorf("vLLM arguments from the environment:\n  %s", strings.Join(problems, "\n  "))
	}
	if c.ServedModelName == "" {
		c.ServedModelName = c.Model
	}
	return c, nil
}
