package stacks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// Namespace is the project's config namespace (the project name).
const Namespace = "deepseek-r1-cn"

// Targets are the values of deepseek-r1-cn:target.
var Targets = []string{"ec2", "sagemaker", "eks"}

// Config is the stack configuration after parsing. Every field is a key of
// Pulumi.yaml's config block, where each one is documented; defaults live
// there too, and Load repeats them for keys a stack file leaves out when the
// program runs without the CLI having merged the project defaults in.
type Config struct {
	Region string

	Target               string
	Model                string
	InstanceType         string
	MaxModelLen          int
	MinContextLength     int
	GPUMemoryUtilization float64

	VpcID                   string
	SubnetIDs               []string
	RouteTableIDs           []string
	VpcCIDR                 string
	AvailabilityZones       []string
	NATGateway              bool
	VpcEndpoints            bool
	VpcEndpointServiceNames map[string]string
	AllowedCIDRs            []string
	AllowOpenIngress        bool
	APIPort                 int

	WeightsSource      string
	WeightsBucket      string
	WeightsPrefix      string
	ModelScopeRevision string

	VLLMVersion          string
	VLLMImage            string
	PipIndexURL          string
	AptMirror            string
	VLLMAttentionBackend string

	AMIID           string
	AMISSMParameter string
	RootVolumeGiB   int
	KMSKeyARN       string

	// APIKeySet says whether deepseek-r1-cn:apiKey holds a value; the value
	// itself is read as a Pulumi secret where it is used.
	APIKeySet bool

	OfferedInstanceTypes []string
	PricePerHour         float64
	// ThroughputFactors override the expected decode throughput of a GPU
	// (relative to an A10G) in the choice of instance type.
	ThroughputFactors map[string]float64

	// EC2 (target ec2): the Auto Scaling group's fallback instance types and
	// its health check grace period.
	FallbackInstanceTypes    []string
	MaxFallbackInstanceTypes int
	HealthCheckGracePeriod   int
	LoadBalancerIdleTimeout  int

	SageMakerContainer              string
	SageMakerImage                  string
	LMIImageTag                     string
	SageMakerMinInstances           int
	SageMakerMaxInstances           int
	SageMakerInvocationsPerInstance int
	SageMakerNetworkIsolation       bool
	SageMakerInferenceAMIVersion    string

	EKSKubernetesVersion    string
	EKSPublicAccessCIDRs    []string
	EKSSystemInstanceType   string
	EKSGPUNodesMin          int
	EKSGPUNodesDesired      int
	EKSGPUNodesMax          int
	EKSReplicas             int
	EKSInternalLoadBalancer bool
	ImageRegistry           string
	DevicePluginImage       string
	AWSCLIImage             string

	// EKS (issue 9): API endpoint, managed add-ons, the guardrail image tag,
	// and the AWS identity the Kubernetes provider signs in with (read
	// from the AWS provider's own aws:profile and aws:assumeRole).
	EKSPrivateEndpointOnly bool
	EKSAddonVersions       map[string]string
	GuardrailImageTag      string
	AWSProfile             string
	AWSAssumeRoleARN       string
	// EKS observability (issue 13): the CloudWatch Observability add-on,
	// and the image of the vLLM pods' CloudWatch agent sidecar.
	EKSObservabilityAddon bool
	CloudWatchAgentImage  string

	// Observability (every target): log groups, alarms, dashboard.
	Observability              bool
	LogRetentionDays           int
	AlarmEmail                 string
	AlarmErrorRatePercent      float64
	AlarmWaitingRequests       int
	AlarmKVCachePercent        float64
	AlarmGuardrailBlockPercent float64
	CloudWatchAgentPackage     string

	Guardrail          bool
	GuardrailBinary    string
	GuardrailPolicyDir string
	GuardrailImage     string
	// GuardModel is "none" or "colocated": Qwen3Guard-Gen-0.6B served by a
	// second vLLM on the first GPU, which the gateway asks about what its
	// rules cannot judge (issue 11).
	GuardModel string
}

