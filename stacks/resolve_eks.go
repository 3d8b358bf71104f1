package stacks

import (
	"fmt"
	"math"
	"regexp"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/k8sserving"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
)

// EKSSettings is what the EKS target decides beyond sizing.
type EKSSettings struct {
	VLLM vllm.Version
	// Images, resolved against ImageRegistry when not set; the registry is
	// the account's own ECR in the region unless configured, so it is only
	// known at deploy time: "" here means "<account registry>/<Default...>".
	VLLMImage, DevicePluginImage, AWSCLIImage, GuardrailImage string
	// CloudWatchAgentImage is the metrics sidecar's image, "" without
	// observability.
	CloudWatchAgentImage string
	// ObservabilityAddon says whether the CloudWatch Observability add-on
	// runs (observability and eksObservabilityAddon).
	ObservabilityAddon bool
	// GPUsPerReplica is tensor x pipeline parallelism; ReplicasPerNode how
	// many replicas share one GPU node.
	GPUsPerReplica  int
	ReplicasPerNode int
	// StartupSeconds bounds copying and loading the weights.
	StartupSeconds int
	// WeightsDiskGiB is the pod-local volume for the weights; NodeDiskGiB the
	// GPU nodes' root volume, which holds it and the images.
	WeightsDiskGiB int
	NodeDiskGiB    int
	// Pod sizes the containers of a vLLM pod from the GPU node's CPU and
	// memory; AddonVersions are the managed add-ons' versions ("" lets EKS
	// pick).
	Pod           k8sserving.PodResources
	AddonVersions map[string]string
}

// Default image repositories, mirrored into ECR (see README): Docker Hub,
// nvcr.io and public.ecr.aws are not reachable from private subnets in China.
const (
	DefaultDevicePluginRepo = "nvidia/k8s-device-plugin:v0.17.1"
	DefaultAWSCLIRepo       = "amazon/aws-cli:2.22.0"
	// DefaultGuardrailRepo is the image you build from cmd/guardrail, and
	// DefaultGuardrailImageTag the tag you push it with (guardrailImageTag):
	// a fixed tag, never latest, so that every node runs the same gateway
	// and a new build is rolled out by changing the tag.
	DefaultGuardrailRepo     = "deepseek-r1-cn/guardrail"
	DefaultGuardrailImageTag = "0.1.0"
	// GuardGatewayImageTag is the default with guardModel colocated: a
	// gateway built before it has no -guard-max-chars and would not start,
	// so the tag that names it must be another one.
	GuardGatewayImageTag = "0.2.0"
	defaultVLLMRepo      = "vllm/vllm-openai"
	// DefaultCloudWatchAgentRepo is the CloudWatch agent's image, mirrored
	// from public.ecr.aws/cloudwatch-agent/cloudwatch-agent: the tag the
	// Amazon CloudWatch Observability chart 6.4.0 runs
	// (aws-observability/helm-charts values.yaml agent.image), so that the
	// sidecar and the add-on's agent are the same build.
	DefaultCloudWatchAgentRepo = "cloudwatch-agent/cloudwatch-agent:1.300070.0b1586"
)

var k8sVersionPattern = regexp.MustCompile(`^1\.\d{2}$`)

// checkEKS holds the EKS rules that need only the config and the region.
func checkEKS(c *Config, reg region.Info) []error {
	var errs []error
	if _, err := vllm.ParseVersion(c.VLLMVersion); err != nil {
		errs = append(errs, &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion,
			Msg: "must be a vLLM release such as 0.11.0"})
	}
	if !k8sVersionPattern.MatchString(c.EKSKubernetesVersion) {
		errs = append(errs, &ConfigError{Key: key("eksKubernetesVersion"), Value: c.EKSKubernetesVersion,
			Msg: "must be a Kubernetes minor version such as 1.33"})
	}
	if c.ImageRegistry != "" && !reg.IsRegionalECRImage(c.ImageRegistry+"/x") {
		errs = append(errs, &ConfigError{Key: key("imageRegistry"), Value: c.ImageRegistry, Msg: fmt.Sprintf(
			"must be a private ECR registry of %s, such as %s", reg.Name, reg.ECRRegistry("123456789012"))})
	}
	for k, img := range map[string]string{"vllmImage": c.VLLMImage, "devicePluginImage": c.DevicePluginImage,
		"awsCliImage": c.AWSCLIImage, "guardrailImage": c.GuardrailImage, "cloudwatchAgentImage": c.CloudWatchAgentImage} {
		if img != "" && !reg.IsRegionalECRImage(img) {
			errs = append(errs, &ConfigError{Key: key(k), Value: img, Msg: fmt.Sprintf(
				"must be an image in a private ECR registry of %s (%s/<repository>:<tag>): mirror it into ECR first (see README)",
				reg.Name, reg.ECRRegistry("<account>"))})
		}
	}
	return errs
}

