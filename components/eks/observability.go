package eks

import (
	"encoding/json"
	"fmt"

	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/k8sserving"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// AddonCloudWatchObservability is the Amazon CloudWatch Observability EKS
// add-on: the CloudWatch agent (Container Insights with enhanced
// observability, GPU metrics from its DCGM exporter) and Fluent Bit
// (container, data plane and host logs). Read in aws-observability/
// helm-charts, charts/amazon-cloudwatch-observability at the tag
// amazon-cloudwatch-observability-6.4.0 (f4ad2e3), the chart EKS installs
// as the add-on.
//
// Its images: as an EKS add-on, EKS installs the chart with the region set,
// and the chart picks each image's registry by region from values.yaml's
// repositoryDomainMap: in cn-north-1 and cn-northwest-1 the agent, the
// operator, the target allocator and the DCGM exporter come from
// 934860584483.dkr.ecr.<region>.amazonaws.com.cn, Fluent Bit
// (aws-for-fluent-bit) from 128054284489.dkr.ecr.<region>.amazonaws.com.cn,
// kube-state-metrics and node-exporter (OTel Container Insights only) from
// EKS's own 961992271922/918309763551; elsewhere public.ecr.aws and
// nvcr.io (templates/_helpers.tpl cloudwatch-agent.image, dcgm-exporter.image,
// fluent-bit.image). Nothing here is mirrored: the nodes pull them through the
// ecr.dkr endpoint with the node role's ECR read access.
//
// That EKS offers the add-on in the China regions is UNCONFIRMED: the
// CloudWatch user guide on docs.amazonaws.cn describes it, but no region
// table was read. The program asks EKS at preview (aws.eks.getAddonVersion),
// so that a region without it fails before anything is created.
const AddonCloudWatchObservability = "amazon-cloudwatch-observability"

// KnownAddons are the add-ons deepseek-r1-cn:eksAddonVersions may pin.
var KnownAddons = append(append([]string(nil), Addons...), AddonCloudWatchObservability)

// The add-on's Kubernetes identity: the chart's agent and Fluent Bit run
// under the service account cloudwatch-agent (templates/_helpers.tpl
// cloudwatch-agent.serviceAccountName; linux/fluent-bit-daemonset.yaml) in
// the add-on's namespace amazon-cloudwatch, the names the EKS user guide
// gives for its IRSA role (awsdocs/amazon-eks-user-guide latest/ug/
// workloads/eks-add-ons.adoc, amazon-cloudwatch-observability: `eksctl create
// iamserviceaccount --name cloudwatch-agent --namespace amazon-cloudwatch`).
const (
	ObservabilityNamespace      = "amazon-cloudwatch"
	ObservabilityServiceAccount = "cloudwatch-agent"
)

// ObservabilityPolicy is the AWS managed policy the add-on's role gets,
// attached by the partition's ARN: the one the EKS user guide and the
// CloudWatch user guide name. A least-privilege inline policy would have to
// follow every call of the agent, Fluent Bit and the operator across
// add-on versions (log groups it may create, EC2 tags and volumes it
// describes); the managed policy is kept in step by AWS. The guide's
// second policy, AWSXrayWriteOnlyAccess, is for Application Signals traces,
// which nothing here sends (the chart turns automatic monitoring off in
// the China regions: _helpers.tpl manager.monitorAllServices), so it is
// not attached.
const ObservabilityPolicy = "CloudWatchAgentServerPolicy"

// ObservabilityGPUNodeRequests are the requests of the add-on's DaemonSet
// pods on one GPU node: the CloudWatch agent 250m/128Mi, Fluent Bit
// 50m/25Mi and the DCGM exporter 250m/128Mi (values.yaml agent.resources,
// containerLogs.fluentBit.resources and dcgmExporter.resources, the same
// from 4.5.0 to 6.4.0; the DCGM exporter's node affinity lists the GPU
// instance types, g4dn, g5 and p3 among them). They run as
// system-node-critical, above vLLM, so the vLLM pod is sized to leave them
// room (k8sserving.PodOptions.NodeDaemonSets).
var ObservabilityGPUNodeRequests = k8sserving.Resources{MilliCPU: 550, MemoryMiB: 281}

// ObservabilityAddon configures the add-on.
type ObservabilityAddon struct {
	// Version pins the add-on; "" lets EKS install its default version for
	// the cluster's Kubernetes version.
	Version string
	// DependsOn are the log groups the add-on writes, which the program
	// creates first with their retention and key.
	DependsOn []pulumi.Resource
}

// Toleration is a Kubernetes toleration as the chart's values take it.
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator"`
	Effect   string `json:"effect,omitempty"`
}