// ConfigError is a problem with one config key. It names the key, the value
// and what would work.
type ConfigError struct {
	Key   string
	Value string
	Msg   string
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Key, e.Msg)
	}
	return fmt.Sprintf("%s = %q: %s", e.Key, e.Value, e.Msg)
}

// configSource is how Load reads raw config values: the Pulumi context in a
// program, a map in tests.
type configSource interface {
	GetConfig(key string) (string, bool)
	IsConfigSecret(key string) bool
}

// reader reads typed values and collects every error, so that a user sees
// all that is wrong with a stack file at once.
type reader struct {
	src  configSource
	errs []error
}

func key(k string) string {
	if strings.Contains(k, ":") {
		return k
	}
	return Namespace + ":" + k
}

func (r *reader) fail(k, value, format string, a ...any) {
	r.errs = append(r.errs, &ConfigError{Key: key(k), Value: value, Msg: fmt.Sprintf(format, a...)})
}

func (r *reader) string(k, def string) string {
	if v, ok := r.src.GetConfig(key(k)); ok {
		return strings.TrimSpace(v)
	}
	return def
}

func (r *reader) int(k string, def, lo, hi int) int {
	v, ok := r.src.GetConfig(key(k))
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		r.fail(k, v, "must be a whole number")
		return def
	}
	// A default of 0 means "decide for me", and stays allowed.
	if (n != 0 || def != 0) && (n < lo || n > hi) {
		r.fail(k, v, "must be between %d and %d", lo, hi)
		return def
	}
	return n
}

func (r *reader) bool(k string, def bool) bool {
	v, ok := r.src.GetConfig(key(k))
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		r.fail(k, v, "must be true or false")
		return def
	}
	return b
}

func (r *reader) float(k string, def, lo, hi float64) float64 {
	v, ok := r.src.GetConfig(key(k))
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= lo || f > hi {
		r.fail(k, v, "must be a number greater than %g and at most %g", lo, hi)
		return def
	}
	return f
}