// resolveEKS checks that the replicas fit the GPU nodes and sizes disks and
// start-up time to the weights.
func resolveEKS(d *Deployment) error {
	c := d.Config
	s := &EKSSettings{VLLMImage: c.VLLMImage, DevicePluginImage: c.DevicePluginImage, AWSCLIImage: c.AWSCLIImage,
		GuardrailImage: c.GuardrailImage}
	d.EKS = s
	s.VLLM, _ = vllm.ParseVersion(c.VLLMVersion) // checkEKS refused a version that does not parse
	if err := s.VLLM.CheckGPU(d.Instance.GPU); err != nil {
		return &ConfigError{Key: key("vllmVersion"), Value: c.VLLMVersion, Msg: fmt.Sprintf("on %s: %v", d.Instance.Name, err)}
	}
	server := vllm.Server{Decision: d.Decision, Version: s.VLLM, AttentionBackend: c.VLLMAttentionBackend}
	if note := server.AttentionNote(); note != "" {
		d.Decision.Notes = append(d.Decision.Notes, note)
	}
	// V100 (p3) nodes are allowed: the AL2023 NVIDIA AMI builds both of
	// NVIDIA's kernel modules and loads the proprietary one when a GPU is
	// missing from the open module's supported-devices list, as Volta is
	// (awslabs/amazon-eks-ami templates/al2023/runtime/gpu/nvidia-kmod-load.sh,
	// devices-support-open; it also loads the proprietary one on g4dn and g5).
	// Its default driver branch is 580 (templates/al2023/variables-default.json),
	// which NVIDIA says is the last to support Volta (UNCONFIRMED here).
	s.GPUsPerReplica = d.Decision.TensorParallel * d.Decision.PipelineParallel
	s.ReplicasPerNode = d.Instance.GPUs / s.GPUsPerReplica
	// No autoscaler runs in the cluster: the replicas must fit the nodes the
	// group starts with (eksGpuNodesDesired), not the ones it may grow to;
	// a replica beyond them stays Pending until someone scales the group.
	if need := (c.EKSReplicas + s.ReplicasPerNode - 1) / s.ReplicasPerNode; need > c.EKSGPUNodesDesired {
		return &ConfigError{Key: key("eksReplicas"), Value: fmt.Sprint(c.EKSReplicas), Msg: fmt.Sprintf(
			"needs %d GPU nodes (%d replica(s) of %d GPUs fit one %s), more than eksGpuNodesDesired (%d): "+
				"raise eksGpuNodesDesired (and eksGpuNodesMax) or lower eksReplicas; no cluster autoscaler adds nodes",
			need, s.ReplicasPerNode, s.GPUsPerReplica, d.Instance.Name, c.EKSGPUNodesDesired)}
	}
	s.ObservabilityAddon = c.Observability && c.EKSObservabilityAddon
	opts := k8sserving.PodOptions{Guardrail: c.Guardrail, MetricsAgent: c.Observability, GuardModel: d.Decision.Colocated != nil}
	if s.ObservabilityAddon {
		opts.NodeDaemonSets = eks.ObservabilityGPUNodeRequests
	}
	pod, err := k8sserving.SizePod(d.Instance.VCPUs, d.Instance.MemoryGiB, s.ReplicasPerNode, opts)
	if err != nil {
		return &ConfigError{Key: key("instanceType"), Value: d.Instance.Name, Msg: "is too small for a vLLM pod: " + err.Error()}
	}
	s.Pod = pod
	s.AddonVersions = eks.AddonVersions(c.EKSKubernetesVersion, c.EKSAddonVersions)
	if s.VLLMImage == "" {
		s.VLLMImage = defaultVLLMRepo + ":v" + s.VLLM.String()
	}
	if s.DevicePluginImage == "" {
		s.DevicePluginImage = DefaultDevicePluginRepo
	}
	if s.AWSCLIImage == "" {
		s.AWSCLIImage = DefaultAWSCLIRepo
	}
	if s.GuardrailImage == "" {
		s.GuardrailImage = DefaultGuardrailRepo + ":" + c.GuardrailImageTag
	}
	if c.Observability {
		s.CloudWatchAgentImage = c.CloudWatchAgentImage
		if s.CloudWatchAgentImage == "" {
			s.CloudWatchAgentImage = DefaultCloudWatchAgentRepo
		}
	}
	w := d.Decision.WeightsGiB
	s.StartupSeconds = 600 + int(w*20)
	if d.Decision.Colocated != nil {
		s.StartupSeconds += k8sserving.GuardStartupSeconds
	}
	s.WeightsDiskGiB = int(math.Ceil(w*1.1/10))*10 + 10
	s.NodeDiskGiB = 100 + s.WeightsDiskGiB*s.ReplicasPerNode
	return nil
}
