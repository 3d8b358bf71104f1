package eks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"

	awseks "github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// The cluster add-ons every node needs. They run as EKS managed add-ons,
// whose images EKS serves from its own registry in the cluster's region
// (AddonRegistry), never from the global partition: pulumi-eks v2.8.1's
// own VPC CNI manifest pulls from 602401143452.dkr.ecr.us-west-2.amazonaws.com
// (nodejs/eks/cni/aws-k8s-cni.yaml), which a node in China cannot reach
// (pulumi-eks #386, #588; aws-cdk #28420), so the cluster sets
// useDefaultVpcCni and these add-ons take over from the self-managed ones
// EKS installs at cluster creation.
const (
	AddonVPCCNI    = "vpc-cni"
	AddonCoreDNS   = "coredns"
	AddonKubeProxy = "kube-proxy"
)

// Addons lists the managed add-ons in the order they are created.
var Addons = []string{AddonVPCCNI, AddonKubeProxy, AddonCoreDNS}

// AddonKubernetesVersion is the Kubernetes version DefaultAddonVersions
// are pinned for; other versions get the version EKS picks as the default
// for them, unless eksAddonVersions pins one.
const AddonKubernetesVersion = "1.33"

// DefaultAddonVersions are add-on versions published for Kubernetes 1.33
// in the Amazon EKS user guide's version tables
// (awsdocs/amazon-eks-user-guide latest/ug/networking/managing-vpc-cni.adoc,
// managing-coredns.adoc and managing-kube-proxy.adoc; the same tables on
// docs.amazonaws.cn list these or newer builds). Whether each build is
// published in the China regions is UNCONFIRMED: list them with
// `aws eks describe-addon-versions --kubernetes-version 1.33 --addon-name
// <name> --region cn-northwest-1` and override with
// deepseek-r1-cn:eksAddonVersions.
var DefaultAddonVersions = map[string]string{
	AddonVPCCNI:    "v1.20.1-eksbuild.3",
	AddonCoreDNS:   "v1.12.4-eksbuild.1",
	AddonKubeProxy: "v1.33.3-eksbuild.6",
}

// AddonVersionPattern is the form of an EKS add-on version
// (major.minor.patch-eksbuild.build, managing-vpc-cni.adoc).
var AddonVersionPattern = regexp.MustCompile(`^v\d+\.\d+\.\d+-eksbuild\.\d+$`)

// AddonResolveConflicts is how an add-on treats fields changed outside
// Pulumi, on create (taking over the self-managed add-on EKS installed)
// and on update: the program's settings win. terraform-aws-modules/eks
// main.tf does the same (resolve_conflicts_on_update OVERWRITE, and on
// create OVERWRITE while EKS bootstraps the self-managed add-ons, which
// pulumi-eks v2.8.1 leaves on).
const AddonResolveConflicts = "OVERWRITE"

// addonRegistryAccounts are the accounts of the EKS add-on registries that
// are not 602401143452, by region (awsdocs/amazon-eks-user-guide
// latest/ug/workloads/add-ons-images.adoc). The China accounts are the
// ones ../shared/reference/aws-cn.md records.
var addonRegistryAccounts = map[string]string{
	"cn-north-1":     "918309763551",
	"cn-northwest-1": "961992271922",
	"af-south-1":     "877085696533",
	"ap-east-1":      "800184023465",
	"ap-south-2":     "900889452093",
	"ap-southeast-3": "296578399912",
	"ap-southeast-4": "491585149902",
	"ca-west-1":      "761377655185",
	"eu-central-2":   "900612956339",
	"eu-south-1":     "590381155156",
	"eu-south-2":     "455263428931",
	"il-central-1":   "066635153087",
	"me-south-1":     "558608220178",
	"me-central-1":   "759879836304",
}

// AddonRegistry is the registry the nodes pull the EKS add-on images from,
// in the region itself (through the ecr.dkr endpoint of a private VPC).
func AddonRegistry(r region.Info) string {
	account, ok := addonRegistryAccounts[r.Name]
	if !ok {
		account = "602401143452"
	}
	return r.ECRRegistry(account)
}

// AddonVersions resolves the version of each add-on: the configured one,
// else the pinned default for AddonKubernetesVersion, else "" (EKS picks).
func AddonVersions(kubernetesVersion string, configured map[string]string) map[string]string {
	out := map[string]string{}
	for _, a := range Addons {
		switch {
		case configured[a] != "":
			out[a] = configured[a]
		case kubernetesVersion == AddonKubernetesVersion:
			out[a] = DefaultAddonVersions[a]
		}
	}
	return out
}

// validateAddonVersions refuses unknown add-on names and malformed versions.
func validateAddonVersions(versions map[string]string) error {
	names := make([]string, 0, len(versions))
	for n := range versions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		known := false
		for _, a := range KnownAddons {
			known = known || a == n
		}
		if !known {
			return fmt.Errorf("unknown add-on %q: the managed add-ons are %v", n, KnownAddons)
		}
		if v := versions[n]; v != "" && !AddonVersionPattern.MatchString(v) {
			return fmt.Errorf("add-on %s version %q is not of the form v1.20.1-eksbuild.3", n, v)
		}
	}
	return nil
}

// coreDNSConfiguration keeps CoreDNS on the system nodes. The GPU nodes'
// taint already keeps it off them; the selector also keeps it off any
// untainted node added later. nodeSelector is a field of the coredns
// add-on's configuration schema (`aws eks describe-addon-configuration
// --addon-name coredns`), like the podDisruptionBudget example of
// managing-coredns.adoc.
func coreDNSConfiguration(systemLabel map[string]string) (string, error) {
	b, err := json.Marshal(map[string]any{"nodeSelector": systemLabel})
	if err != nil {
		return "", fmt.Errorf("coredns configuration: %w", err)
	}
	return string(b), nil
}

// addon creates one EKS managed add-on.
func addon(ctx *pulumi.Context, name, addonName, version, configuration string, clusterName pulumi.StringInput,
	opts ...pulumi.ResourceOption,
) (*awseks.Addon, error) {
	args := &awseks.AddonArgs{
		ClusterName:              clusterName,
		AddonName:                pulumi.String(addonName),
		ResolveConflictsOnCreate: pulumi.String(AddonResolveConflicts),
		ResolveConflictsOnUpdate: pulumi.String(AddonResolveConflicts),
	}
	if version != "" {
		args.AddonVersion = pulumi.String(version)
	}
	if configuration != "" {
		args.ConfigurationValues = pulumi.String(configuration)
	}
	a, err := awseks.NewAddon(ctx, name+"-"+addonName, args, opts...)
	if err != nil {
		return nil, fmt.Errorf("add-on %s: %w", addonName, err)
	}
	return a, nil
}
