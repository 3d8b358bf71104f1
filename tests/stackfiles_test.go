package tests

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

var update = flag.Bool("update", false, "rewrite the golden plan snapshots under tests/testdata")

// shippedStacks are the stacks with a Pulumi.<stack>.yaml in the repository.
func shippedStacks(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(projectDir, "Pulumi.*.yaml"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml"))
	}
	sort.Strings(out)
	require.Contains(t, out, "cn-northwest-1", "the default stack must ship")
	return out
}

// TestShippedStacksValidateAgainstSchema loads each stack file with the Pulumi
// SDK's loaders and validates it with the engine's own schema check.
func TestShippedStacksValidateAgainstSchema(t *testing.T) {
	for _, stack := range shippedStacks(t) {
		t.Run(stack, func(t *testing.T) {
			sc, err := plan.LoadStackConfig(projectDir, stack)
			require.NoError(t, err)
			assert.NotEmpty(t, sc.Values["aws:region"], "every stack names its region")
		})
	}
}

// TestSchemaCatchesBadStackFiles proves the validation above can fail.
func TestSchemaCatchesBadStackFiles(t *testing.T) {
	project, err := os.ReadFile(filepath.Join(projectDir, "Pulumi.yaml"))
	require.NoError(t, err)
	cases := map[string]string{
		"wrong type":    "config:\n  aws:region: cn-northwest-1\n  deepseek-r1-cn:apiPort: eighty\n",
		"not a list":    "config:\n  aws:region: cn-northwest-1\n  deepseek-r1-cn:subnetIds: subnet-1\n",
		"not a boolean": "config:\n  aws:region: cn-northwest-1\n  deepseek-r1-cn:natGateway: maybe\n",
	}
	for name, stackFile := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), project, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.bad.yaml"), []byte(stackFile), 0o644))
			_, err := plan.LoadStackConfig(dir, "bad")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "must be of type")
		})
	}
}

// recordingSource answers config reads from a map and records the keys asked.
type recordingSource struct {
	values map[string]string
	asked  map[string]bool
}

func (r *recordingSource) GetConfig(k string) (string, bool) {
	r.asked[k] = true
	v, ok := r.values[k]
	return v, ok
}

func (r *recordingSource) IsConfigSecret(string) bool { return false }

// TestSchemaDeclaresEveryKeyTheProgramReads: Pulumi.yaml documents exactly
// the keys stacks.Load reads, and its defaults are the ones Load applies.
func TestSchemaDeclaresEveryKeyTheProgramReads(t *testing.T) {
	proj, err := workspace.LoadProject(filepath.Join(projectDir, "Pulumi.yaml"))
	require.NoError(t, err)
	declared := map[string]bool{}
	for k, v := range proj.Config {
		declared[k] = true
		assert.NotEmpty(t, v.Description, "%s has no description", k)
		assert.NotNil(t, v.Type, "%s has no type", k)
	}

	src := &recordingSource{values: map[string]string{"aws:region": "cn-northwest-1"}, asked: map[string]bool{}}
	bare, err := stacks.Load(src)
	require.NoError(t, err)
	for k := range src.asked {
		if strings.HasPrefix(k, stacks.Namespace+":") {
			assert.True(t, declared[k], "the program reads %s but Pulumi.yaml does not declare it", k)
		}
	}
	for k := range declared {
		assert.True(t, src.asked[k], "Pulumi.yaml declares %s but the program never reads it", k)
	}

	// The same config with the project's defaults merged in, as `pulumi up`
	// hands it to the program, must load to the same values.
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(projectDir, "Pulumi.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.bare.yaml"), []byte("config:\n  aws:region: cn-northwest-1\n"), 0o644))
	sc, err := plan.LoadStackConfig(dir, "bare")
	require.NoError(t, err)
	merged, err := stacks.Load(&recordingSource{values: sc.Values, asked: map[string]bool{}})
	require.NoError(t, err)
	assert.Equal(t, bare, merged, "Pulumi.yaml defaults and the program's defaults differ")
}

// TestGoldenPlans compares each shipped stack's plan with its snapshot, so
// that a pull request shows the change in planned infrastructure as a diff.
// Update with: go test ./tests -run TestGoldenPlans -update
func TestGoldenPlans(t *testing.T) {
	for _, stack := range shippedStacks(t) {
		t.Run(stack, func(t *testing.T) {
			path, err := filepath.Abs(filepath.Join("testdata", stack+".plan.json"))
			require.NoError(t, err)
			got, err := planStack(t, stack).JSON()
			require.NoError(t, err)
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "no snapshot: run go test ./tests -run TestGoldenPlans -update")
			assert.Equal(t, string(want), string(got), "plan of %s changed: review, then run with -update", stack)
		})
	}
}

// TestPlanIsDeterministic guards the snapshots: registration order varies
// from run to run, the plan must not.
func TestPlanIsDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 5; i++ {
		p, err := plan.Run(projectDir, "cn-northwest-1")
		require.NoError(t, err)
		b, err := p.JSON()
		require.NoError(t, err)
		if first == nil {
			first = b
			continue
		}
		require.Equal(t, string(first), string(b))
	}
}

func TestPlanCommand(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := plan.Main([]string{"--stack", "cn-northwest-1", "--dir", projectDir}, &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
		for _, want := range []string{
			"target ec2 in cn-northwest-1 (partition aws-cn)",
			"tensor parallel 1, pipeline parallel 1, dtype bfloat16",
			"KV cache", "max model length",
			"CNY per hour", "CNY per month",
			"+ aws:autoscaling/group:Group  dsr1-vllm",
			"Fallback instance types", "1. g5.2xlarge (1 x NVIDIA A10G)",
			"offline stand-ins",
		} {
			assert.Contains(t, out.String(), want)
		}
	})
	t.Run("json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := plan.Main([]string{"--stack", "cn-northwest-1", "--dir", projectDir, "--json"}, &out, &errOut)
		require.Equal(t, 0, code, errOut.String())
		assert.True(t, strings.HasPrefix(out.String(), "{"))
		assert.Contains(t, out.String(), `"resources": [`)
	})
	t.Run("usage", func(t *testing.T) {
		var out, errOut bytes.Buffer
		assert.Equal(t, 2, plan.Main(nil, &out, &errOut))
		assert.Contains(t, errOut.String(), "--stack")
	})
	t.Run("config error", func(t *testing.T) {
		dir := t.TempDir()
		b, err := os.ReadFile(filepath.Join(projectDir, "Pulumi.yaml"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), b, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.bad.yaml"),
			[]byte("config:\n  aws:region: cn-northwest-1\n  deepseek-r1-cn:model: deepseek-r1\n"), 0o644))
		var out, errOut bytes.Buffer
		assert.Equal(t, 1, plan.Main([]string{"--stack", "bad", "--dir", dir}, &out, &errOut))
		assert.Contains(t, errOut.String(), `deepseek-r1-cn:model = "deepseek-r1"`)
		assert.NotContains(t, errOut.String(), "1 error occurred", "the message is shown as the program gives it")
		assert.Empty(t, out.String())
	})
}
