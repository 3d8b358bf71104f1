package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	pulumieks "github.com/pulumi/pulumi-eks/sdk/v2/go/eks"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

// planImage is a container image the plan would run, and where.
type planImage struct{ where, image string }

// planImages lists every image the plan's resources would pull: the pod
// specs of Deployments and DaemonSets, and the VPC CNI images of a
// pulumi-eks VpcCni (which its stand-in registers when useDefaultVpcCni is
// not set).
func planImages(p *plan.Plan) []planImage {
	var out []planImage
	for _, r := range p.Resources {
		switch {
		case strings.HasPrefix(r.Type, "kubernetes:apps/v1:"):
			spec := podSpec(r.Inputs)
			for _, list := range []string{"containers", "initContainers"} {
				cs, _ := spec[list].([]any)
				for _, ct := range cs {
					out = append(out, planImage{r.Name, ct.(map[string]any)["image"].(string)})
				}
			}
		case r.Type == "eks:index:VpcCni":
			for _, k := range []string{"image", "initImage", "nodeAgentImage"} {
				if img, ok := r.Inputs[k].(string); ok {
					out = append(out, planImage{r.Name + " " + k, img})
				}
			}
		}
	}
	return out
}

// kubeconfig is the program's Kubernetes provider's kubeconfig, parsed.
type kubeconfig struct {
	raw    string
	server string
	exec   map[string]any
}

func providerKubeconfig(t *testing.T, p *plan.Plan) kubeconfig {
	t.Helper()
	raw, ok := byName(t, p, "pulumi:providers:kubernetes", "dsr1-eks").Inputs["kubeconfig"].(string)
	require.True(t, ok, "the provider's kubeconfig is in the plan")
	var doc struct {
		Clusters []struct {
			Cluster map[string]any `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Exec map[string]any `json:"exec"`
			} `json:"user"`
		} `json:"users"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &doc), raw)
	require.Len(t, doc.Clusters, 1)
	require.Len(t, doc.Users, 1)
	return kubeconfig{raw: raw, server: doc.Clusters[0].Cluster["server"].(string), exec: doc.Users[0].User.Exec}
}

// assertManagedAddons checks the EKS managed add-ons of a plan: the three
// that nodes need, pinned for Kubernetes 1.33, overwriting the self-managed
// ones, CoreDNS on the system nodes and only once they exist (the
// CloudWatch Observability add-on has its own tests).
func assertManagedAddons(t *testing.T, p *plan.Plan) {
	t.Helper()
	addons := map[string]map[string]any{}
	for _, a := range byType(p, "aws:eks/addon:Addon") {
		if a.Inputs["addonName"] == eks.AddonCloudWatchObservability {
			continue
		}
		addons[a.Inputs["addonName"].(string)] = a.Inputs
		assert.Equal(t, "dsr1-eks", a.Parent)
		assert.Equal(t, "OVERWRITE", a.Inputs["resolveConflictsOnCreate"], a.Name)
		assert.Equal(t, "OVERWRITE", a.Inputs["resolveConflictsOnUpdate"], a.Name)
		assert.Equal(t, "dsr1-test", a.Inputs["clusterName"], a.Name)
	}
	require.Len(t, addons, 3)
	assert.Equal(t, "v1.20.1-eksbuild.3", addons["vpc-cni"]["addonVersion"])
	assert.Equal(t, "v1.12.4-eksbuild.1", addons["coredns"]["addonVersion"])
	assert.Equal(t, "v1.33.3-eksbuild.6", addons["kube-proxy"]["addonVersion"])
	assert.JSONEq(t, `{"nodeSelector": {"deepseek-r1-cn/node-role": "system"}}`, addons["coredns"]["configurationValues"].(string))
	for _, a := range []string{"vpc-cni", "kube-proxy"} {
		assert.NotContains(t, addons[a], "configurationValues", "%s: no image or registry override", a)
	}
}

