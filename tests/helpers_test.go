// Package tests runs the real program (stacks.Program) under Pulumi's mock
// engine, through the same offline plan that `go run . plan` uses, and
// checks what it would create. It is the only test package that links the
// AWS SDK, to keep `go test ./...` fast.
package tests

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
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
	Statement []stmt
}

// stmt is one statement of a policy.
type stmt struct {
	Sid       string
	Effect    string
	Principal map[string]any
	Action    []string
	Resource  []string
	Condition map[string]map[string]any
}

// statement finds a statement by Sid.
func statement(t *testing.T, doc policy, sid string) stmt {
	t.Helper()
	for _, st := range doc.Statement {
		if st.Sid == sid {
			return st
		}
	}
	require.Failf(t, "missing statement", "no statement %s", sid)
	return stmt{}
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

// assertWeightsBucketSafe checks the weights bucket of a plan: private,
// encrypted, versioned, TLS-only, and every part of it kept on destroy.
func assertWeightsBucketSafe(t *testing.T, p *plan.Plan) {
	t.Helper()
	for _, r := range p.Resources {
		if strings.HasPrefix(r.Type, "aws:s3/") {
			assert.Contains(t, r.Options, "retainOnDelete", r.Type)
		}
	}
	bucket := one(t, p, "aws:s3/bucketV2:BucketV2")
	assert.Equal(t, false, bucket.Inputs["forceDestroy"])
	pab := one(t, p, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
	for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
		assert.Equal(t, true, pab.Inputs[k], k)
	}
	ver := one(t, p, "aws:s3/bucketVersioningV2:BucketVersioningV2")
	assert.Equal(t, "Enabled", ver.Inputs["versioningConfiguration"].(map[string]any)["status"])
	sse := one(t, p, "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
	rule := sse.Inputs["rules"].([]any)[0].(map[string]any)
	assert.Equal(t, "AES256", rule["applyServerSideEncryptionByDefault"].(map[string]any)["sseAlgorithm"])
	doc := parsePolicy(t, one(t, p, "aws:s3/bucketPolicy:BucketPolicy").Inputs["policy"])
	require.Len(t, doc.Statement, 1)
	assert.Equal(t, "Deny", doc.Statement[0].Effect)
	assert.Equal(t, map[string]map[string]any{"Bool": {"aws:SecureTransport": "false"}}, doc.Statement[0].Condition)
}

// assertPartitionClean checks that every ARN in the plan's inputs has the
// partition's prefix and that no string of the other partition leaks in.
func assertPartitionClean(t *testing.T, p *plan.Plan, arnPrefix string, mustNotLeak []string) {
	t.Helper()
	arn := regexp.MustCompile(`arn:[a-z-]+:`)
	n := 0
	for _, s := range allStrings(p) {
		for _, bad := range mustNotLeak {
			assert.NotContains(t, s, bad)
		}
		for _, m := range arn.FindAllString(s, -1) {
			assert.Equal(t, arnPrefix, m, "in %q", s)
			n++
		}
	}
	assert.Greater(t, n, 3, "the plan should hold ARNs to check")
}

// assertNoAdminWildcards checks every IAM policy in the plan: no Allow of
// "*" or "service:*" on Resource "*". A KMS key policy must let its account
// administer the key ("kms:*" on "*" for the account root: without it the
// key becomes unmanageable), and that one statement is all it may grant so.
func assertNoAdminWildcards(t *testing.T, p *plan.Plan) {
	t.Helper()
	docs := policies(t, p)
	require.NotEmpty(t, docs)
	for where, doc := range docs {
		for _, st := range doc.Statement {
			if st.Effect != "Allow" {
				continue
			}
			if strings.HasPrefix(where, "aws:kms/key:Key ") && slices.Equal(st.Action, []string{"kms:*"}) {
				root, _ := st.Principal["AWS"].(string)
				assert.Regexp(t, `^arn:aws(-cn)?:iam::\d{12}:root$`, root, "%s: kms:* only for the account root", where)
				continue
			}
			for _, a := range st.Action {
				assert.NotEqual(t, "*", a, where)
				assert.False(t, strings.HasSuffix(a, ":*") && slices.Contains(st.Resource, "*"), "%s allows %s on *", where, a)
			}
		}
	}
}

// assertNoOpenIngress checks that nothing in the plan takes traffic from
// the whole internet or on SSH: security groups' ingress rules and
// Kubernetes load balancers' source ranges.
func assertNoOpenIngress(t *testing.T, p *plan.Plan) {
	t.Helper()
	for _, sg := range byType(p, "aws:ec2/securityGroup:SecurityGroup") {
		rules, _ := sg.Inputs["ingress"].([]any)
		for _, r := range rules {
			rule := r.(map[string]any)
			for _, c := range rule["cidrBlocks"].([]any) {
				assert.NotEqual(t, "0.0.0.0/0", c, "%s ingress", sg.Name)
			}
			from, to := rule["fromPort"].(float64), rule["toPort"].(float64)
			assert.False(t, from <= 22 && 22 <= to, "%s opens port 22", sg.Name)
		}
	}
	for _, svc := range byType(p, "kubernetes:core/v1:Service") {
		spec := svc.Inputs["spec"].(map[string]any)
		if spec["type"] == "LoadBalancer" {
			ranges, _ := spec["loadBalancerSourceRanges"].([]any)
			assert.NotEmpty(t, ranges, "%s: a load balancer without source ranges is open to all", svc.Name)
			assert.NotContains(t, ranges, "0.0.0.0/0", svc.Name)
			annotations := svc.Inputs["metadata"].(map[string]any)["annotations"].(map[string]any)
			assert.Equal(t, "true", annotations["service.beta.kubernetes.io/aws-load-balancer-internal"], svc.Name)
		}
	}
}

// runWith plans against a given stand-in of AWS (plan.DefaultCatalog when nil).
func runWith(values map[string]string, aws *plan.Catalog) (*plan.Plan, error) {
	return plan.RunConfigWith(&plan.StackConfig{Project: "deepseek-r1-cn", Stack: "test", Values: values}, aws)
}

// planStack plans a shipped stack as `pulumi up` runs the program: in the
// project directory, where the config's relative paths (the guardrail
// policy) point. The test's working directory is the project's until it ends.
func planStack(t *testing.T, stack string) *plan.Plan {
	t.Helper()
	inProject(t)
	p, err := plan.Run(".", stack)
	require.NoError(t, err)
	return p
}
