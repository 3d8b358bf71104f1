package stacks

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	awsec2 "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/apikey"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/ec2"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/network"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// deployEC2 stands up the EC2 alternative: network, weights bucket, API key
// and the vLLM instance.
func deployEC2(ctx *pulumi.Context, d *Deployment) error {
	c := d.Config
	if err := checkGuardrailBuilt(ctx, c); err != nil {
		return err
	}
	ami, err := resolveAMI(ctx, d)
	if err != nil {
		return err
	}
	obs, err := ec2Telemetry(ctx, d)
	if err != nil {
		return err
	}
	services := []string{"ssm", "ssmmessages", "ec2messages", "secretsmanager"}
	if obs != nil {
		// The agent's logs and GPU metrics stay inside the VPC.
		services = append(services, "logs", "monitoring")
	}
	net, err := newNetwork(ctx, d, services)
	if err != nil {
		return err
	}

	// A bucket holds S3 weights and the guardrail's binary and policy.
	var bucket pulumi.StringInput
	var store *weights.Store
	if c.WeightsSource == "s3" || c.Guardrail {
		prefix := d.WeightsPrefix
		if prefix == "" {
			prefix = "models/" // ModelScope weights: the bucket only holds artifacts
		}
		store, err = newWeightsStore(ctx, d, prefix)
		if err != nil {
			return err
		}
		bucket = store.BucketName
		if c.WeightsSource == "s3" {
			exportWeights(ctx, d, store)
		}
	}

	key, err := newAPIKey(ctx, d)
	if err != nil {
		return err
	}

	allowed := net.VpcCIDR.ApplyT(func(vpc string) []string {
		if len(c.AllowedCIDRs) > 0 {
			return c.AllowedCIDRs
		}
		return []string{vpc}
	}).(pulumi.StringArrayOutput)

	host, port := "0.0.0.0", c.APIPort
	health := "/health" // vLLM's, answered without the API key
	var gw *vllm.Guardrail
	var uploads []pulumi.Resource
	if c.Guardrail {
		artifacts, err := guardrail.New(ctx, baseName+"-guardrail", &guardrail.Args{
			Region: d.Region, Bucket: store.BucketName, BinaryPath: c.GuardrailBinary,
			PolicyDir: c.GuardrailPolicyDir, KMSKeyARN: c.KMSKeyARN,
		})
		if err != nil {
			return err
		}
		uploads = append(uploads, artifacts)
		host, port = "127.0.0.1", vllmBehindGuardrailPort
		health = guardrailHealthPath
		gw = &vllm.Guardrail{
			Listen:   fmt.Sprintf("0.0.0.0:%d", c.APIPort),
			Upstream: fmt.Sprintf("http://127.0.0.1:%d", vllmBehindGuardrailPort),
		}
	}
	var groups *observability.LogGroups
	var agent []iamdoc.Statement
	if obs != nil {
		if groups, err = newLogGroups(ctx, d, obs.groups); err != nil {
			return err
		}
		uploads = append(uploads, groups)
		agent = obs.statements
	}
	var types []ec2.LaunchType
	for _, dec := range ec2Decisions(d) {
		it, _ := sizing.LookupInstanceType(dec.InstanceType)
		boot := vllm.Boot{
			Region: d.Region.Name,
			Server: vllm.Server{
				ServedModelName:  d.Model.Key,
				Host:             host,
				Port:             port,
				Decision:         dec,
				Version:          d.EC2.VLLM,
				AttentionBackend: c.VLLMAttentionBackend,
			},
			Install:     vllm.Install{PipIndexURL: d.EC2.PipIndexURL, Image: c.VLLMImage, AptMirror: d.EC2.AptMirror},
			LocalNVMeGB: it.LocalNVMeGB,
		}
		if obs != nil {
			boot.Telemetry = &vllm.Telemetry{Stack: ctx.Stack(), AgentPackageS3URI: obs.agentPackage}
		}
		if c.WeightsSource == "modelscope" {
			boot.Weights = vllm.Weights{ModelScopeID: d.Model.ModelScopeID, ModelScopeRevision: c.ModelScopeRevision}
		}
		if dec.Colocated != nil {
			// The S3 URI is filled in with the bucket's name (components/ec2).
			boot.Guard = &vllm.GuardModel{Decision: *dec.Colocated, Port: guardModelPort, MaxChars: sizing.GuardMaxChars}
			if c.WeightsSource == "modelscope" {
				boot.Guard.Weights = vllm.Weights{ModelScopeID: sizing.GuardModel.ModelScopeID, ModelScopeRevision: guardModelScopeRevision}
			}
		}
		types = append(types, ec2.LaunchType{InstanceType: dec.InstanceType, Boot: boot})
	}
	server, err := ec2.New(ctx, baseName+"-vllm", &ec2.Args{
		Region:                  d.Region,
		Types:                   types,
		AMIID:                   ami.id,
		RootDeviceName:          ami.rootDevice,
		KeepAMI:                 c.AMIID == "",
		VpcID:                   net.VpcID,
		SubnetIDs:               net.PrivateSubnetIDs,
		VpcCIDR:                 net.VpcCIDR,
		AllowedCIDRs:            allowed,
		APIPort:                 c.APIPort,
		HealthCheckPath:         health,
		HealthCheckGraceSeconds: d.EC2.HealthCheckGraceSeconds,
		IdleTimeoutSeconds:      c.LoadBalancerIdleTimeout,
		RootVolumeGiB:           d.EC2.RootVolumeGiB,
		KMSKeyARN:               c.KMSKeyARN,
		WeightsBucket:           bucket,
		WeightsPrefix:           d.WeightsPrefix,
		APIKeySecretARN:         key.SecretARN,
		Guardrail:               gw,
		DependsOn:               uploads,
		ExtraStatements:         agent,
	})
	if err != nil {
		return err
	}
	if obs != nil {
		if err := ec2Observability(ctx, d, server, groups); err != nil {
			return err
		}
	}

	r := d.Region.Name
	asg := server.AutoScalingGroupName
	// The instance changes when the group replaces it: commands that need
	// it ask the group for the one in service.
	instanceID := pulumi.Sprintf("aws autoscaling describe-auto-scaling-groups --region %s --auto-scaling-group-names %s "+
		"--query 'AutoScalingGroups[0].Instances[?LifecycleState==`InService`]|[0].InstanceId' --output text", r, asg)
	instance := pulumi.Sprintf("$(%s)", instanceID)
	if c.Guardrail {
		d.export(ctx, "guardrailRestartCommand", pulumi.Sprintf("aws ssm send-command --region %s "+
			"--targets Key=tag:aws:autoscaling:groupName,Values=%s --document-name AWS-RunShellScript "+
			"--parameters 'commands=[\"systemctl restart guardrail\"]'", r, asg))
	}
	d.export(ctx, "endpointUrl", server.EndpointURL)
	d.export(ctx, "loadBalancerDnsName", server.LoadBalancerDNSName)
	d.export(ctx, "autoScalingGroupName", asg)
	d.export(ctx, "instanceIdCommand", instanceID)
	d.export(ctx, "apiKeySecretArn", key.SecretARN)
	d.export(ctx, "apiKey", key.Value)
	d.export(ctx, "apiKeyCommand", pulumi.Sprintf(
		"aws secretsmanager get-secret-value --region %s --secret-id %s --query SecretString --output text", r, key.SecretARN))
	d.export(ctx, "ssmShellCommand", pulumi.Sprintf("aws ssm start-session --region %s --target %s", r, instance))
	// Forward to the instance's own port: through the load balancer the
	// instance would be calling itself, which a load balancer that keeps
	// client addresses does not route.
	d.export(ctx, "ssmPortForwardCommand", pulumi.Sprintf(
		"aws ssm start-session --region %s --target %s --document-name AWS-StartPortForwardingSession "+
			"--parameters '{\"portNumber\":[\"%d\"],\"localPortNumber\":[\"%d\"]}'", r, instance, c.APIPort, c.APIPort))
	d.export(ctx, "curlExample", pulumi.String(CurlExample(fmt.Sprintf("http://localhost:%d/v1", c.APIPort), d.Model.Key)))
	return nil
}