// ObservabilityConfiguration is the add-on's configuration values. Both
// are the chart's defaults, set so that a later version that changed them
// cannot quietly drop the GPU nodes or the logs:
//   - tolerations: the root tolerations, which every component uses unless
//     it has its own (_helpers.tpl amazon-cloudwatch-observability.common.
//     tolerations); the default `- operator: Exists` tolerates every taint,
//     nvidia.com/gpu included, so the agent, Fluent Bit and the DCGM
//     exporter run on the GPU nodes. The operator has its own empty list
//     (manager.tolerations: []) and stays off them.
//   - containerLogs.enabled: Fluent Bit ships the containers' output.
//
// The DCGM exporter is on by default (dcgmExporter.enabled: true since
// 4.5.0, always installed before), and so are the agent's GPU metrics
// (accelerated_compute_metrics defaults to true in the agent); neither key
// is set, so that the configuration suits older versions a region may
// still offer. That EKS's configuration schema for the add-on accepts these
// keys is UNCONFIRMED (`aws eks describe-addon-configuration --addon-name
// amazon-cloudwatch-observability --addon-version <v>`).
func ObservabilityConfiguration() (string, error) {
	b, err := json.Marshal(map[string]any{
		"tolerations":   []Toleration{{Operator: "Exists"}},
		"containerLogs": map[string]any{"enabled": true},
	})
	if err != nil {
		return "", fmt.Errorf("%s configuration: %w", AddonCloudWatchObservability, err)
	}
	return string(b), nil
}

// observabilityAddon creates the add-on's IRSA role and the add-on. It
// waits for the node groups (the operator needs a node, and EKS reports the
// add-on ACTIVE only once its pods run) and for the log groups.
func observabilityAddon(ctx *pulumi.Context, name string, r region.Info, o *ObservabilityAddon, clusterName pulumi.StringInput,
	oidcARN, oidcURL pulumi.StringOutput, nodes []pulumi.Resource, parent pulumi.ResourceOption,
) (*awseks.Addon, error) {
	trust := pulumi.All(oidcARN, oidcURL).ApplyT(func(v []any) string {
		return k8sserving.IRSATrust(r, v[0].(string), v[1].(string), ObservabilityNamespace, ObservabilityServiceAccount).JSON()
	}).(pulumi.StringOutput)
	role, err := iam.NewRole(ctx, name+"-cloudwatch-observability", &iam.RoleArgs{
		Description:      pulumi.String("Amazon CloudWatch Observability add-on (IRSA): CloudWatch agent and Fluent Bit"),
		AssumeRolePolicy: trust,
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("%s role: %w", AddonCloudWatchObservability, err)
	}
	attach, err := iam.NewRolePolicyAttachment(ctx, name+"-cloudwatch-observability-"+ObservabilityPolicy, &iam.RolePolicyAttachmentArgs{
		Role: role.Name, PolicyArn: pulumi.String(r.ManagedPolicyARN(ObservabilityPolicy)),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("%s role: %w", AddonCloudWatchObservability, err)
	}
	configuration, err := ObservabilityConfiguration()
	if err != nil {
		return nil, err
	}
	deps := append(append(append([]pulumi.Resource(nil), nodes...), attach), o.DependsOn...)
	args := &awseks.AddonArgs{
		ClusterName:              clusterName,
		AddonName:                pulumi.String(AddonCloudWatchObservability),
		ResolveConflictsOnCreate: pulumi.String(AddonResolveConflicts),
		ResolveConflictsOnUpdate: pulumi.String(AddonResolveConflicts),
		ServiceAccountRoleArn:    role.Arn,
		ConfigurationValues:      pulumi.String(configuration),
	}
	if o.Version != "" {
		args.AddonVersion = pulumi.String(o.Version)
	}
	a, err := awseks.NewAddon(ctx, name+"-"+AddonCloudWatchObservability, args, parent, pulumi.DependsOn(deps))
	if err != nil {
		return nil, fmt.Errorf("add-on %s: %w", AddonCloudWatchObservability, err)
	}
	return a, nil
}
