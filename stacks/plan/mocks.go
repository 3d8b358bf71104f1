package plan

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	pulumieks "github.com/pulumi/pulumi-eks/sdk/v2/go/eks"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// mockAccount is the AWS documentation's example account id.
const mockAccount = "123456789012"

// mocks stands in for the AWS and random providers: it records what the
// program registers and answers with what the provider would compute (ids,
// ARNs, generated names), marked as stand-ins in the plan.
type mocks struct {
	recorder
	region string
	info   region.Info
	// aws answers the data sources.
	aws *Catalog
	// ctx lets stand-ins of remote components (pulumi-eks) register the
	// children a program reads back; hidden names those children, which
	// are the component's business and left out of the plan.
	ctx    *pulumi.Context
	hidden sync.Map
}

func newMocks(regionName string, aws *Catalog) *mocks {
	info, _ := region.Lookup(regionName) // the program reports a bad region itself
	return &mocks{region: regionName, info: info, aws: aws}
}

var _ pulumi.MockResourceMonitor = (*mocks)(nil)

// NewResource records a resource and returns its stand-in state.
func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	if _, internal := m.hidden.Load(args.Name); internal {
		return m.hiddenChild(args)
	}
	res := Resource{Type: args.TypeToken, Name: args.Name, Inputs: plainMap(args.Inputs)}
	if rpc := args.RegisterRPC; rpc != nil {
		res.Parent = parentName(rpc.GetParent())
		if rpc.GetRetainOnDelete() {
			res.Options = append(res.Options, "retainOnDelete")
		}
		if rpc.GetProtect() {
			res.Options = append(res.Options, "protect")
		}
		if ic := rpc.GetIgnoreChanges(); len(ic) > 0 {
			res.Options = append(res.Options, "ignoreChanges: "+strings.Join(ic, ","))
		}
		for _, dep := range rpc.GetDependencies() {
			res.Dependencies = append(res.Dependencies, parentName(dep))
		}
		sort.Strings(res.Dependencies)
	}
	if args.TypeToken == "aws:ec2/launchTemplate:LaunchTemplate" {
		if ud, ok := res.Inputs["userData"].(string); ok {
			if text, err := base64.StdEncoding.DecodeString(ud); err == nil {
				shown := "userData: sent base64-encoded, shown decoded"
				if z, err := gzip.NewReader(bytes.NewReader(text)); err == nil {
					if plain, err := io.ReadAll(z); err == nil {
						text, shown = plain, "userData: sent gzip-compressed and base64-encoded, shown decoded"
					}
				}
				res.Inputs["userData"] = string(text)
				res.Shown = append(res.Shown, shown)
			}
		}
	}
	if err := m.checkResource(args.TypeToken, res.Inputs); err != nil {
		return "", nil, fmt.Errorf("%s %s: %w", args.TypeToken, args.Name, err)
	}
	m.add(res)
	if args.TypeToken == "eks:index:Cluster" {
		return m.eksCluster(args)
	}
	if !args.Custom {
		return "", args.Inputs, nil
	}
	state := args.Inputs.Copy()
	// Stand-in ids name the type, so that "vpc-dsr1" and "natgateway-dsr1"
	// differ in a plan as they would in AWS.
	id := strings.ToLower(typeName(args.TypeToken)) + "-" + args.Name
	set := func(k string, v resource.PropertyValue) {
		if _, ok := state[resource.PropertyKey(k)]; !ok {
			state[resource.PropertyKey(k)] = v
		}
	}
	str := func(k string) string {
		if v, ok := args.Inputs[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	autoName := args.Name + "-offline"
	switch args.TypeToken {
	case "aws:s3/bucketV2:BucketV2":
		name := str("bucket")
		if name == "" {
			name = str("bucketPrefix") + "offline"
		}
		id = name
		set("bucket", resource.NewProperty(name))
		set("arn", resource.NewProperty(m.info.S3BucketARN(name)))
	case "aws:iam/role:Role":
		set("name", resource.NewProperty(autoName))
		set("arn", resource.NewProperty(m.info.ARN("iam", "", mockAccount, "role/"+autoName)))
		id = autoName
	case "aws:iam/instanceProfile:InstanceProfile":
		set("name", resource.NewProperty(autoName))
		set("arn", resource.NewProperty(m.info.ARN("iam", "", mockAccount, "instance-profile/"+autoName)))
		id = autoName
	case "aws:secretsmanager/secret:Secret":
		name := str("namePrefix") + "offline"
		id = m.info.ARN("secretsmanager", m.region, mockAccount, "secret:"+name+"-AbCdEf")
		set("name", resource.NewProperty(name))
		set("arn", resource.NewProperty(id))
	case "aws:sagemaker/model:Model", "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
		set("name", resource.NewProperty(autoName))
		id = autoName
	case "aws:sagemaker/endpoint:Endpoint":
		set("name", resource.NewProperty(autoName))
		set("arn", resource.NewProperty(m.info.ARN("sagemaker", m.region, mockAccount, "endpoint/"+autoName)))
		id = autoName
	case "aws:ec2/instance:Instance":
		set("privateIp", resource.NewProperty("10.0.0.10"))
	case "aws:ec2/launchTemplate:LaunchTemplate":
		id = "lt-" + args.Name
		set("latestVersion", resource.NewProperty(1.0))
	case "aws:autoscaling/group:Group":
		set("name", resource.NewProperty(autoName))
		id = autoName
	case "aws:cloudwatch/eventRule:EventRule":
		set("name", resource.NewProperty(autoName))
		set("arn", resource.NewProperty(m.info.ARN("events", m.region, mockAccount, "rule/"+autoName)))
		id = autoName
	case "aws:kms/key:Key":
		id = "0123abcd-0123-4567-89ab-" + fmt.Sprintf("%012x", len(args.Name))
		set("arn", resource.NewProperty(m.info.ARN("kms", m.region, mockAccount, "key/"+id)))
	case "aws:sns/topic:Topic":
		set("name", resource.NewProperty(autoName))
		set("arn", resource.NewProperty(m.info.ARN("sns", m.region, mockAccount, autoName)))
	case "aws:lb/targetGroup:TargetGroup":
		set("arnSuffix", resource.NewProperty("targetgroup/"+autoName+"/0123456789abcdef"))
	case "aws:lb/loadBalancer:LoadBalancer":
		set("arnSuffix", resource.NewProperty("net/"+autoName+"/0123456789abcdef"))
		set("dnsName", resource.NewProperty(fmt.Sprintf("internal-%s-0123456789.elb.%s.%s", autoName, m.region, m.info.DNSSuffix)))
	case "pulumi:providers:kubernetes":
		id = args.Name + "-provider-id"
	case "random:index/randomPassword:RandomPassword":
		set("result", resource.MakeSecret(resource.NewProperty("offline-stand-in-for-a-generated-key")))
	}
	set("arn", resource.NewProperty(m.info.ARN(service(args.TypeToken), m.region, mockAccount, args.Name)))
	return id, state, nil
}

// typeName is the last part of a type token (Vpc in aws:ec2/vpc:Vpc).
func typeName(token string) string {
	return token[strings.LastIndex(token, ":")+1:]
}

// service is the AWS service of a type token such as aws:ec2/vpc:Vpc.
func service(token string) string {
	parts := strings.Split(token, ":")
	if len(parts) < 2 {
		return token
	}
	mod, _, _ := strings.Cut(parts[1], "/")
	return mod
}

// Call answers the data sources the program reads, from the stand-in
// catalog, the way AWS would for that input. An unknown one is an error, so
// that a new lookup cannot slip into plans unnoticed.
func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	switch args.Token {
	case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
		return m.aws.instanceTypeOfferings(args.Args)
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		return m.aws.availabilityZones(), nil
	case "aws:ssm/getParameter:getParameter":
		name := args.Args["name"].StringValue()
		value, err := m.aws.ssmParameter(name)
		if err != nil {
			return nil, err
		}
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": name, "name": name, "type": "String", "value": value, "insecureValue": value,
		}), nil
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": mockAccount, "accountId": mockAccount, "userId": "OFFLINE",
			"arn": m.info.ARN("iam", "", mockAccount, "user/offline"),
		}), nil
	case "aws:ec2/getAmi:getAmi":
		return m.aws.ami(args.Args)
	case "aws:eks/getAddonVersion:getAddonVersion":
		return m.aws.addonVersion(args.Args)
	case "aws:ec2/getVpc:getVpc":
		id := args.Args["id"].StringValue()
		if !vpcID.MatchString(id) {
			return nil, fmt.Errorf("reading EC2 VPCs: InvalidVpcID.Malformed: Invalid id: %q", id)
		}
		return resource.NewPropertyMapFromMap(map[string]any{"id": id, "cidrBlock": "10.0.0.0/16"}), nil
	}
	return nil, fmt.Errorf("offline plan: no stand-in answer for data source %s", args.Token)
}