// ec2Obs is what the EC2 target needs for its telemetry, decided before
// anything is registered.
type ec2Obs struct {
	groups       []telemetry.LogGroup
	statements   []iamdoc.Statement
	agentPackage string
}

// ec2Telemetry decides the log groups and the agent's permissions; nil when
// observability is off.
func ec2Telemetry(ctx *pulumi.Context, d *Deployment) (*ec2Obs, error) {
	c := d.Config
	if !c.Observability {
		return nil, nil
	}
	stack := ctx.Stack()
	// Build the alarms and dashboard now: a metric they name that the
	// catalog does not have is a program error, reported before anything
	// is registered.
	if _, err := ec2ObservabilityArgs(d, stack); err != nil {
		return nil, err
	}
	account, err := accountID(ctx, d)
	if err != nil {
		return nil, err
	}
	o := &ec2Obs{agentPackage: c.CloudWatchAgentPackage}
	if o.agentPackage == "" {
		o.agentPackage = telemetry.DefaultAgentPackage(d.Region.Name)
	}
	if o.groups, err = telemetry.EC2LogGroups(stack, c.Guardrail); err != nil {
		return nil, err
	}
	if o.statements, err = telemetry.AgentStatements(d.Region, account, stack, o.agentPackage); err != nil {
		return nil, &ConfigError{Key: key("cloudwatchAgentPackage"), Value: o.agentPackage, Msg: err.Error()}
	}
	return o, nil
}