// TestEKSAddonsFromTheRegion: the VPC CNI, CoreDNS and kube-proxy run as
// EKS managed add-ons, whose images EKS serves from its registry in the
// region, for both partitions.
func TestEKSAddonsFromTheRegion(t *testing.T) {
	for region, registry := range map[string]string{
		"cn-northwest-1": "961992271922.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
		"cn-north-1":     "918309763551.dkr.ecr.cn-north-1.amazonaws.com.cn",
		"us-east-1":      "602401143452.dkr.ecr.us-east-1.amazonaws.com",
		"ap-east-1":      "800184023465.dkr.ecr.ap-east-1.amazonaws.com",
	} {
		t.Run(region, func(t *testing.T) {
			info := regionInfo(t, region)
			assert.Equal(t, registry, eks.AddonRegistry(info))
			assert.True(t, info.IsRegionalECRImage(eks.AddonRegistry(info)+"/amazon-k8s-cni:v1.20.1"))
		})
	}

	t.Run("pinned versions can be overridden, and other Kubernetes versions get EKS's", func(t *testing.T) {
		p := mustPlan(t, eksCfg("cn-northwest-1", "eksAddonVersions", `{"coredns": "v1.12.1-eksbuild.2"}`))
		versions := map[string]any{}
		for _, a := range byType(p, "aws:eks/addon:Addon") {
			if a.Inputs["addonName"] != eks.AddonCloudWatchObservability {
				versions[a.Inputs["addonName"].(string)] = a.Inputs["addonVersion"]
			}
		}
		assert.Equal(t, map[string]any{"vpc-cni": "v1.20.1-eksbuild.3", "coredns": "v1.12.1-eksbuild.2",
			"kube-proxy": "v1.33.3-eksbuild.6"}, versions)

		p = mustPlan(t, eksCfg("cn-northwest-1", "eksKubernetesVersion", "1.34"))
		for _, a := range byType(p, "aws:eks/addon:Addon") {
			assert.NotContains(t, a.Inputs, "addonVersion", "%s: the 1.33 pins do not apply to 1.34", a.Name)
		}
	})

	t.Run("the stand-in shows pulumi-eks's own VPC CNI when useDefaultVpcCni is off", func(t *testing.T) {
		// What a plan would show if the program dropped useDefaultVpcCni:
		// the stand-in registers the VpcCni pulumi-eks would apply, with
		// its manifest's global-partition images, and the image check of
		// TestEKSPerPartition fails on them.
		resources, err := plan.RunStandins("cn-northwest-1", func(ctx *pulumi.Context) error {
			_, err := pulumieks.NewCluster(ctx, "bare", &pulumieks.ClusterArgs{Name: pulumi.String("bare")})
			return err
		})
		require.NoError(t, err)
		p := &plan.Plan{Resources: resources}
		cni := one(t, p, "eks:index:VpcCni")
		assert.Equal(t, "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.16.0", cni.Inputs["image"])
		var foreign []string
		for _, img := range planImages(p) {
			if !regionInfo(t, "cn-northwest-1").IsRegionalECRImage(img.image) {
				foreign = append(foreign, img.image)
			}
		}
		assert.Len(t, foreign, 3, "aws-node, its init container and the network policy agent")
	})
}