var vpcID = regexp.MustCompile(`^vpc-[0-9a-f]{8}([0-9a-f]{9})?$`)

// plainMap turns resource inputs into JSON-ready values. Secrets are masked,
// values unknown until apply say so.
func plainMap(pm resource.PropertyMap) map[string]any {
	out := make(map[string]any, len(pm))
	keys := make([]string, 0, len(pm))
	for k := range pm {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "__") {
			continue // engine bookkeeping such as __defaults
		}
		out[k] = plain(pm[resource.PropertyKey(k)])
	}
	return out
}

// SecretMask replaces every secret value in a plan.
const SecretMask = "[secret]"

// Unknown stands for a value only known after apply.
const Unknown = "(known after apply)"

func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return SecretMask
	case v.IsComputed():
		return Unknown
	case v.IsOutput():
		o := v.OutputValue()
		if o.Secret {
			return SecretMask
		}
		if !o.Known {
			return Unknown
		}
		return plain(o.Element)
	case v.IsNull():
		return nil
	case v.IsBool():
		return v.BoolValue()
	case v.IsNumber():
		return v.NumberValue()
	case v.IsString():
		return v.StringValue()
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]any, len(arr))
		for i, e := range arr {
			out[i] = plain(e)
		}
		return out
	case v.IsObject():
		return plainMap(v.ObjectValue())
	case v.IsResourceReference():
		return string(v.ResourceReferenceValue().URN)
	case v.IsAsset():
		// The engine reads and hashes the file at deploy time; the plan
		// names it only, so that it works before anything is built.
		return "file asset " + v.AssetValue().Path
	case v.IsArchive():
		return "file archive " + v.ArchiveValue().Path
	default:
		return fmt.Sprint(v)
	}
}

