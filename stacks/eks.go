package stacks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/k8sserving"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

// deployEKS stands up the EKS alternative: network, weights bucket, API key,
// the cluster with its node groups, and vLLM on it.
func deployEKS(ctx *pulumi.Context, d *Deployment) error {
	c := d.Config
	s := d.EKS
	if err := checkEndpointDeployable(ctx, c); err != nil {
		return err
	}
	registry, err := imageRegistry(ctx, d)
	if err != nil {
		return err
	}
	tel, err := checkEKSTelemetry(ctx, d)
	if err != nil {
		return err
	}
	clusterName := fmt.Sprintf("%s-%s", baseName, ctx.Stack())
	if c.Observability {
		// The alarms and dashboard are built now, so that a metric the
		// catalog lacks fails before anything is registered.
		if _, err := eksObservabilityArgs(d, ctx.Stack(), clusterName); err != nil {
			return err
		}
	}
	images := k8sserving.Images{
		VLLM:         inRegistry(registry, s.VLLMImage),
		DevicePlugin: inRegistry(registry, s.DevicePluginImage),
		AWSCLI:       inRegistry(registry, s.AWSCLIImage),
	}
	host, port := "0.0.0.0", c.APIPort
	var gw *k8sserving.Guardrail
	if c.Guardrail {
		policy, err := readPolicyDir(c.GuardrailPolicyDir)
		if err != nil {
			return err
		}
		host, port = "127.0.0.1", vllmBehindGuardrailPort
		gw = &k8sserving.Guardrail{Image: inRegistry(registry, s.GuardrailImage), Policy: policy}
	}
	// Nodes reach EC2 (VPC CNI), ECR (our images and the EKS add-on
	// registry of the region), STS (IRSA) and CloudWatch Logs privately.
	net, err := newNetwork(ctx, d, []string{"ec2", "ecr.api", "ecr.dkr", "sts", "logs"})
	if err != nil {
		return err
	}
	store, err := newWeightsStore(ctx, d, d.WeightsPrefix)
	if err != nil {
		return err
	}
	key, err := newAPIKey(ctx, d)
	if err != nil {
		return err
	}

	var clusterDeps []pulumi.Resource
	var logGroups []telemetry.LogGroup
	var created map[string]*cloudwatch.LogGroup
	if c.Observability {
		var groups []telemetry.LogGroup
		created, groups, err = eksLogGroups(ctx, d, clusterName)
		if err != nil {
			return err
		}
		logGroups = groups
		clusterDeps = append(clusterDeps, created[telemetry.LogEKSControlPlane])
		if tel.Addon != nil {
			for _, k := range []string{telemetry.LogEKSApplication, telemetry.LogEKSDataplane, telemetry.LogEKSHost, telemetry.LogEKSPerformance} {
				tel.Addon.DependsOn = append(tel.Addon.DependsOn, created[k])
			}
		}
	}
	deployer := eks.Deployer{Profile: c.AWSProfile, RoleARN: c.AWSAssumeRoleARN}
	cluster, err := eks.New(ctx, baseName+"-eks", &eks.Args{
		Region:            d.Region,
		Name:              clusterName,
		KubernetesVersion: c.EKSKubernetesVersion,
		VpcID:             net.VpcID,
		SubnetIDs:         net.PrivateSubnetIDs,
		Endpoint:          eks.Endpoint{PublicAccessCIDRs: c.EKSPublicAccessCIDRs, PrivateOnly: c.EKSPrivateEndpointOnly},
		KMSKeyARN:         c.KMSKeyARN,
		System:            eks.NodeGroup{InstanceType: c.EKSSystemInstanceType, Min: 1, Desired: 2, Max: 3, DiskGiB: 50},
		GPU: eks.NodeGroup{InstanceType: d.Decision.InstanceType, Min: c.EKSGPUNodesMin,
			Desired: c.EKSGPUNodesDesired, Max: c.EKSGPUNodesMax, DiskGiB: s.NodeDiskGiB},
		AddonVersions:    s.AddonVersions,
		Observability:    tel.Addon,
		ClusterDependsOn: clusterDeps,
		Deployer:         deployer,
	})
	if err != nil {
		return err
	}

	allowed := net.VpcCIDR.ApplyT(func(vpc string) []string {
		if len(c.AllowedCIDRs) > 0 {
			return c.AllowedCIDRs
		}
		return []string{vpc}
	}).(pulumi.StringArrayOutput)
	var sidecar *k8sserving.MetricsAgent
	if c.Observability {
		sidecar = &k8sserving.MetricsAgent{Image: inRegistry(registry, s.CloudWatchAgentImage), Stack: ctx.Stack(),
			Cluster: clusterName, Account: tel.Account}
	}
	serving, err := k8sserving.New(ctx, baseName+"-serving", &k8sserving.Args{
		Region: d.Region,
		Server: vllm.Server{
			ServedModelName:  d.Model.Key,
			Host:             host,
			Port:             port,
			Decision:         d.Decision,
			Version:          s.VLLM,
			AttentionBackend: c.VLLMAttentionBackend,
		},
		Images:                images,
		GPUTaint:              eks.GPUTaint,
		GPUNodeSelector:       map[string]string{eks.NodeRoleLabel: "gpu"},
		WeightsBucket:         store.BucketName,
		WeightsPrefix:         d.WeightsPrefix,
		OIDCProviderARN:       cluster.OIDCProviderARN,
		OIDCProviderURL:       cluster.OIDCProviderURL,
		KMSKeyARN:             c.KMSKeyARN,
		APIKey:                key.Value,
		Replicas:              c.EKSReplicas,
		InternalLoadBalancer:  c.EKSInternalLoadBalancer,
		AllowedCIDRs:          allowed,
		LoadBalancerSubnetIDs: net.PrivateSubnetIDs,
		Resources:             s.Pod,
		StartupSeconds:        s.StartupSeconds,
		WeightsDiskGiB:        s.WeightsDiskGiB,
		Guardrail:             gw,
		Guard:                 eksGuard(d),
		MetricsAgent:          sidecar,
		ServicePort:           c.APIPort,
	}, pulumi.Providers(cluster.Provider))
	if err != nil {
		return err
	}

	r := d.Region.Name
	exportWeights(ctx, d, store)
	d.export(ctx, "clusterName", cluster.ClusterName)
	d.export(ctx, "kubeconfig", cluster.Kubeconfig)
	d.export(ctx, "addonImageRegistry", pulumi.String(cluster.AddonRegistry))
	d.export(ctx, "rolloutStatusCommand", pulumi.String("kubectl -n "+k8sserving.Namespace+" rollout status deploy/vllm --timeout 60m"))
	exported := map[string]string{"vllm": images.VLLM, "devicePlugin": images.DevicePlugin, "awsCli": images.AWSCLI}
	if gw != nil {
		exported["guardrail"] = gw.Image
	}
	if sidecar != nil {
		exported["cloudwatchAgent"] = sidecar.Image
	}
	d.export(ctx, "images", pulumi.ToStringMap(exported))
	exportEKSTelemetry(ctx, d, tel, logGroups)
	d.export(ctx, "apiKeySecretArn", key.SecretARN)
	d.export(ctx, "apiKey", key.Value)
	d.export(ctx, "updateKubeconfigCommand", pulumi.String(UpdateKubeconfigCommand(r, clusterName, deployer)))
	d.export(ctx, "portForwardCommand", pulumi.Sprintf("kubectl -n %s port-forward svc/%s %d:%d",
		k8sserving.Namespace, serving.ServiceName, c.APIPort, c.APIPort))
	d.export(ctx, "curlExample", pulumi.String(CurlExample(fmt.Sprintf("http://localhost:%d/v1", c.APIPort), d.Model.Key)))
	if c.Observability {
		return eksObservability(ctx, d, clusterName, created)
	}
	return nil
}

