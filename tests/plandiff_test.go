package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

const (
	groupRes      = "aws:autoscaling/group:Group dsr1-vllm"
	rolePolicyRes = "aws:iam/rolePolicy:RolePolicy dsr1-vllm"
	secretRes     = "aws:secretsmanager/secret:Secret dsr1-api-key"
	vllmSGRes     = "aws:ec2/securityGroup:SecurityGroup dsr1-vllm"
)

// resourceChange is what a test expects of one resource in a diff: the
// operation and, for updates, the top-level inputs that change.
type resourceChange struct {
	op     plan.Op
	inputs []string
}

// byResource indexes a diff's resources as "type name".
func byResource(d *plan.PlanDiff) map[string]plan.ResourceDiff {
	out := map[string]plan.ResourceDiff{}
	for _, r := range d.Resources {
		out[r.Type+" "+r.Name] = r
	}
	return out
}

// topInputs are the top-level inputs a resource's counted changes touch.
func topInputs(r plan.ResourceDiff) []string {
	set := map[string]bool{}
	for _, c := range r.Changes {
		if c.Ignored {
			continue
		}
		k := c.Path
		if i := strings.IndexAny(k, ".[("); i >= 0 {
			k = k[:i]
		}
		set[k] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decisionPaths(d *plan.PlanDiff) []string {
	var out []string
	for _, c := range d.Decisions {
		out = append(out, c.Path)
	}
	sort.Strings(out)
	return out
}

func render(d *plan.PlanDiff) (text, markdown string) {
	var t, m bytes.Buffer
	d.WriteText(&t)
	d.Markdown(&m)
	return t.String(), m.String()
}

// rootVolume is the root volume the program sizes for a plan's weights.
func rootVolume(p *plan.Plan) int {
	return stacks.MinRootVolumeGiB(sizing.Decision{WeightsGiB: p.Sizing.WeightsGiB})
}

const ecrImage = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/vllm/vllm-openai:v0.11.0"

// TestDiffOfRealPlans changes one thing in a config and checks that the diff
// holds exactly the resources and inputs that depend on it. The expectations
// follow from what the program derives from each setting, not from its output.
func TestDiffOfRealPlans(t *testing.T) {
	// Without fallback types and observability, so that each case shows
	// one server's resources; "fallback types" changes them.
	beijing32B := func(kv ...string) map[string]string {
		return cfg(append([]string{"aws:region", "cn-north-1", "model", "deepseek-r1-distill-qwen-32b",
			"allowedCidrs", `["10.0.0.0/16","172.16.0.0/12"]`, "maxFallbackInstanceTypes", "0", "observability", "false"}, kv...)...)
	}
	ningxia := func(kv ...string) map[string]string {
		return cfg(append([]string{"aws:region", "cn-northwest-1", "instanceType", "g5.xlarge", "maxFallbackInstanceTypes", "0",
			"observability", "false"}, kv...)...)
	}
	const ltXlarge = "aws:ec2/launchTemplate:LaunchTemplate dsr1-vllm-g5.xlarge"
	cases := []struct {
		name       string
		base, head map[string]string
		// decisions are the exact sizing and cost paths that change, or with
		// decisionsUnder, the one subtree they all belong to.
		decisions      []string
		decisionsUnder string
		// resources are exactly the resources in the diff; the function
		// gets both plans for expectations that depend on the sizing.
		resources func(base, head *plan.Plan) map[string]resourceChange
		check     func(t *testing.T, base, head *plan.Plan, d *plan.PlanDiff, text string)
	}{
		{
			// g5.24xlarge has the same four A10G as g5.12xlarge: the sizing
			// is the same but for the type, and the price differs. Each type
			// has its own launch template, so the new type's is created, the
			// old one's goes, and the group launches the new one (its
			// mixed instances policy names the template and the type).
			name: "instance type",
			base: beijing32B("instanceType", "g5.12xlarge"),
			head: beijing32B("instanceType", "g5.24xlarge"),
			decisions: []string{"cost.perHour", "cost.perMonth", "outputs.costEstimate.perHour", "outputs.costEstimate.perMonth",
				"outputs.instanceType", "sizing.instanceType"},
			resources: func(_, _ *plan.Plan) map[string]resourceChange {
				return map[string]resourceChange{
					"aws:ec2/launchTemplate:LaunchTemplate dsr1-vllm-g5.12xlarge": {op: plan.OpDelete},
					"aws:ec2/launchTemplate:LaunchTemplate dsr1-vllm-g5.24xlarge": {op: plan.OpCreate},
					groupRes: {plan.OpUpdate, []string{"mixedInstancesPolicy"}},
				}
			},
			check: func(t *testing.T, _, _ *plan.Plan, d *plan.PlanDiff, text string) {
				cn, err := region.Lookup("cn-north-1")
				require.NoError(t, err)
				oldPrice, ok := cn.OnDemandPrice("g5.12xlarge")
				require.True(t, ok)
				newPrice, ok := cn.OnDemandPrice("g5.24xlarge")
				require.True(t, ok)
				require.NotNil(t, d.Cost)
				assert.Equal(t, "CNY", d.Cost.Currency)
				assert.Equal(t, oldPrice.PerHour, d.Cost.OldPerHour)
				assert.Equal(t, newPrice.PerHour, d.Cost.NewPerHour)
				assert.InDelta(t, newPrice.PerHour*stacks.HoursPerMonth, d.Cost.NewPerMonth, 0.01)
				assert.Contains(t, text, "-     mixedInstancesPolicy.launchTemplate.overrides[0].instanceType: \"g5.12xlarge\"\n"+
					"+     mixedInstancesPolicy.launchTemplate.overrides[0].instanceType: \"g5.24xlarge\"\n")
				assert.Regexp(t, `(?m)^~   cost: 53\.64 => 77\.02 CNY per hour \(\+23\.38\)`, text)
			},
		},
		{
			// On the same g5.xlarge, another model changes the weights and
			// KV cache sizes (so the context and its note), the model name and
			// weights prefix in the boot script, the weights prefix in the
			// instance policy, and the API key secret's description, and the
			// outputs that show them, and the group's health check grace
			// (sized to the weights). The price does not change. The root
			// volume changes only if the weights cross a 10 GiB step. The
			// launch template gets a new version, which the group rolls out.
			name: "model",
			base: ningxia("model", "deepseek-r1-distill-qwen-7b"),
			head: ningxia("model", "deepseek-r1-distill-llama-8b"),
			decisions: []string{"outputs.curlExample", "outputs.model", "outputs.sizing.kvCacheTokens", "outputs.sizing.maxModelLen",
				"outputs.sizing.notes[0]", "outputs.sizing.weightsGiB", "outputs.stageWeightsCommands", "outputs.weightsUri",
				"sizing.kvCacheGiB", "sizing.kvCacheTokens", "sizing.maxModelLen", "sizing.model", "sizing.notes[0]", "sizing.weightsGiB"},
			resources: func(base, head *plan.Plan) map[string]resourceChange {
				lt := []string{"userData"}
				if rootVolume(base) != rootVolume(head) {
					lt = []string{"blockDeviceMappings", "userData"}
				}
				return map[string]resourceChange{
					ltXlarge:      {plan.OpUpdate, lt},
					rolePolicyRes: {plan.OpUpdate, []string{"policy"}},
					secretRes:     {plan.OpUpdate, []string{"description"}},
					// More weights to copy: a longer health check grace (and warm-up).
					groupRes: {plan.OpUpdate, []string{"healthCheckGracePeriod", "instanceRefresh"}},
				}
			},
			check: func(t *testing.T, _, _ *plan.Plan, d *plan.PlanDiff, text string) {
				assert.Nil(t, d.Cost, "same instance type, same price")
				pol := byResource(d)[rolePolicyRes]
				require.NotEmpty(t, pol.Changes)
				for _, c := range pol.Changes {
					// The policy is JSON in a string: it is compared as a document.
					assert.True(t, strings.HasPrefix(c.Path, "policy(json).Statement["), c.Path)
					assert.Equal(t, plan.Modified, c.Kind, c.Path)
					assert.Contains(t, c.Old, "DeepSeek-R1-Distill-Qwen-7B/", c.Path)
					assert.Contains(t, c.New, "DeepSeek-R1-Distill-Llama-8B/", c.Path)
				}
				assert.Contains(t, text, "--served-model-name deepseek-r1-distill-llama-8b")
				assert.Contains(t, text, "WEIGHTS_S3_URI=s3://dsr1-weights-offline/models/deepseek-ai/DeepSeek-R1-Distill-Llama-8B/")
				assert.Contains(t, byResource(d)[ltXlarge].Notes[0], "instance refresh")
			},
		},
		{
			// Fallback types: each one more is a launch template of its own
			// and an entry in the group's launch priority, sized and priced
			// in the plan.
			name:           "fallback types",
			base:           ningxia(),
			head:           ningxia("maxFallbackInstanceTypes", "1"),
			decisionsUnder: "fallbacks[0].",
			resources: func(_, _ *plan.Plan) map[string]resourceChange {
				return map[string]resourceChange{
					"aws:ec2/launchTemplate:LaunchTemplate dsr1-vllm-g5.2xlarge": {op: plan.OpCreate},
					groupRes: {plan.OpUpdate, []string{"mixedInstancesPolicy"}},
				}
			},
			check: func(t *testing.T, _, head *plan.Plan, d *plan.PlanDiff, text string) {
				require.Len(t, head.Fallbacks, 1)
				assert.Equal(t, "g5.2xlarge", head.Fallbacks[0].Sizing.InstanceType)
				assert.Contains(t, text, "mixedInstancesPolicy.launchTemplate.overrides[1]")
			},
		},
		{
			// The second allowed CIDR is only in the API port's ingress rule.
			name:      "allowed CIDRs",
			base:      beijing32B(),
			head:      beijing32B("allowedCidrs", `["10.0.0.0/16","192.168.0.0/16"]`),
			decisions: nil,
			resources: func(_, _ *plan.Plan) map[string]resourceChange {
				return map[string]resourceChange{vllmSGRes: {plan.OpUpdate, []string{"ingress"}}}
			},
			check: func(t *testing.T, _, _ *plan.Plan, d *plan.PlanDiff, text string) {
				sg := byResource(d)[vllmSGRes]
				require.Len(t, sg.Changes, 1)
				assert.Equal(t, plan.Change{Path: "ingress[0].cidrBlocks[1]", Kind: plan.Modified,
					Old: "172.16.0.0/12", New: "192.168.0.0/16"}, sg.Changes[0])
				assert.Contains(t, text, "-     ingress[0].cidrBlocks[1]: \"172.16.0.0/12\"\n+     ingress[0].cidrBlocks[1]: \"192.168.0.0/16\"\n")
			},
		},
		{
			// An existing bucket replaces the program's: every resource of
			// the program's bucket leaves the stack, and since all are
			// retainOnDelete, AWS keeps them; the boot script and the
			// instance policy name the other bucket.
			name:      "existing weights bucket",
			base:      ningxia(),
			head:      ningxia("weightsBucket", "my-weights-bucket"),
			decisions: []string{"outputs.stageWeightsCommands", "outputs.weightsUri"},
			resources: func(base, _ *plan.Plan) map[string]resourceChange {
				out := map[string]resourceChange{
					ltXlarge:      {plan.OpUpdate, []string{"userData"}},
					rolePolicyRes: {plan.OpUpdate, []string{"policy"}},
				}
				for _, r := range base.Resources {
					if strings.HasPrefix(r.Type, "aws:s3/") {
						out[r.Type+" "+r.Name] = resourceChange{op: plan.OpDelete}
					}
				}
				return out
			},
			check: func(t *testing.T, base, _ *plan.Plan, d *plan.PlanDiff, text string) {
				require.Len(t, byType(base, "aws:s3/bucketV2:BucketV2"), 1)
				for _, r := range d.Resources {
					if r.Op == plan.OpDelete {
						assert.Equal(t, []string{"retainOnDelete: Pulumi drops it from the stack but leaves it in AWS"}, r.Notes, r.Type)
					}
				}
				assert.Contains(t, text, "- aws:s3/bucketV2:BucketV2  dsr1-weights  (delete)  [retainOnDelete]\n"+
					"      # retainOnDelete: Pulumi drops it from the stack but leaves it in AWS\n")
				assert.Contains(t, text, "+         WEIGHTS_S3_URI=s3://my-weights-bucket/models/")
			},
		},
		{
			// Without NAT the public side of the network goes (internet
			// gateway, public subnet, its route table and association, the
			// NAT's address, the NAT gateway, the private default route); the
			// image from ECR brings the two ECR endpoints, an ECR pull in the
			// instance policy and a boot script that runs the image.
			name:      "no NAT gateway",
			base:      ningxia(),
			head:      ningxia("natGateway", "false", "vllmImage", ecrImage),
			decisions: nil,
			resources: func(_, _ *plan.Plan) map[string]resourceChange {
				del := resourceChange{op: plan.OpDelete}
				return map[string]resourceChange{
					"aws:ec2/eip:Eip dsr1-nat":                                        del,
					"aws:ec2/internetGateway:InternetGateway dsr1":                    del,
					"aws:ec2/natGateway:NatGateway dsr1":                              del,
					"aws:ec2/route:Route dsr1-private-default":                        del,
					"aws:ec2/routeTable:RouteTable dsr1-public":                       del,
					"aws:ec2/routeTableAssociation:RouteTableAssociation dsr1-public": del,
					"aws:ec2/subnet:Subnet dsr1-public":                               del,
					"aws:ec2/vpcEndpoint:VpcEndpoint dsr1-ecr.api":                    {op: plan.OpCreate},
					"aws:ec2/vpcEndpoint:VpcEndpoint dsr1-ecr.dkr":                    {op: plan.OpCreate},
					ltXlarge:      {plan.OpUpdate, []string{"userData"}},
					rolePolicyRes: {plan.OpUpdate, []string{"policy"}},
				}
			},
			check: func(t *testing.T, _, _ *plan.Plan, d *plan.PlanDiff, text string) {
				var sids []any
				for _, c := range byResource(d)[rolePolicyRes].Changes {
					assert.Equal(t, plan.Added, c.Kind, "statements are only added: %s", c.Path)
					if strings.HasSuffix(c.Path, ".Sid") {
						sids = append(sids, c.New)
					}
				}
				assert.ElementsMatch(t, []any{"EcrLogin", "PullVllmImage"}, sids)
				assert.Contains(t, text, "- aws:ec2/natGateway:NatGateway  dsr1  (delete)\n")
				assert.Contains(t, text, "+ aws:ec2/vpcEndpoint:VpcEndpoint  dsr1-ecr.dkr  (create)\n")
				assert.Contains(t, text, ecrImage, "the boot script now runs the image")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, head := mustPlan(t, tc.base), mustPlan(t, tc.head)
			d := plan.Diff(base, head)
			text, md := render(d)

			assert.True(t, d.Changed())
			if tc.decisionsUnder != "" {
				paths := decisionPaths(d)
				assert.Contains(t, paths, tc.decisionsUnder+"sizing.instanceType")
				for _, p := range paths {
					assert.True(t, strings.HasPrefix(p, tc.decisionsUnder), p)
				}
			} else {
				assert.Equal(t, tc.decisions, decisionPaths(d), text)
			}
			want := tc.resources(base, head)
			got := byResource(d)
			gotKeys := make([]string, 0, len(got))
			for k := range got {
				gotKeys = append(gotKeys, k)
			}
			wantKeys := make([]string, 0, len(want))
			for k := range want {
				wantKeys = append(wantKeys, k)
			}
			require.ElementsMatch(t, wantKeys, gotKeys, text)
			for k, w := range want {
				assert.Equal(t, w.op, got[k].Op, k)
				if w.op == plan.OpUpdate || w.op == plan.OpReplace {
					assert.Equal(t, w.inputs, topInputs(got[k]), k)
				}
			}
			assert.Equal(t, len(head.Resources), d.Unchanged+len(got)-d.Counts()[plan.OpDelete],
				"every resource of the new plan is either unchanged or in the diff")
			tc.check(t, base, head, d, text)
			assert.Contains(t, md, "```diff\n"+text)
		})
	}
}

// TestDiffOfTargetChange moves the default deployment from EC2 to SageMaker:
// everything of the EC2 server goes, the SageMaker endpoint comes, the VPC
// stays.
func TestDiffOfTargetChange(t *testing.T) {
	base := mustPlan(t, cfg("aws:region", "cn-northwest-1"))
	head, err := run(cfg("aws:region", "cn-northwest-1", "target", "sagemaker"))
	require.NoError(t, err)
	d := plan.Diff(base, head)
	got := byResource(d)
	for _, r := range base.Resources {
		if r.Type == "aws:autoscaling/group:Group" || r.Type == "aws:ec2/launchTemplate:LaunchTemplate" ||
			r.Type == "aws:iam/instanceProfile:InstanceProfile" || r.Type == "deepseek-r1-cn:ec2:Server" {
			assert.Equal(t, plan.OpDelete, got[r.Type+" "+r.Name].Op, r.Type)
		}
	}
	created := 0
	for _, r := range head.Resources {
		if strings.HasPrefix(r.Type, "aws:sagemaker/") {
			assert.Equal(t, plan.OpCreate, got[r.Type+" "+r.Name].Op, r.Type)
			created++
		}
	}
	assert.Positive(t, created, "a SageMaker endpoint is created")
	assert.NotContains(t, got, "aws:ec2/vpc:Vpc dsr1", "changing the target must not touch the VPC")
	assert.Contains(t, d.Decisions, plan.Change{Path: "target", Kind: plan.Modified, Old: "ec2", New: "sagemaker"})
}

// TestDiffOfUnchangedPlan: each shipped stack against its own golden
// snapshot, and a plan against itself, shows nothing.
func TestDiffOfUnchangedPlan(t *testing.T) {
	for _, stack := range shippedStacks(t) {
		t.Run(stack, func(t *testing.T) {
			base, err := plan.LoadPlan(filepath.Join("testdata", stack+".plan.json"))
			require.NoError(t, err)
			head := planStack(t, stack)
			for name, d := range map[string]*plan.PlanDiff{"golden": plan.Diff(base, head), "itself": plan.Diff(head, head)} {
				assert.False(t, d.Changed(), name)
				assert.Empty(t, d.Resources, name)
				assert.Empty(t, d.Decisions, name)
				assert.Equal(t, len(head.Resources), d.Unchanged, name)
				text, md := render(d)
				assert.Contains(t, text, fmt.Sprintf("no changes. %d unchanged", len(head.Resources)), name)
				assert.NotRegexp(t, `(?m)^[-+~]`, text, "%s: no line is marked as a change", name)
				assert.Contains(t, md, "### Stack `"+stack+"`: no changes", name)
			}
		})
	}
}

// TestDiffNeverShowsSecrets: an API key set as a Pulumi secret never appears
// in any form of the diff, whether it is new, changed or unchanged.
func TestDiffNeverShowsSecrets(t *testing.T) {
	const oldKey, newKey = "sk-OLD-must-not-leak-8d2f9a", "sk-NEW-must-not-leak-1c7e44"
	keyed := func(k string) *plan.Plan {
		return mustPlan(t, cfg("aws:region", "cn-northwest-1", "apiKey", k), "deepseek-r1-cn:apiKey")
	}
	generated := mustPlan(t, cfg("aws:region", "cn-northwest-1"))
	cases := []struct {
		name       string
		base, head *plan.Plan
		changed    bool
		// mustShow proves the secret's place is in the output, masked.
		mustShow string
	}{
		// The diff cannot see behind the mask, so two keys compare equal.
		{"key rotated", keyed(oldKey), keyed(newKey), false, ""},
		{"key set instead of generated", generated, keyed(newKey), true,
			"- random:index/randomPassword:RandomPassword  dsr1-api-key  (delete)"},
		{"new stack", &plan.Plan{}, keyed(newKey), true, "+     secretString: [secret]\n"},
		{"stack removed", keyed(oldKey), &plan.Plan{Stack: "test", Resources: []plan.Resource{}}, true, "-     secretString: [secret]\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := plan.Diff(tc.base, tc.head)
			assert.Equal(t, tc.changed, d.Changed())
			text, md := render(d)
			js, err := d.JSON()
			require.NoError(t, err)
			for form, out := range map[string]string{"text": text, "markdown": md, "json": string(js)} {
				assert.NotContains(t, out, oldKey, form)
				assert.NotContains(t, out, newKey, form)
				assert.NotContains(t, out, "must-not-leak", form)
			}
			if tc.mustShow != "" {
				assert.Contains(t, text, tc.mustShow)
			}
		})
	}
}

// secretTransitions: a value that becomes or stops being secret is a change,
// but neither side is shown.
func TestDiffSecretTransitions(t *testing.T) {
	res := func(v any) *plan.Plan {
		return &plan.Plan{Stack: "s", Resources: []plan.Resource{{Type: "t:m:R", Name: "r", Inputs: map[string]any{"password": v}}}}
	}
	cases := []struct {
		name     string
		old, new any
		want     []plan.Change
	}{
		{"both secret", plan.SecretMask, plan.SecretMask, nil},
		{"became secret", "hunter2", plan.SecretMask,
			[]plan.Change{{Path: "password", Kind: plan.Modified, Old: plan.SecretMask, New: plan.SecretMask, Note: "secret: values not shown"}}},
		{"no longer secret", plan.SecretMask, "hunter2",
			[]plan.Change{{Path: "password", Kind: plan.Modified, Old: plan.SecretMask, New: plan.SecretMask, Note: "secret: values not shown"}}},
		{"secret added", nil, plan.SecretMask, []plan.Change{{Path: "password", Kind: plan.Added, New: plan.SecretMask}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := plan.Diff(res(tc.old), res(tc.new))
			var got []plan.Change
			for _, r := range d.Resources {
				got = append(got, r.Changes...)
			}
			assert.Equal(t, tc.want, got)
			text, _ := render(d)
			assert.NotContains(t, text, "hunter2")
		})
	}
}

// TestDiffRules checks the diff's rules on small hand-made plans: paths,
// resource options, parents, ignoreChanges and what counts as replacement.
func TestDiffRules(t *testing.T) {
	instance := func(inputs map[string]any, opts ...string) plan.Resource {
		in := map[string]any{"instanceType": "g5.xlarge", "userData": "#!/bin/bash\necho a\n", "userDataReplaceOnChange": true}
		for k, v := range inputs {
			in[k] = v
		}
		return plan.Resource{Type: "aws:ec2/instance:Instance", Name: "vm", Parent: "srv", Inputs: in, Options: opts}
	}
	single := func(r plan.Resource) *plan.Plan { return &plan.Plan{Stack: "s", Resources: []plan.Resource{r}} }
	sg := func(cidrs ...any) plan.Resource {
		return plan.Resource{Type: "aws:ec2/securityGroup:SecurityGroup", Name: "sg", Inputs: map[string]any{
			"ingress": []any{map[string]any{"cidrBlocks": cidrs, "fromPort": 8000.0}},
			"tags":    map[string]any{"Name": "sg"},
		}}
	}
	cases := []struct {
		name       string
		base, head plan.Resource
		op         plan.Op
		changes    []plan.Change
		options    []plan.Change
		notes      []string
		changed    bool
	}{
		{name: "nested array element", base: sg("10.0.0.0/16", "172.16.0.0/12"), head: sg("10.0.0.0/16", "192.168.0.0/16"),
			op: plan.OpUpdate, changed: true,
			changes: []plan.Change{{Path: "ingress[0].cidrBlocks[1]", Kind: plan.Modified, Old: "172.16.0.0/12", New: "192.168.0.0/16"}}},
		{name: "array element removed", base: sg("a", "b"), head: sg("a"), op: plan.OpUpdate, changed: true,
			changes: []plan.Change{{Path: "ingress[0].cidrBlocks[1]", Kind: plan.Removed, Old: "b"}}},
		{name: "map key that is not an identifier",
			base: plan.Resource{Type: "t:m:R", Name: "r", Inputs: map[string]any{"tags": map[string]any{}}},
			head: plan.Resource{Type: "t:m:R", Name: "r", Inputs: map[string]any{"tags": map[string]any{"kubernetes.io/role": "gpu"}}},
			op:   plan.OpUpdate, changed: true,
			changes: []plan.Change{{Path: `tags["kubernetes.io/role"]`, Kind: plan.Added, New: "gpu"}}},
		{name: "JSON document in a string",
			base: plan.Resource{Type: "t:m:R", Name: "r", Inputs: map[string]any{"policy": `{"Statement":[{"Sid":"A","Action":["s3:GetObject"]}]}`}},
			head: plan.Resource{Type: "t:m:R", Name: "r", Inputs: map[string]any{"policy": `{"Statement":[{"Sid":"A","Action":["s3:GetObject","s3:PutObject"]}]}`}},
			op:   plan.OpUpdate, changed: true,
			changes: []plan.Change{{Path: "policy(json).Statement[0].Action[1]", Kind: plan.Added, New: "s3:PutObject"}}},
		{name: "retainOnDelete added", base: sg("a"), head: withOptions(sg("a"), "retainOnDelete"), op: plan.OpUpdate, changed: true,
			options: []plan.Change{{Path: "[retainOnDelete]", Kind: plan.Added, New: true}}},
		{name: "ignoreChanges changed", base: instance(nil, "ignoreChanges: ami"), head: instance(nil), op: plan.OpUpdate, changed: true,
			options: []plan.Change{{Path: "[ignoreChanges]", Kind: plan.Removed, Old: "ami"}}},
		{name: "parent changed", base: instance(nil), head: withParent(instance(nil), "srv2"), op: plan.OpUpdate, changed: true,
			options: []plan.Change{{Path: "[parent]", Kind: plan.Modified, Old: "srv", New: "srv2"}},
			notes: []string{"the parent is part of the URN: unless the program declares an alias, " +
				"Pulumi creates the resource under its new parent and deletes the old one"}},
		{name: "ignored path", base: instance(map[string]any{"ami": "ami-1"}, "ignoreChanges: ami"),
			head: instance(map[string]any{"ami": "ami-2"}, "ignoreChanges: ami"), op: plan.OpSame, changed: false,
			changes: []plan.Change{{Path: "ami", Kind: plan.Modified, Old: "ami-1", New: "ami-2", Ignored: true}}},
		{name: "user data replaces", base: instance(nil), head: instance(map[string]any{"userData": "#!/bin/bash\necho b\n"}),
			op: plan.OpReplace, changed: true,
			changes: []plan.Change{{Path: "userData", Kind: plan.Modified, Old: "#!/bin/bash\necho a\n", New: "#!/bin/bash\necho b\n"}},
			notes:   []string{"replaced: userData changed and userDataReplaceOnChange is true"}},
		{name: "user data without replace on change updates",
			base: instance(map[string]any{"userDataReplaceOnChange": false}),
			head: instance(map[string]any{"userDataReplaceOnChange": false, "userData": "#!/bin/bash\necho b\n"}),
			op:   plan.OpUpdate, changed: true,
			changes: []plan.Change{{Path: "userData", Kind: plan.Modified, Old: "#!/bin/bash\necho a\n", New: "#!/bin/bash\necho b\n"}}},
		{name: "instance type updates in place", base: instance(nil), head: instance(map[string]any{"instanceType": "g5.2xlarge"}),
			op: plan.OpUpdate, changed: true,
			changes: []plan.Change{{Path: "instanceType", Kind: plan.Modified, Old: "g5.xlarge", New: "g5.2xlarge"}},
			notes:   []string{"instanceType changes in place: AWS stops and starts the instance"}},
		{name: "protect added", base: sg("a"), head: withOptions(sg("a"), "protect"), op: plan.OpUpdate, changed: true,
			options: []plan.Change{{Path: "[protect]", Kind: plan.Added, New: true}}},
		{name: "null is absent", base: sg("a"),
			head: plan.Resource{Type: sg("a").Type, Name: "sg", Inputs: map[string]any{
				"ingress": sg("a").Inputs["ingress"], "tags": map[string]any{"Name": "sg"}, "description": nil}},
			changed: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := plan.Diff(single(tc.base), single(tc.head))
			assert.Equal(t, tc.changed, d.Changed())
			if tc.op == "" {
				assert.Empty(t, d.Resources)
				assert.Equal(t, 1, d.Unchanged)
				return
			}
			require.Len(t, d.Resources, 1)
			r := d.Resources[0]
			assert.Equal(t, tc.op, r.Op)
			assert.Equal(t, tc.changes, r.Changes)
			assert.Equal(t, tc.options, r.OptionChanges)
			assert.Equal(t, tc.notes, r.Notes)
		})
	}
}