// ec2Decisions is the sizing of every instance type the group may launch,
// in priority order.
func ec2Decisions(d *Deployment) []sizing.Decision {
	out := []sizing.Decision{d.Decision}
	for _, f := range d.EC2.Fallbacks {
		out = append(out, f.Decision)
	}
	return out
}

// guardrailHealthPath is the gateway's health check that also asks vLLM, so
// that the load balancer sees the server as healthy only when both are; a
// path without a query string, as a target group's health check takes.
const guardrailHealthPath = "/readyz"

// guardModelPort is where the colocated guard model's vLLM listens, on
// loopback.
const guardModelPort = 8002

// guardModelScopeRevision is the guard model's ModelScope revision when the
// weights come from ModelScope (weightsSource modelscope).
const guardModelScopeRevision = "master"

// vllmBehindGuardrailPort is where vLLM listens, on loopback, when the
// guardrail gateway takes the API port.
const vllmBehindGuardrailPort = 8001

// checkGuardrailBuilt fails early, with the command that fixes it, when the
// gateway binary has not been built. Offline plans and tests only name the
// file: the engine reads it at deploy time.
func checkGuardrailBuilt(ctx *pulumi.Context, c *Config) error {
	if !c.Guardrail || ctx.RunningWithMocks() {
		return nil
	}
	if _, err := os.Stat(c.GuardrailBinary); err != nil {
		return &ConfigError{Key: key("guardrailBinary"), Value: c.GuardrailBinary, Msg: "is not built: run " +
			"`CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o " + c.GuardrailBinary + " ./cmd/guardrail` first"}
	}
	if c.GuardModel == GuardModelColocated {
		if err := CheckGatewayBinary(c.GuardrailBinary); err != nil {
			return &ConfigError{Key: key("guardrailBinary"), Value: c.GuardrailBinary, Msg: err.Error()}
		}
	}
	if _, err := os.Stat(filepath.Join(c.GuardrailPolicyDir, guardrail.PolicyFile)); err != nil {
		return &ConfigError{Key: key("guardrailPolicyDir"), Value: c.GuardrailPolicyDir,
			Msg: "has no " + guardrail.PolicyFile + ": point it at a directory holding the policy and its word lists"}
	}
	return nil
}

// guardGatewayFlags are the gateway flags the guard model's instance passes
// (vllm.Boot.GatewayArgs) that older builds lack; a gateway that does not
// know a flag exits at start, and the instance would never serve.
var guardGatewayFlags = []string{"guard-max-chars", "guard-api-key-file", "guard-endpoint"}

// CheckGatewayBinary says whether a built gateway knows the guard model's
// flags. A Go binary holds its flag names as string constants, so reading
// it answers without running it (it is built for Linux; the deployer's
// machine may not be).
func CheckGatewayBinary(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot be read: %w", err)
	}
	for _, f := range guardGatewayFlags {
		if !bytes.Contains(b, []byte(f)) {
			return fmt.Errorf("was built before the guard model's flags (it has no -%s): rebuild it with "+
				"`CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o %s ./cmd/guardrail`", f, path)
		}
	}
	return nil
}

// amiInfo is the AMI the server launches and its root device.
type amiInfo struct{ id, rootDevice string }

// resolveAMI is the pinned AMI, or the one the AMI parameter names today,
// with its root device name (the launch templates resize that device; a
// wrong name would add a second volume and leave the root at the AMI's
// size). Both are asked before anything is registered, so that a region
// without the Deep Learning AMI fails the preview with advice, not halfway
// through.
func resolveAMI(ctx *pulumi.Context, d *Deployment) (amiInfo, error) {
	id := d.Config.AMIID
	if id == "" {
		param, err := ssm.LookupParameter(ctx, &ssm.LookupParameterArgs{Name: d.EC2.AMIParameter})
		if err != nil {
			return amiInfo{}, fmt.Errorf("resolve the AMI from SSM parameter %s (where it is not published, set %s "+
				"to an Ubuntu 22.04 AMI with the NVIDIA driver, or %s to another parameter): %w",
				d.EC2.AMIParameter, key("amiId"), key("amiSsmParameter"), err)
		}
		id = param.Value
	}
	img, err := awsec2.LookupAmi(ctx, &awsec2.LookupAmiArgs{
		Filters:           []awsec2.GetAmiFilter{{Name: "image-id", Values: []string{id}}},
		IncludeDeprecated: pulumi.BoolRef(true),
		MostRecent:        pulumi.BoolRef(true),
	})
	if err != nil {
		return amiInfo{}, fmt.Errorf("look up AMI %s in %s (set %s to an AMI this account can launch there): %w",
			id, d.Region.Name, key("amiId"), err)
	}
	if img.RootDeviceName == "" {
		return amiInfo{}, fmt.Errorf("AMI %s reports no root device name", id)
	}
	return amiInfo{id: id, rootDevice: img.RootDeviceName}, nil
}