// eksCluster stands in for pulumi-eks's remote Cluster component: it answers
// the outputs the program reads, the underlying aws:eks/cluster:Cluster
// (endpoint and certificate authority, for the kubeconfig) and the OIDC
// provider that IRSA roles trust, registered as hidden children because a
// program reads them back as resources. The component's own inputs are in
// the plan as the program passed them (useDefaultVpcCni,
// authenticationMode, endpointPublicAccess, publicAccessCidrs, ...).
//
// It also registers, visibly, what pulumi-eks v2.8.1 would deploy from
// those inputs that decides where images come from: unless useDefaultVpcCni
// is true, createCore (nodejs/eks/cluster.ts) creates an eks:index:VpcCni
// that applies nodejs/eks/cni/aws-k8s-cni.yaml, whose images are in the
// us-west-2 registry of the global partition unless vpcCniOptions
// overrides them (nodejs/eks/cmd/provider/cni.ts). A plan that drops
// useDefaultVpcCni then shows those images.
func (m *mocks) eksCluster(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	issuer := fmt.Sprintf("oidc.eks.%s.%s/id/OFFLINE", m.region, m.info.DNSSuffix)
	name := args.Name + "-oidcProvider"
	m.hidden.Store(name, true)
	oidc, err := iam.NewOpenIdConnectProvider(m.ctx, name, &iam.OpenIdConnectProviderArgs{
		Url:             pulumi.String("https://" + issuer),
		ClientIdLists:   pulumi.StringArray{pulumi.String(m.info.IRSAAudience())},
		ThumbprintLists: pulumi.StringArray{pulumi.String("0000000000000000000000000000000000000000")},
	})
	if err != nil {
		return "", nil, fmt.Errorf("offline plan: stand-in OIDC provider: %w", err)
	}
	ref, err := customReference(m.ctx, oidc)
	if err != nil {
		return "", nil, err
	}

	clusterName := args.Name
	if v, ok := args.Inputs["name"]; ok && v.IsString() {
		clusterName = v.StringValue()
	}
	ecName := args.Name + "-eksCluster"
	m.hidden.Store(ecName, true)
	ec, err := awseks.NewCluster(m.ctx, ecName, &awseks.ClusterArgs{
		Name:      pulumi.String(clusterName),
		RoleArn:   pulumi.String(m.info.ARN("iam", "", mockAccount, "role/offline")),
		VpcConfig: awseks.ClusterVpcConfigArgs{SubnetIds: pulumi.StringArray{}},
	})
	if err != nil {
		return "", nil, fmt.Errorf("offline plan: stand-in EKS cluster: %w", err)
	}
	ecRef, err := customReference(m.ctx, ec)
	if err != nil {
		return "", nil, err
	}

	if v, ok := args.Inputs["useDefaultVpcCni"]; !ok || !v.IsBool() || !v.BoolValue() {
		if err := m.pulumiEKSVpcCni(args); err != nil {
			return "", nil, err
		}
	}

	state := args.Inputs.Copy()
	state["kubeconfigJson"] = resource.MakeSecret(resource.NewProperty(`{"apiVersion":"v1","kind":"Config","clusters":[]}`))
	state["eksCluster"] = ecRef
	state["core"] = resource.NewProperty(resource.PropertyMap{"oidcProvider": ref, "cluster": ecRef})
	return "", state, nil
}