func withOptions(r plan.Resource, opts ...string) plan.Resource {
	r.Options = opts
	return r
}

func withParent(r plan.Resource, parent string) plan.Resource {
	r.Parent = parent
	return r
}

// TestDiffTextOfLongStrings: a multi-line input shows only its changed
// lines, with two lines of context, in unified diff hunks.
func TestDiffTextOfLongStrings(t *testing.T) {
	lines := func(edit func([]string) []string) string {
		var l []string
		for i := 1; i <= 20; i++ {
			l = append(l, fmt.Sprintf("line %d", i))
		}
		return strings.Join(edit(l), "\n")
	}
	res := func(s string) *plan.Plan {
		return &plan.Plan{Stack: "s", Resources: []plan.Resource{{Type: "t:m:R", Name: "r", Inputs: map[string]any{"script": s}}}}
	}
	cases := []struct {
		name string
		edit func([]string) []string
		want string
	}{
		{"two distant changes", func(l []string) []string { l[2], l[14] = "LINE 3", "LINE 15"; return l },
			"~     script: (4 lines changed)\n" +
				"          @@ -1,5 +1,5 @@\n" +
				"          line 1\n          line 2\n-         line 3\n+         LINE 3\n          line 4\n          line 5\n" +
				"          @@ -13,5 +13,5 @@\n" +
				"          line 13\n          line 14\n-         line 15\n+         LINE 15\n          line 16\n          line 17\n"},
		{"line inserted", func(l []string) []string { return append(l[:10:10], append([]string{"new"}, l[10:]...)...) },
			"~     script: (1 line changed)\n" +
				"          @@ -9,4 +9,5 @@\n" +
				"          line 9\n          line 10\n+         new\n          line 11\n          line 12\n"},
		{"close changes share a hunk", func(l []string) []string { l[4], l[8] = "x", "y"; return l },
			"          @@ -3,9 +3,9 @@\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := plan.Diff(res(lines(func(l []string) []string { return l })), res(lines(tc.edit)))
			text, _ := render(d)
			assert.Contains(t, text, tc.want)
		})
	}
}

