package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

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
}

func newMocks(regionName string) *mocks {
	info, _ := region.Lookup(regionName) // the program reports a bad region itself
	return &mocks{region: regionName, info: info}
}

var _ pulumi.MockResourceMonitor = (*mocks)(nil)

// NewResource records a resource and returns its stand-in state.
func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
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
	}
	m.add(res)
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

// Call answers the data sources the program reads. An unknown one is an
// error, so that a new lookup cannot slip into plans unnoticed.
func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	switch args.Token {
	case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id":        m.region,
			"locations": []any{m.region + "a", m.region + "b"},
		}), nil
	case "aws:ssm/getParameter:getParameter":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": args.Args["name"].StringValue(), "name": args.Args["name"].StringValue(),
			"type": "String", "value": "ami-0123456789abcdef0", "insecureValue": "ami-0123456789abcdef0",
		}), nil
	case "aws:ec2/getVpc:getVpc":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": args.Args["id"].StringValue(), "cidrBlock": "10.0.0.0/16",
		}), nil
	}
	return nil, fmt.Errorf("offline plan: no stand-in answer for data source %s", args.Token)
}

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
	default:
		return fmt.Sprint(v)
	}
}
