// Package tests runs the real program (stacks.Program) under Pulumi's mock
// engine, through the same offline plan that `go run . plan` uses, and
// checks what it would create. It is the only test package that links the
// AWS SDK, to keep `go test ./...` fast.
package tests

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// projectDir is the repository root, where Pulumi.yaml lives.
const projectDir = ".."

// cfg builds a stack config: "key" means deepseek-r1-cn:key; keys with a
// namespace ("aws:region") are kept.
func cfg(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i]
		if !strings.Contains(k, ":") {
			k = stacks.Namespace + ":" + k
		}
		out[k] = kv[i+1]
	}
	return out
}

func run(values map[string]string, secretKeys ...string) (*plan.Plan, error) {
	return plan.RunConfig(&plan.StackConfig{
		Project: "deepseek-r1-cn", Stack: "test", Values: values, SecretKeys: secretKeys,
	})
}

func mustPlan(t *testing.T, values map[string]string, secretKeys ...string) *plan.Plan {
	t.Helper()
	p, err := run(values, secretKeys...)
	require.NoError(t, err)
	return p
}

// byType returns the resources of a type.
func byType(p *plan.Plan, typ string) []plan.Resource {
	var out []plan.Resource
	for _, r := range p.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// one returns the single resource of a type.
func one(t *testing.T, p *plan.Plan, typ string) plan.Resource {
	t.Helper()
	rs := byType(p, typ)
	require.Len(t, rs, 1, "resources of type %s", typ)
	return rs[0]
}

// strs collects every string anywhere in a value.
func strs(v any, out *[]string) {
	switch t := v.(type) {
	case string:
		*out = append(*out, t)
	case []any:
		for _, e := range t {
			strs(e, out)
		}
	case map[string]any:
		for _, e := range t {
			strs(e, out)
		}
	}
}

// allStrings is every input string of every resource.
func allStrings(p *plan.Plan) []string {
	var out []string
	for _, r := range p.Resources {
		strs(r.Inputs, &out)
	}
	return out
}

// policy is an IAM policy document as the program renders it.
type policy struct {
	Statement []struct {
		Sid       string
		Effect    string
		Principal map[string]any
		Action    []string
		Resource  []string
		Condition map[string]map[string]any
	}
}

func parsePolicy(t *testing.T, s any) policy {
	t.Helper()
	text, ok := s.(string)
	require.True(t, ok, "policy is not a string: %v", s)
	var p policy
	require.NoError(t, json.Unmarshal([]byte(text), &p), text)
	return p
}

// policies returns every IAM policy document in the plan with where it is.
func policies(t *testing.T, p *plan.Plan) map[string]policy {
	t.Helper()
	out := map[string]policy{}
	for _, r := range p.Resources {
		for _, k := range []string{"policy", "assumeRolePolicy"} {
			if v, ok := r.Inputs[k]; ok {
				out[r.Type+" "+r.Name+" "+k] = parsePolicy(t, v)
			}
		}
	}
	return out
}

// configErr runs a bad config and returns the error, checking that nothing
// was registered before it.
func configErr(t *testing.T, values map[string]string, secretKeys ...string) error {
	t.Helper()
	_, err := run(values, secretKeys...)
	require.Error(t, err)
	var pe *plan.ProgramError
	require.True(t, errors.As(err, &pe), "error %v is not a plan.ProgramError", err)
	require.Zero(t, pe.Registered, "resources were registered before the config error: %v", err)
	return err
}