// TestPlanDiffCommand checks `go run . plan --diff` and its exit statuses.
func TestPlanDiffCommand(t *testing.T) {
	const stack = "cn-northwest-1"
	golden := filepath.Join("testdata", stack+".plan.json")
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}

	// The golden snapshot with the group launching another type first.
	b, err := os.ReadFile(golden)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	found := false
	for _, r := range doc["resources"].([]any) {
		r := r.(map[string]any)
		if r["type"] == "aws:autoscaling/group:Group" {
			lt := r["inputs"].(map[string]any)["mixedInstancesPolicy"].(map[string]any)["launchTemplate"].(map[string]any)
			lt["overrides"].([]any)[0].(map[string]any)["instanceType"] = "g5.2xlarge"
			found = true
		}
	}
	require.True(t, found, "the golden plan has an Auto Scaling group")
	modified, err := json.Marshal(doc)
	require.NoError(t, err)
	modifiedPath := write("modified.json", modified)

	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		validate func(t *testing.T, out string)
	}{
		{name: "unchanged", args: []string{"--diff", golden}, code: plan.ExitOK, stdout: "no changes."},
		{name: "unchanged markdown", args: []string{"--diff", golden, "--markdown"}, code: plan.ExitOK,
			stdout: "### Stack `cn-northwest-1`: no changes"},
		{name: "changed", args: []string{"--diff", modifiedPath}, code: plan.ExitChanged,
			stdout: "-     mixedInstancesPolicy.launchTemplate.overrides[0].instanceType: \"g5.2xlarge\"\n" +
				"+     mixedInstancesPolicy.launchTemplate.overrides[0].instanceType: \"g5.xlarge\"\n"},
		{name: "changed markdown", args: []string{"--diff", modifiedPath, "--markdown"}, code: plan.ExitChanged,
			stdout: "### Stack `cn-northwest-1`: 1 to update\n\n```diff\n"},
		{name: "changed json", args: []string{"--diff", modifiedPath, "--json"}, code: plan.ExitChanged,
			validate: func(t *testing.T, out string) {
				var got struct {
					Changed   bool
					Resources []plan.ResourceDiff
				}
				require.NoError(t, json.Unmarshal([]byte(out), &got))
				assert.True(t, got.Changed)
				require.Len(t, got.Resources, 1)
				assert.Equal(t, plan.OpUpdate, got.Resources[0].Op)
			}},
		{name: "empty baseline", args: []string{"--diff", write("empty.json", nil)}, code: plan.ExitChanged,
			stdout: "compared with an empty baseline: everything is new"},
		{name: "missing baseline", args: []string{"--diff", filepath.Join(dir, "nope.json")}, code: plan.ExitError,
			stderr: "nope.json"},
		{name: "not a plan", args: []string{"--diff", write("config.json", []byte(`{"config": {}}`))}, code: plan.ExitError,
			stderr: "not the output of `go run . plan --json`"},
		{name: "bad JSON", args: []string{"--diff", write("bad.json", []byte(`{"stack":`))}, code: plan.ExitError,
			stderr: "bad.json"},
		{name: "markdown without diff", args: []string{"--markdown"}, code: plan.ExitUsage, stderr: "exit status"},
		{name: "markdown and json", args: []string{"--diff", golden, "--markdown", "--json"}, code: plan.ExitUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"--stack", stack, "--dir", projectDir}, tc.args...)
			code := plan.Main(args, &out, &errOut)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			assert.Contains(t, out.String(), tc.stdout)
			assert.Contains(t, errOut.String(), tc.stderr)
			if tc.validate != nil {
				tc.validate(t, out.String())
			}
		})
	}
}

