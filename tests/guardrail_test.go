package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The gateway's default policy directory, relative to the project (the
// program runs there, and reads it for EKS's ConfigMap).
const policyDir = "cmd/guardrail/policies/default"

// inProject runs a test from the project root, as Pulumi runs the program.
func inProject(t *testing.T) {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(projectDir))
	t.Cleanup(func() { _ = os.Chdir(wd) })
}

func TestGuardrailOnEC2(t *testing.T) {
	p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true"))

	objects := map[string]map[string]any{}
	for _, o := range byType(p, "aws:s3/bucketObjectv2:BucketObjectv2") {
		objects[o.Inputs["key"].(string)] = o.Inputs
	}
	require.Len(t, objects, 2)
	assert.Equal(t, "file asset dist/guardrail-linux-amd64", objects["artifacts/guardrail/guardrail-linux-amd64"]["source"])
	assert.Equal(t, "file archive "+policyDir, objects["artifacts/guardrail/policy.zip"]["source"])
	assert.Equal(t, "dsr1-weights-offline", objects["artifacts/guardrail/policy.zip"]["bucket"], "in the region's own bucket")

	ud := bootScript(t, p)
	assert.Contains(t, ud, "GUARDRAIL_BINARY=s3://dsr1-weights-offline/artifacts/guardrail/guardrail-linux-amd64\n")
	assert.Contains(t, ud, "-listen 0.0.0.0:8000 -upstream http://127.0.0.1:8001 -policy /etc/deepseek-r1-cn/guardrail/policy.yaml")
	assert.Contains(t, serveLine(t, ud), "--host 127.0.0.1 --port 8001 ", "vLLM is on loopback behind the gateway")
	assert.Contains(t, ud, "systemctl enable guardrail.service")
	assert.NotContains(t, ud, "github.com", "the binary comes from S3 in the region")

	// Clients still connect on the API port, now the gateway's.
	api := byName(t, p, "aws:ec2/securityGroup:SecurityGroup", "dsr1-vllm")
	assert.EqualValues(t, 8000, api.Inputs["ingress"].([]any)[0].(map[string]any)["fromPort"])

	doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
	assert.Equal(t, []string{"arn:aws-cn:s3:::dsr1-weights-offline/artifacts/guardrail/*"}, statement(t, doc, "ReadGuardrail").Resource)
	assertNoAdminWildcards(t, p)

	t.Run("off by default", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1"))
		assert.Empty(t, byType(p, "aws:s3/bucketObjectv2:BucketObjectv2"))
		ud := bootScript(t, p)
		assert.NotContains(t, ud, "guardrail")
		assert.Contains(t, serveLine(t, ud), "--host 0.0.0.0 --port 8000 ")
	})
	t.Run("with ModelScope weights the bucket holds only the gateway", func(t *testing.T) {
		p := mustPlan(t, cfg("aws:region", "cn-northwest-1", "guardrail", "true", "weightsSource", "modelscope"))
		assert.Len(t, byType(p, "aws:s3/bucketV2:BucketV2"), 1)
		doc := parsePolicy(t, one(t, p, "aws:iam/rolePolicy:RolePolicy").Inputs["policy"])
		for _, st := range doc.Statement {
			assert.NotEqual(t, "ReadWeights", st.Sid)
		}
		assert.Equal(t, []string{"arn:aws-cn:s3:::dsr1-weights-offline/artifacts/guardrail/*"}, statement(t, doc, "ReadGuardrail").Resource)
	})
}

func TestGuardrailOnEKS(t *testing.T) {
	inProject(t)
	p := mustPlan(t, eksCfg("cn-northwest-1", "guardrail", "true"))
	spec := podSpec(k8s(t, p, "kubernetes:apps/v1:Deployment"))
	cs := spec["containers"].([]any)
	require.Len(t, cs, 3, "the gateway, vLLM and the CloudWatch agent sidecar")
	gw, vllm := cs[0].(map[string]any), cs[1].(map[string]any)
	assert.Equal(t, "guardrail", gw["name"])
	assert.Equal(t, "vllm", vllm["name"])
	assert.Equal(t, "cloudwatch-agent", cs[2].(map[string]any)["name"])
	assert.Equal(t, "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/deepseek-r1-cn/guardrail:0.1.0", gw["image"], "a fixed tag (guardrailImageTag), never latest")
	assert.Equal(t, []any{"-listen", "0.0.0.0:8000", "-upstream", "http://127.0.0.1:8001", "-policy", "/etc/guardrail/policy.yaml"}, gw["args"])
	assert.Equal(t, []any{map[string]any{"name": "http", "containerPort": 8000.0}}, gw["ports"], "the Service's target")
	sc := gw["securityContext"].(map[string]any)
	assert.Equal(t, true, sc["readOnlyRootFilesystem"])
	assert.Equal(t, true, sc["runAsNonRoot"])

	var args []string
	for _, a := range vllm["args"].([]any) {
		args = append(args, a.(string))
	}
	assert.Contains(t, strings.Join(args, " "), "--host 127.0.0.1 --port 8001 ")
	assert.Equal(t, "vllm", vllm["ports"].([]any)[0].(map[string]any)["name"])
	assert.Contains(t, vllm["startupProbe"].(map[string]any), "exec", "the kubelet cannot reach the pod's loopback")

	cm := byName(t, p, "kubernetes:core/v1:ConfigMap", "dsr1-serving-guardrail-policy").Inputs
	data := cm["data"].(map[string]any)
	want, err := os.ReadFile(filepath.Join(policyDir, "policy.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(want), data["policy.yaml"])
	assert.Contains(t, data, "blocked-words.txt", "the word lists the policy names travel with it")

	svc := k8s(t, p, "kubernetes:core/v1:Service")
	assert.Equal(t, "http", svc["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["targetPort"])
}

func TestGuardrailConfigErrors(t *testing.T) {
	inProject(t)
	for _, values := range []map[string]string{
		eksCfg("cn-northwest-1", "guardrail", "true", "guardrailPolicyDir", "no/such/dir"),
		sagemakerCfg("cn-northwest-1", "guardrail", "true", "guardrailPolicyDir", "no/such/dir"),
	} {
		err := configErr(t, values)
		assert.Contains(t, err.Error(), `deepseek-r1-cn:guardrailPolicyDir = "no/such/dir"`)
	}
}