// readPolicyDir reads the guardrail's policy directory (policy.yaml and its
// word lists) into a ConfigMap's data. The files are part of the program's
// inputs, so the plan and the golden snapshots show them.
func readPolicyDir(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, &ConfigError{Key: key("guardrailPolicyDir"), Value: dir, Msg: "cannot be read: " + err.Error()}
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, &ConfigError{Key: key("guardrailPolicyDir"), Value: dir, Msg: "cannot be read: " + err.Error()}
		}
		out[e.Name()] = string(b)
	}
	if _, ok := out[guardrail.PolicyFile]; !ok {
		return nil, &ConfigError{Key: key("guardrailPolicyDir"), Value: dir, Msg: "has no " + guardrail.PolicyFile}
	}
	return out, nil
}

// imageRegistry is the configured registry, or the account's own ECR
// registry in the region (asked of STS before anything is registered).
func imageRegistry(ctx *pulumi.Context, d *Deployment) (string, error) {
	if d.Config.ImageRegistry != "" {
		return d.Config.ImageRegistry, nil
	}
	id, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("look up the account for its ECR registry (or set %s): %w", key("imageRegistry"), err)
	}
	return d.Region.ECRRegistry(id.AccountId), nil
}

// inRegistry places a repository:tag in the registry; full image URIs
// (configured ones) are kept.
func inRegistry(registry, image string) string {
	if strings.Contains(strings.SplitN(image, "/", 2)[0], ".") {
		return image
	}
	return registry + "/" + image
}

// checkEndpointDeployable refuses, at deploy time, an API endpoint open only
// to documentation addresses (RFC 5737), such as the placeholder of the
// shipped EKS stack: nobody sends from them, and `pulumi up` would stall at
// the first Kubernetes object. A preview (and the offline plan) only warns,
// so that the shipped stack still plans; `pulumi up` stops before it
// creates anything.
func checkEndpointDeployable(ctx *pulumi.Context, c *Config) error {
	if c.EKSPrivateEndpointOnly || len(c.EKSPublicAccessCIDRs) == 0 {
		return nil
	}
	for _, cidr := range c.EKSPublicAccessCIDRs {
		if !eks.IsDocumentationRange(cidr) {
			return nil // a real network is listed
		}
	}
	err := &ConfigError{Key: key("eksPublicAccessCidrs"), Value: strings.Join(c.EKSPublicAccessCIDRs, ","),
		Msg: "lists only documentation addresses (RFC 5737), a placeholder that no machine sends from: " + egressHint}
	if ctx.DryRun() {
		return ctx.Log.Warn(err.Error()+" (`pulumi up` refuses it)", nil)
	}
	return invalid(err)
}

// UpdateKubeconfigCommand writes a kubeconfig for kubectl that signs in
// like the program's provider: the same region and, when set, profile and
// role.
func UpdateKubeconfigCommand(region, clusterName string, deployer eks.Deployer) string {
	cmd := fmt.Sprintf("aws eks update-kubeconfig --region %s --name %s", region, clusterName)
	if deployer.Profile != "" {
		cmd += " --profile " + deployer.Profile
	}
	if deployer.RoleARN != "" {
		cmd += " --role-arn " + deployer.RoleARN
	}
	return cmd
}

// eksGuard is the colocated guard model of the vLLM container, if any.
func eksGuard(d *Deployment) *vllm.GuardModel {
	if d.Decision.Colocated == nil {
		return nil
	}
	return &vllm.GuardModel{Decision: *d.Decision.Colocated, Port: guardModelPort, MaxChars: sizing.GuardMaxChars}
}
