package stacks

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/eks"
)

// egressHint tells how to find the address the deploying machine reaches
// AWS from. checkip.amazonaws.com answers with the caller's address; from
// inside China it is UNCONFIRMED that it is reachable, so the message also
// names the private-only opt-in and any other what-is-my-IP service.
const egressHint = "set it to the public egress address of the machine that runs `pulumi up` (a workstation or a CI " +
	"runner): `pulumi config set --path 'deepseek-r1-cn:eksPublicAccessCidrs[0]' \"$(curl -s https://checkip.amazonaws.com)/32\"` " +
	"(if that site is unreachable from your network, use any what-is-my-IP service you trust, and mind proxies: " +
	"it must be the address AWS sees); or, when Pulumi runs inside the VPC, set deepseek-r1-cn:eksPrivateEndpointOnly to true"

// checkLocalEKS holds the EKS rules that need only the config.
func checkLocalEKS(r *reader, c *Config) {
	for _, cidr := range c.EKSPublicAccessCIDRs {
		if err := eks.CheckPublicAccessCIDR(cidr); err != nil {
			r.fail("eksPublicAccessCidrs", cidr, "must be the public egress networks that may reach the Kubernetes API, "+
				"such as 203.0.113.10/32 (never 0.0.0.0/0): %v", err)
		}
	}
	if c.EKSPrivateEndpointOnly && len(c.EKSPublicAccessCIDRs) > 0 {
		r.fail("eksPrivateEndpointOnly", "true", "keeps the Kubernetes API private, so eksPublicAccessCidrs (%s) must be empty",
			strings.Join(c.EKSPublicAccessCIDRs, ", "))
	}
	if c.Target != "eks" {
		return
	}
	// The API endpoint must be reachable by the machine that runs `pulumi
	// up`: pulumi-eks and the program's Kubernetes objects are created
	// from it, outside the VPC that the same update creates.
	if !c.EKSPrivateEndpointOnly && len(c.EKSPublicAccessCIDRs) == 0 {
		r.fail("eksPublicAccessCidrs", "", "is empty, so nothing outside the VPC can reach the Kubernetes API, and "+
			"`pulumi up` creates the cluster's Kubernetes objects from outside the VPC: %s", egressHint)
	}

	names := make([]string, 0, len(c.EKSAddonVersions))
	for n := range c.EKSAddonVersions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := c.EKSAddonVersions[n]
		switch {
		case !isAddon(n):
			r.fail("eksAddonVersions", n+"="+v, "names no managed add-on: use %s", strings.Join(eks.KnownAddons, ", "))
		case !eks.AddonVersionPattern.MatchString(v):
			example := eks.DefaultAddonVersions[n]
			if example == "" {
				example = "v1.2.3-eksbuild.1"
			}
			r.fail("eksAddonVersions", n+"="+v, "must be an EKS add-on version such as %s "+
				"(`aws eks describe-addon-versions --addon-name %s --kubernetes-version %s` lists them)",
				example, n, c.EKSKubernetesVersion)
		}
	}

	switch {
	case c.GuardrailImageTag == "" && c.GuardModel == GuardModelColocated:
		c.GuardrailImageTag = GuardGatewayImageTag
	case c.GuardrailImageTag == "":
		c.GuardrailImageTag = DefaultGuardrailImageTag
	case c.GuardrailImageTag == DefaultGuardrailImageTag && c.GuardModel == GuardModelColocated && c.GuardrailImage == "" && c.Target == "eks":
		r.fail("guardrailImageTag", c.GuardrailImageTag, "is the gateway from before the guard model's flags "+
			"(-guard-max-chars): with guardModel colocated, build the image from this version, push it as %s "+
			"(or another new tag) and set that here, or leave guardrailImageTag unset", GuardGatewayImageTag)
	}
	if !imageTagPattern.MatchString(c.GuardrailImageTag) || c.GuardrailImageTag == "latest" {
		r.fail("guardrailImageTag", c.GuardrailImageTag, "must be a fixed image tag such as %s, never latest: "+
			"a moving tag gives different nodes different gateways, and an update nothing to roll out",
			DefaultGuardrailImageTag)
	}
	for _, k := range []struct{ key, image string }{
		{"vllmImage", c.VLLMImage}, {"devicePluginImage", c.DevicePluginImage},
		{"awsCliImage", c.AWSCLIImage}, {"guardrailImage", c.GuardrailImage}, {"cloudwatchAgentImage", c.CloudWatchAgentImage},
	} {
		if k.image != "" && !pinnedImage(k.image) {
			r.fail(k.key, k.image, "must name a fixed tag or a digest (repository:1.2.3 or repository@sha256:...), never latest")
		}
	}
}

func isAddon(name string) bool {
	for _, a := range eks.KnownAddons {
		if a == name {
			return true
		}
	}
	return false
}

// imageTagPattern is the grammar of an image tag (OCI distribution spec).
var imageTagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// pinnedImage reports whether an image reference names a digest, or a tag
// other than latest. A reference without either means latest.
func pinnedImage(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= slash {
		return false
	}
	tag := image[colon+1:]
	return tag != "latest" && imageTagPattern.MatchString(tag)
}

// assumeRoleARN reads the role the AWS provider assumes (aws:assumeRole,
// an object with roleArn), so that the Kubernetes provider signs its tokens
// as the same identity.
func (r *reader) assumeRoleARN() string {
	v, ok := r.src.GetConfig("aws:assumeRole")
	if !ok || strings.TrimSpace(v) == "" {
		return ""
	}
	var ar struct {
		RoleARN string `json:"roleArn"`
	}
	if err := json.Unmarshal([]byte(v), &ar); err != nil {
		r.fail("aws:assumeRole", "", "must be an object such as {\"roleArn\": \"arn:aws-cn:iam::123456789012:role/deploy\"}")
		return ""
	}
	return ar.RoleARN
}