// TestCostChangeIsRounded guards the cost line's arithmetic against the
// plan's own rounding of the monthly figure.
func TestCostChangeIsRounded(t *testing.T) {
	p := func(hour float64) *plan.Plan {
		return &plan.Plan{Stack: "s", Resources: []plan.Resource{}, Cost: stacks.Cost{Known: true, Currency: "CNY",
			PerHour: hour, PerMonth: math.Round(hour*stacks.HoursPerMonth*100) / 100}}
	}
	d := plan.Diff(p(9.51389), p(11.46206))
	text, _ := render(d)
	assert.Contains(t, text, "~   cost: 9.51 => 11.46 CNY per hour (+1.95), 6945.14 => 8367.30 CNY per month (+1422.16)\n")
	assert.True(t, d.Changed())
}

// TestDiffNotesOnDelete: deleting a retained or protected resource does not
// do what "-" suggests, and the diff says so.
func TestDiffNotesOnDelete(t *testing.T) {
	cases := []struct {
		options []string
		notes   []string
	}{
		{nil, nil},
		{[]string{"retainOnDelete"}, []string{"retainOnDelete: Pulumi drops it from the stack but leaves it in AWS"}},
		{[]string{"protect"}, []string{"protect: `pulumi up` refuses to delete it until `pulumi state unprotect`"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.options, ","), func(t *testing.T) {
			base := &plan.Plan{Stack: "s", Resources: []plan.Resource{
				{Type: "aws:s3/bucketV2:BucketV2", Name: "b", Inputs: map[string]any{"bucketPrefix": "b-"}, Options: tc.options}}}
			d := plan.Diff(base, &plan.Plan{Stack: "s", Resources: []plan.Resource{}})
			require.Len(t, d.Resources, 1)
			assert.Equal(t, plan.OpDelete, d.Resources[0].Op)
			assert.Equal(t, tc.notes, d.Resources[0].Notes)
			text, _ := render(d)
			assert.Contains(t, text, "-     bucketPrefix: \"b-\"\n")
		})
	}
}