func (r *reader) strings(k string) []string {
	v, ok := r.src.GetConfig(key(k))
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	var out []string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		r.fail(k, v, "must be a list of strings, for example [\"a\", \"b\"]")
		return nil
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (r *reader) stringMap(k string) map[string]string {
	v, ok := r.src.GetConfig(key(k))
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		r.fail(k, v, "must be a map of strings to strings")
		return nil
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// emailPattern is a plain address: SNS e-mail subscriptions take one.
var emailPattern = regexp.MustCompile(`^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$`)

func (r *reader) floatMap(k string) map[string]float64 {
	v, ok := r.src.GetConfig(key(k))
	if !ok || strings.TrimSpace(v) == "" {
		return nil
	}
	var out map[string]float64
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		r.fail(k, v, "must be a map of names to numbers, for example {\"NVIDIA T4\": 0.4}")
		return nil
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Load reads and checks the stack config. Cross-key rules that need the
// model catalog, sizing or the region live in Resolve.
func Load(src configSource) (*Config, error) {
	r := &reader{src: src}
	c := &Config{}

	c.Region = r.string("aws:region", "")
	if c.Region == "" {
		r.fail("aws:region", "", "is not set: run `pulumi config set aws:region cn-northwest-1` (or cn-north-1)")
	}

	c.Target = r.string("target", "ec2")
	c.Model = r.string("model", "deepseek-r1-distill-qwen-7b")
	c.InstanceType = r.string("instanceType", "")
	c.MaxModelLen = r.int("maxModelLen", 0, 1024, 1<<20)
	c.MinContextLength = r.int("minContextLength", 8192, 1024, 1<<20)
	c.GPUMemoryUtilization = r.float("gpuMemoryUtilization", 0.90, 0, 0.95)

	c.VpcID = r.string("vpcId", "")
	c.SubnetIDs = r.strings("subnetIds")
	c.RouteTableIDs = r.strings("routeTableIds")
	c.VpcCIDR = r.string("vpcCidr", "10.0.0.0/16")
	c.AvailabilityZones = r.strings("availabilityZones")
	c.NATGateway = r.bool("natGateway", true)
	c.VpcEndpoints = r.bool("vpcEndpoints", true)
	c.VpcEndpointServiceNames = r.stringMap("vpcEndpointServiceNames")
	c.AllowedCIDRs = r.strings("allowedCidrs")
	c.AllowOpenIngress = r.bool("allowOpenIngress", false)
	c.APIPort = r.int("apiPort", 8000, 1024, 65535)

	c.WeightsSource = r.string("weightsSource", "s3")
	c.WeightsBucket = r.string("weightsBucket", "")
	c.WeightsPrefix = r.string("weightsPrefix", "")
	c.ModelScopeRevision = r.string("modelscopeRevision", "master")

	c.VLLMVersion = r.string("vllmVersion", "0.11.0")
	c.VLLMImage = r.string("vllmImage", "")
	c.PipIndexURL = r.string("pipIndexUrl", "")
	c.AptMirror = r.string("aptMirror", "")
	c.VLLMAttentionBackend = r.string("vllmAttentionBackend", "")

	c.AMIID = r.string("amiId", "")
	c.AMISSMParameter = r.string("amiSsmParameter", "")
	c.RootVolumeGiB = r.int("rootVolumeGb", 0, 30, 16384)
	c.KMSKeyARN = r.string("kmsKeyArn", "")

	if v, ok := src.GetConfig(key("apiKey")); ok && v != "" {
		c.APIKeySet = true
		if !src.IsConfigSecret(key("apiKey")) {
			// Say nothing of the value: it is the key.
			r.fail("apiKey", "", "is stored in plain text: set it again with "+
				"`pulumi config set --secret deepseek-r1-cn:apiKey <key>`, or remove it to have one generated")
		}
	}

	c.OfferedInstanceTypes = r.strings("offeredInstanceTypes")
	c.PricePerHour = r.float("pricePerHour", 0, 0, 1e6)
	c.ThroughputFactors = r.floatMap("throughputFactors")

	c.FallbackInstanceTypes = r.strings("fallbackInstanceTypes")
	c.MaxFallbackInstanceTypes = r.int("maxFallbackInstanceTypes", 2, 0, 4)
	c.HealthCheckGracePeriod = r.int("healthCheckGracePeriod", 0, 600, 14400)
	c.LoadBalancerIdleTimeout = r.int("loadBalancerIdleTimeout", 3600, 0, 6000)

	c.SageMakerContainer = r.string("sagemakerContainer", "custom")
	c.SageMakerImage = r.string("sagemakerImage", "")
	c.LMIImageTag = r.string("lmiImageTag", "0.33.0-lmi15.0.0-cu128")
	c.SageMakerMinInstances = r.int("sagemakerMinInstances", 1, 1, 100)
	c.SageMakerMaxInstances = r.int("sagemakerMaxInstances", 1, 1, 100)
	c.SageMakerInvocationsPerInstance = r.int("sagemakerInvocationsPerInstance", 10, 1, 100000)
	c.SageMakerNetworkIsolation = r.bool("sagemakerNetworkIsolation", true)
	c.SageMakerInferenceAMIVersion = r.string("sagemakerInferenceAmiVersion", InferenceAMIAuto)

	c.EKSKubernetesVersion = r.string("eksKubernetesVersion", "1.33")
	c.EKSPublicAccessCIDRs = r.strings("eksPublicAccessCidrs")
	c.EKSSystemInstanceType = r.string("eksSystemInstanceType", "m5.large")
	c.EKSGPUNodesMin = r.int("eksGpuNodesMin", 1, 0, 100)
	c.EKSGPUNodesDesired = r.int("eksGpuNodesDesired", 1, 0, 100)
	c.EKSGPUNodesMax = r.int("eksGpuNodesMax", 1, 1, 100)
	c.EKSReplicas = r.int("eksReplicas", 1, 1, 100)
	c.EKSInternalLoadBalancer = r.bool("eksInternalLoadBalancer", false)
	c.ImageRegistry = r.string("imageRegistry", "")
	c.DevicePluginImage = r.string("devicePluginImage", "")
	c.AWSCLIImage = r.string("awsCliImage", "")

	// EKS (issue 9).
	c.EKSPrivateEndpointOnly = r.bool("eksPrivateEndpointOnly", false)
	c.EKSAddonVersions = r.stringMap("eksAddonVersions")
	// "" is resolved by checkLocalEKS: it depends on guardModel.
	c.GuardrailImageTag = r.string("guardrailImageTag", "")
	c.AWSProfile = r.string("aws:profile", "")
	c.AWSAssumeRoleARN = r.assumeRoleARN()
	c.EKSObservabilityAddon = r.bool("eksObservabilityAddon", true)
	c.CloudWatchAgentImage = r.string("cloudwatchAgentImage", "")

	c.Observability = r.bool("observability", true)
	c.LogRetentionDays = r.int("logRetentionDays", 30, 1, 3653)
	c.AlarmEmail = r.string("alarmEmail", "")
	c.AlarmErrorRatePercent = r.float("alarmErrorRatePercent", 5, 0, 100)
	c.AlarmWaitingRequests = r.int("alarmWaitingRequests", 10, 1, 100000)
	c.AlarmKVCachePercent = r.float("alarmKvCachePercent", 95, 0, 100)
	c.AlarmGuardrailBlockPercent = r.float("alarmGuardrailBlockPercent", 20, 0, 100)
	c.CloudWatchAgentPackage = r.string("cloudwatchAgentPackage", "")

	c.Guardrail = r.bool("guardrail", false)
	c.GuardrailBinary = r.string("guardrailBinary", "dist/guardrail-linux-amd64")
	c.GuardrailPolicyDir = r.string("guardrailPolicyDir", "cmd/guardrail/policies/default")
	c.GuardrailImage = r.string("guardrailImage", "")
	c.GuardModel = r.string("guardModel", GuardModelNone)

	checkLocal(r, c)
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	return c, nil
}

// Values of deepseek-r1-cn:guardModel.
const (
	GuardModelNone      = "none"
	GuardModelColocated = "colocated"
)

// checkGuardModel: the guard model is asked by the gateway, so it needs one,
// and it needs a server that can start a second vLLM beside the first.
func checkGuardModel(r *reader, c *Config) {
	switch c.GuardModel {
	case GuardModelNone:
	case GuardModelColocated:
		if !c.Guardrail {
			r.fail("guardModel", c.GuardModel, "needs the guardrail gateway, which is what asks the guard model: set guardrail to true")
		}
		if c.Target == "sagemaker" && c.SageMakerContainer == ContainerLMI {
			r.fail("guardModel", c.GuardModel, "needs sagemakerContainer custom: the LMI container serves one model and has no guardrail")
		}
		if c.GPUMemoryUtilization > sizing.MaxColocatedUtilization {
			r.fail("gpuMemoryUtilization", strconv.FormatFloat(c.GPUMemoryUtilization, 'f', -1, 64), "must be at most %.2f with guardModel "+
				"colocated: the two models' shares add up to it, and the rest of the GPU holds both CUDA contexts and the model's CUDA graphs",
				sizing.MaxColocatedUtilization)
		}
	default:
		r.fail("guardModel", c.GuardModel, "must be %s, or %s (Qwen3Guard-Gen-0.6B served beside the model on its first GPU, "+
			"its weights staged under <weightsPrefix>%s; see README)", GuardModelNone, GuardModelColocated, weights.GuardModelDir)
	}
}

// checkLocal holds the rules that need nothing but the config itself.
func checkLocal(r *reader, c *Config) {
	switch c.Target {
	case "ec2", "sagemaker", "eks":
	default:
		r.fail("target", c.Target, "must be one of %s", strings.Join(Targets, ", "))
	}

	if c.VpcID != "" && len(c.SubnetIDs) == 0 {
		r.fail("subnetIds", "", "is empty: with vpcId = %q, list the private subnets to use", c.VpcID)
	}
	if c.VpcID == "" && len(c.SubnetIDs) > 0 {
		r.fail("vpcId", "", "is empty but subnetIds is set: set vpcId to the VPC of those subnets, or remove subnetIds to create a VPC")
	}
	if c.VpcID == "" && len(c.RouteTableIDs) > 0 {
		r.fail("routeTableIds", strings.Join(c.RouteTableIDs, ","), "only applies with an existing vpcId")
	}
	if c.VpcID == "" {
		if p, err := netip.ParsePrefix(c.VpcCIDR); err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 22 {
			r.fail("vpcCidr", c.VpcCIDR, "must be an IPv4 CIDR from /16 to /22, such as 10.0.0.0/16")
		}
	}
	if len(c.AvailabilityZones) > 3 {
		r.fail("availabilityZones", strings.Join(c.AvailabilityZones, ","), "at most 3 zones")
	}
	if n := len(c.AvailabilityZones); n > 0 && n < minZones {
		r.fail("availabilityZones", strings.Join(c.AvailabilityZones, ","), "lists %d zone; list at least %d "+
			"(EKS and SageMaker need subnets in two zones, and the EC2 server falls back to the second when "+
			"the first has no GPU capacity), or leave it empty to have the zones that offer the instance type looked up", n, minZones)
	}
	if c.VpcID != "" && len(c.SubnetIDs) == 1 && (c.Target == "eks" || c.Target == "sagemaker") {
		r.fail("subnetIds", strings.Join(c.SubnetIDs, ","), "lists one subnet; the %s target needs private subnets "+
			"in at least %d availability zones", c.Target, minZones)
	}

	for _, cidr := range c.AllowedCIDRs {
		p, err := netip.ParsePrefix(cidr)
		switch {
		case err != nil:
			r.fail("allowedCidrs", cidr, "is not a CIDR such as 10.20.0.0/16")
		case p.Bits() == 0 && !c.AllowOpenIngress:
			r.fail("allowedCidrs", cidr, "opens the API to the whole internet; list your client networks, "+
				"or set deepseek-r1-cn:allowOpenIngress to true if you really mean it")
		case !p.Addr().Is4():
			r.fail("allowedCidrs", cidr, "IPv6 is not supported: the VPC is IPv4-only")
		}
	}

	switch c.WeightsSource {
	case "s3":
	case "modelscope":
		if c.WeightsBucket != "" || c.WeightsPrefix != "" {
			r.fail("weightsSource", c.WeightsSource, "downloads from ModelScope, so weightsBucket and weightsPrefix must be empty")
		}
		if c.Target != "ec2" {
			r.fail("weightsSource", c.WeightsSource, "works with the ec2 target only; %s loads weights from S3: "+
				"stage them there (weightsSource: s3, see README)", c.Target)
		} else if c.VpcID == "" && !c.NATGateway {
			r.fail("weightsSource", c.WeightsSource, "needs internet egress to modelscope.cn: set natGateway to true, or stage the weights in S3 (weightsSource: s3)")
		}
	default:
		r.fail("weightsSource", c.WeightsSource, "must be s3 (weights staged in a bucket in the region) or modelscope (downloaded at boot)")
	}
	if c.WeightsPrefix != "" && !strings.HasSuffix(c.WeightsPrefix, "/") {
		r.fail("weightsPrefix", c.WeightsPrefix, "must end in \"/\", such as models/deepseek-r1-distill-qwen-7b/")
	}

	if c.Target == "ec2" && c.VLLMImage == "" && c.VpcID == "" && !c.NATGateway {
		r.fail("natGateway", "false", "leaves no way to pip-install vLLM: set natGateway to true, or set "+
			"vllmImage to a vLLM image you mirrored into ECR in the region")
	}
	if !(c.EKSGPUNodesMin <= c.EKSGPUNodesDesired && c.EKSGPUNodesDesired <= c.EKSGPUNodesMax) {
		r.fail("eksGpuNodesDesired", strconv.Itoa(c.EKSGPUNodesDesired), "must lie between eksGpuNodesMin (%d) and eksGpuNodesMax (%d)",
			c.EKSGPUNodesMin, c.EKSGPUNodesMax)
	}
	checkLocalEKS(r, c)
	if c.Guardrail && c.APIPort == 8001 {
		r.fail("apiPort", "8001", "is where vLLM listens behind the guardrail; choose another port")
	}
	checkGuardModel(r, c)
	if c.SageMakerMaxInstances < c.SageMakerMinInstances {
		r.fail("sagemakerMaxInstances", strconv.Itoa(c.SageMakerMaxInstances), "is below sagemakerMinInstances (%d)", c.SageMakerMinInstances)
	}
	if !observability.RetentionDaysValid(c.LogRetentionDays) {
		r.fail("logRetentionDays", strconv.Itoa(c.LogRetentionDays), "must be a retention CloudWatch Logs offers: "+
			"1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653")
	}
	if e := c.AlarmEmail; e != "" && !emailPattern.MatchString(e) {
		r.fail("alarmEmail", e, "must be one e-mail address, such as oncall@example.com")
	}
	if n := c.LoadBalancerIdleTimeout; n != 0 && n < 60 {
		r.fail("loadBalancerIdleTimeout", strconv.Itoa(n), "must be 0 (AWS's 350 s) or between 60 and 6000 seconds")
	}
	if c.AptMirror != "" && !strings.HasPrefix(c.AptMirror, "http://") && !strings.HasPrefix(c.AptMirror, "https://") {
		r.fail("aptMirror", c.AptMirror, "must be an http(s) URL of an Ubuntu archive, such as http://mirrors.aliyun.com/ubuntu/")
	}
	if err := vllm.CheckAttentionBackend(c.VLLMAttentionBackend); err != nil {
		r.fail("vllmAttentionBackend", c.VLLMAttentionBackend, "%v", err)
	}
	if err := sizing.ThroughputFactors(c.ThroughputFactors).Validate(); err != nil {
		r.fail("throughputFactors", fmt.Sprint(c.ThroughputFactors), "%v (GPU names: %s)", err, strings.Join(sizing.GPUNames(), ", "))
	}
	if len(c.FallbackInstanceTypes) > 0 && c.Target != "ec2" {
		r.fail("fallbackInstanceTypes", strings.Join(c.FallbackInstanceTypes, ","), "applies to the ec2 target only")
	}
	if c.PipIndexURL != "" && !strings.HasPrefix(c.PipIndexURL, "https://") {
		r.fail("pipIndexUrl", c.PipIndexURL, "must be an https:// URL, such as https://mirrors.aliyun.com/pypi/simple/")
	}
	if c.AMIID != "" && !strings.HasPrefix(c.AMIID, "ami-") {
		r.fail("amiId", c.AMIID, "must be an AMI id such as ami-0123456789abcdef0")
	}
	if c.AMIID != "" && c.AMISSMParameter != "" {
		r.fail("amiSsmParameter", c.AMISSMParameter, "conflicts with amiId: set one of them")
	}
	if c.AMISSMParameter != "" && !strings.HasPrefix(c.AMISSMParameter, "/") {
		r.fail("amiSsmParameter", c.AMISSMParameter, "must be an SSM parameter path such as "+
			"/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id")
	}
}