// TestEKSEndpointReachableByTheDeployer: the API endpoint is public for the
// configured egress networks, or private only on request; never open to
// everyone, never private by accident.
func TestEKSEndpointReachableByTheDeployer(t *testing.T) {
	for _, region := range []string{"cn-northwest-1", "us-east-1"} {
		t.Run(region, func(t *testing.T) {
			cluster := k8sCluster(t, mustPlan(t, eksCfg(region, "eksPublicAccessCidrs", `["198.51.100.0/24", "203.0.113.9/32"]`)))
			assert.Equal(t, true, cluster["endpointPublicAccess"])
			assert.Equal(t, true, cluster["endpointPrivateAccess"])
			assert.Equal(t, []any{"198.51.100.0/24", "203.0.113.9/32"}, cluster["publicAccessCidrs"])

			cluster = k8sCluster(t, mustPlan(t, eksCfg(region, "eksPublicAccessCidrs", "[]", "eksPrivateEndpointOnly", "true")))
			assert.Equal(t, false, cluster["endpointPublicAccess"], "private only when asked")
			assert.Equal(t, true, cluster["endpointPrivateAccess"])
			assert.NotContains(t, cluster, "publicAccessCidrs")
		})
	}

	cases := []struct {
		name string
		cfg  map[string]string
		want []string
	}{
		{"no egress network and no opt-in", eksCfg("cn-northwest-1", "eksPublicAccessCidrs", "[]"),
			[]string{"deepseek-r1-cn:eksPublicAccessCidrs: is empty", "https://checkip.amazonaws.com",
				"pulumi config set --path 'deepseek-r1-cn:eksPublicAccessCidrs[0]'", "deepseek-r1-cn:eksPrivateEndpointOnly"}},
		{"the whole internet", eksCfg("cn-northwest-1", "eksPublicAccessCidrs", `["0.0.0.0/0"]`),
			[]string{`deepseek-r1-cn:eksPublicAccessCidrs = "0.0.0.0/0"`, "never 0.0.0.0/0"}},
		{"half the internet", eksCfg("cn-northwest-1", "eksPublicAccessCidrs", `["0.0.0.0/1"]`),
			[]string{`deepseek-r1-cn:eksPublicAccessCidrs = "0.0.0.0/1"`, "whole internet"}},
		{"a private range", eksCfg("cn-northwest-1", "eksPublicAccessCidrs", `["10.0.0.0/8"]`),
			[]string{`deepseek-r1-cn:eksPublicAccessCidrs = "10.0.0.0/8"`, "not a public address range"}},
		{"not a CIDR", eksCfg("cn-northwest-1", "eksPublicAccessCidrs", `["my-laptop"]`),
			[]string{`deepseek-r1-cn:eksPublicAccessCidrs = "my-laptop"`, "IPv4 CIDR"}},
		{"both public networks and private only", eksCfg("cn-northwest-1", "eksPrivateEndpointOnly", "true"),
			[]string{`deepseek-r1-cn:eksPrivateEndpointOnly = "true"`, "must be empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := configErr(t, c.cfg)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestShippedEKSStackNeedsOneConfigSet: the shipped stack plans with its
// placeholder, `pulumi up` refuses the placeholder before creating
// anything, and the one documented `pulumi config set` makes it deployable.
func TestShippedEKSStackNeedsOneConfigSet(t *testing.T) {
	sc, err := plan.LoadStackConfig(projectDir, "cn-northwest-1-eks")
	require.NoError(t, err)
	var cidrs []string
	require.NoError(t, json.Unmarshal([]byte(sc.Values["deepseek-r1-cn:eksPublicAccessCidrs"]), &cidrs))
	require.Len(t, cidrs, 1, "one entry, replaced by `pulumi config set --path '...eksPublicAccessCidrs[0]'`")
	assert.True(t, eks.IsDocumentationRange(cidrs[0]), "the shipped value is a placeholder nobody sends from")

	p, err := plan.RunConfig(sc)
	require.NoError(t, err, "the shipped stack plans")
	assert.Equal(t, cidrs, toStrings(k8sCluster(t, p)["publicAccessCidrs"]))

	err = deployForReal(t, sc.Values)
	require.Error(t, err, "pulumi up refuses the placeholder")
	assert.Contains(t, err.Error(), "deepseek-r1-cn:eksPublicAccessCidrs")
	assert.Contains(t, err.Error(), "documentation addresses")

	// After `pulumi config set --path 'deepseek-r1-cn:eksPublicAccessCidrs[0]' 100.64.7.9/32`...
	// (100.64.0.0/10 is shared address space, not a documentation range,
	// and public as far as the check is concerned.)
	values := map[string]string{}
	for k, v := range sc.Values {
		values[k] = v
	}
	values["deepseek-r1-cn:eksPublicAccessCidrs"] = `["100.64.7.9/32"]`
	err = deployForReal(t, values)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "invalid stack config", "the real address passes the deploy-time check")
	assert.ErrorIs(t, err, errReachedAWS, "the program went on to ask AWS")
}

// errReachedAWS is what deployForReal's stand-in answers to the first call
// that would reach AWS.
var errReachedAWS = errors.New("reached AWS")

// deployForReal runs the program as `pulumi up` does (not a preview), with a
// stand-in that refuses to register anything or answer any call: it shows
// what the program refuses before it touches AWS.
func deployForReal(t *testing.T, values map[string]string) error {
	t.Helper()
	m := &refusingMocks{}
	err := pulumi.RunErr(stacks.Program, pulumi.WithMocks("deepseek-r1-cn", "cn-northwest-1-eks", m),
		func(info *pulumi.RunInfo) {
			info.Config = values
			info.DryRun = false
			info.MonitorAddr, info.EngineAddr = "", ""
		})
	assert.Zero(t, m.registered, "resources registered")
	if err != nil && strings.Contains(err.Error(), errReachedAWS.Error()) {
		return fmt.Errorf("%w: %v", errReachedAWS, err)
	}
	return err
}

type refusingMocks struct{ registered int }

func (m *refusingMocks) NewResource(pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.registered++
	return "", nil, errReachedAWS
}

func (m *refusingMocks) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, errReachedAWS
}

// TestEKSKubeconfigSignsInLikeTheAWSProvider: the Kubernetes provider's
// kubeconfig names the AWS provider's profile, role and region, for both
// partitions; without a profile it leaves the credential chain alone.
func TestEKSKubeconfigSignsInLikeTheAWSProvider(t *testing.T) {
	cases := []struct {
		region, endpoint string
		extra            []string
		args             []any
		env              []any
	}{
		{"cn-northwest-1", "https://OFFLINE.gr7.cn-northwest-1.eks.amazonaws.com.cn",
			[]string{"aws:profile", "china"},
			[]any{"eks", "get-token", "--cluster-name", "dsr1-test", "--region", "cn-northwest-1", "--output", "json"},
			[]any{map[string]any{"name": "AWS_PROFILE", "value": "china"}}},
		{"cn-north-1", "https://OFFLINE.gr7.cn-north-1.eks.amazonaws.com.cn",
			[]string{"aws:profile", "bj", "aws:assumeRole", `{"roleArn": "arn:aws-cn:iam::123456789012:role/deploy"}`},
			[]any{"eks", "get-token", "--cluster-name", "dsr1-test", "--region", "cn-north-1", "--output", "json",
				"--role-arn", "arn:aws-cn:iam::123456789012:role/deploy"},
			[]any{map[string]any{"name": "AWS_PROFILE", "value": "bj"}}},
		{"us-east-1", "https://OFFLINE.gr7.us-east-1.eks.amazonaws.com",
			[]string{"aws:profile", "global"},
			[]any{"eks", "get-token", "--cluster-name", "dsr1-test", "--region", "us-east-1", "--output", "json"},
			[]any{map[string]any{"name": "AWS_PROFILE", "value": "global"}}},
		{"us-east-1", "https://OFFLINE.gr7.us-east-1.eks.amazonaws.com", nil,
			[]any{"eks", "get-token", "--cluster-name", "dsr1-test", "--region", "us-east-1", "--output", "json"},
			[]any{}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v", c.region, c.extra), func(t *testing.T) {
			kc := providerKubeconfig(t, mustPlan(t, eksCfg(c.region, c.extra...)))
			assert.Equal(t, c.endpoint, kc.server, "the cluster's own endpoint")
			assert.Equal(t, "aws", kc.exec["command"])
			assert.Equal(t, c.args, kc.exec["args"])
			assert.Equal(t, c.env, kc.exec["env"])
		})
	}

	assert.Equal(t, "aws eks update-kubeconfig --region cn-northwest-1 --name dsr1-x --profile china",
		stacks.UpdateKubeconfigCommand("cn-northwest-1", "dsr1-x", eks.Deployer{Profile: "china"}))
	err := configErr(t, eksCfg("cn-northwest-1", "aws:assumeRole", "arn:aws-cn:iam::123456789012:role/deploy"))
	assert.Contains(t, err.Error(), "aws:assumeRole: must be an object")
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

func regionInfo(t *testing.T, name string) region.Info {
	t.Helper()
	info, err := region.Lookup(name)
	require.NoError(t, err)
	return info
}