// pulumiEKSManifestImages are the images of pulumi-eks v2.8.1's VPC CNI
// manifest (nodejs/eks/cni/aws-k8s-cni.yaml): aws-node, its init
// container, and the network policy agent.
var pulumiEKSManifestImages = map[string]string{
	"image":          "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.16.0",
	"initImage":      "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni-init:v1.16.0",
	"nodeAgentImage": "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon/aws-network-policy-agent:v1.0.7",
}

// pulumiEKSVpcCni registers the VpcCni pulumi-eks would create, with the
// images it would apply: the manifest's, or vpcCniOptions' overrides.
func (m *mocks) pulumiEKSVpcCni(args pulumi.MockResourceArgs) error {
	images := map[string]string{}
	for k, v := range pulumiEKSManifestImages {
		images[k] = v
	}
	if opts, ok := args.Inputs["vpcCniOptions"]; ok && opts.IsObject() {
		for k := range images {
			if v, ok := opts.ObjectValue()[resource.PropertyKey(k)]; ok && v.IsString() {
				images[k] = v.StringValue()
			}
		}
	}
	_, err := pulumieks.NewVpcCni(m.ctx, args.Name+"-vpc-cni", &pulumieks.VpcCniArgs{
		Kubeconfig:     pulumi.String("(pulumi-eks's own kubeconfig)"),
		Image:          pulumi.StringPtr(images["image"]),
		InitImage:      pulumi.StringPtr(images["initImage"]),
		NodeAgentImage: pulumi.StringPtr(images["nodeAgentImage"]),
	})
	if err != nil {
		return fmt.Errorf("offline plan: stand-in VPC CNI: %w", err)
	}
	return nil
}

// hiddenChild answers for a child a stand-in registered: the OIDC provider's
// ARN and URL as IAM reports them (the URL without its scheme), and the EKS
// cluster's endpoint and certificate authority.
func (m *mocks) hiddenChild(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	state := args.Inputs.Copy()
	switch args.TypeToken {
	case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
		url := strings.TrimPrefix(state["url"].StringValue(), "https://")
		state["url"] = resource.NewProperty(url)
		state["arn"] = resource.NewProperty(m.info.ARN("iam", "", mockAccount, "oidc-provider/"+url))
	case "aws:eks/cluster:Cluster":
		state["endpoint"] = resource.NewProperty(fmt.Sprintf("https://OFFLINE.gr7.%s.eks.%s", m.region, m.info.DNSSuffix))
		state["certificateAuthority"] = resource.NewProperty(resource.PropertyMap{
			"data": resource.NewProperty("T0ZGTElORS1TVEFORC1JTi1DQQ=="), // base64 of OFFLINE-STAND-IN-CA
		})
		state["arn"] = resource.NewProperty(m.info.ARN("eks", m.region, mockAccount, "cluster/"+state["name"].StringValue()))
	}
	return args.Name + "-id", state, nil
}

// customReference is a resource reference to a registered custom resource.
func customReference(ctx *pulumi.Context, r pulumi.CustomResource) (resource.PropertyValue, error) {
	urn, err := internals.UnsafeAwaitOutput(ctx.Context(), r.URN())
	if err != nil || !urn.Known {
		return resource.PropertyValue{}, fmt.Errorf("offline plan: await URN: %v", err)
	}
	id, err := internals.UnsafeAwaitOutput(ctx.Context(), r.ID())
	if err != nil || !id.Known {
		return resource.PropertyValue{}, fmt.Errorf("offline plan: await ID: %v", err)
	}
	return resource.MakeCustomResourceReference(resource.URN(urn.Value.(pulumi.URN)), resource.ID(id.Value.(pulumi.ID)), ""), nil
}