// newNetwork creates the VPC, or adopts the configured one. The zones of a
// new VPC are those that offer the instance type, so that the instance can
// launch in the first private subnet.
func newNetwork(ctx *pulumi.Context, d *Deployment, services []string) (*network.Network, error) {
	c := d.Config
	args := &network.Args{
		Region:               d.Region,
		CIDR:                 c.VpcCIDR,
		NATGateway:           c.NATGateway,
		VpcID:                c.VpcID,
		SubnetIDs:            c.SubnetIDs,
		RouteTableIDs:        c.RouteTableIDs,
		Endpoints:            c.VpcEndpoints,
		EndpointServiceNames: c.VpcEndpointServiceNames,
	}
	if c.VLLMImage != "" {
		services = append(services, "ecr.api", "ecr.dkr")
	}
	args.InterfaceEndpoints = services
	if c.VpcID != "" {
		vpc, err := awsec2.LookupVpc(ctx, &awsec2.LookupVpcArgs{Id: &c.VpcID})
		if err != nil {
			return nil, fmt.Errorf("look up %s = %q: %w", key("vpcId"), c.VpcID, err)
		}
		args.VpcCIDR = vpc.CidrBlock
	} else {
		zones, err := zonesFor(ctx, d)
		if err != nil {
			return nil, err
		}
		args.AvailabilityZones = zones
	}
	return network.New(ctx, baseName, args)
}

// newAPIKey keeps the configured API key (a Pulumi secret) or generates one.
func newAPIKey(ctx *pulumi.Context, d *Deployment) (*apikey.APIKey, error) {
	var value pulumi.StringInput
	if d.Config.APIKeySet {
		value = config.GetSecret(ctx, key("apiKey"))
	}
	return apikey.New(ctx, baseName+"-api-key", &apikey.Args{
		Value:       value,
		KMSKeyARN:   d.Config.KMSKeyARN,
		Description: fmt.Sprintf("API key of the vLLM server for %s (deepseek-r1-cn)", d.Model.Key),
	})
}

// StageWeightsCommands is how to copy the weights from ModelScope into the
// bucket, run from any machine in China with the AWS CLI configured.
//
// With a colocated guard model, its weights go under the model's prefix
// (weights.GuardModelDir), which every target reads them from.
func StageWeightsCommands(d *Deployment, uri string) string {
	dir := "./" + d.Model.Key
	cmds := []string{
		"pip install -i " + d.Region.DefaultPipIndex() + " modelscope",
		fmt.Sprintf("modelscope download --model %s --local_dir %s", d.Model.ModelScopeID, dir),
		fmt.Sprintf("aws s3 sync %s %s --region %s --exclude '.*' --exclude '*/.*'", dir, uri, d.Region.Name),
	}
	if d.Decision.Colocated != nil {
		g := "./" + sizing.GuardModel.Key
		cmds = append(cmds,
			fmt.Sprintf("modelscope download --model %s --local_dir %s", sizing.GuardModel.ModelScopeID, g),
			fmt.Sprintf("aws s3 sync %s %s%s --region %s --exclude '.*' --exclude '*/.*'", g, uri, weights.GuardModelDir, d.Region.Name))
	}
	return strings.Join(cmds, " && ")
}

// CurlExample is a chat request against an OpenAI-compatible endpoint, with
// the API key taken from the environment rather than pasted.
func CurlExample(baseURL, model string) string {
	return fmt.Sprintf(`curl -s %s/chat/completions -H "Authorization: Bearer $API_KEY" `+
		`-H "Content-Type: application/json" -d '{"model": "%s", "messages": `+
		`[{"role": "user", "content": "9.11 and 9.8, which is greater?"}], "max_tokens": 2048, "temperature": 0.6}'`,
		baseURL, model)
}
