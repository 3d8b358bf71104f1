package eks

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Deployer is how the machine running Pulumi authenticates to AWS: the AWS
// provider's profile (aws:profile) and the role it assumes
// (aws:assumeRole.roleArn). The Kubernetes provider signs its EKS tokens
// with the same identity, which is the one that created the cluster and so
// holds its admin access entry.
type Deployer struct {
	Profile string
	RoleARN string
}

// KubeconfigArgs describe the kubeconfig of the program's Kubernetes
// provider.
type KubeconfigArgs struct {
	ClusterName              string
	Endpoint                 string
	CertificateAuthorityData string
	// Region is the AWS provider's region. `aws eks get-token` signs an STS
	// GetCallerIdentity URL for the region it is given (awscli
	// customizations/eks/get_token.py: STSClientFactory gets the --region
	// global option, else the profile's or environment's region); without
	// one the CLI signs for the global STS endpoint, which China credentials
	// cannot use. So the region is always passed.
	Region   string
	Deployer Deployer
}

// Kubeconfig renders the kubeconfig the program's Kubernetes provider uses.
// pulumi-eks v2.8.1 exports a kubeconfig without the profile
// (nodejs/eks/cluster.ts: createCore returns kubeconfigWithoutProfile,
// generateKubeconfig(includeProfile=false)) and never with a region, so
// with `pulumi config set aws:profile china` its provider would sign with
// the default credential chain: this one names the profile (AWS_PROFILE,
// as generateKubeconfig does), the role (--role-arn) and the region.
// It holds no credential: the token comes from the AWS CLI on the
// deploying machine at each call.
func Kubeconfig(a KubeconfigArgs) (string, error) {
	if a.ClusterName == "" || a.Endpoint == "" || a.Region == "" {
		return "", errors.New("kubeconfig: cluster name, endpoint and region are required")
	}
	args := []string{"eks", "get-token", "--cluster-name", a.ClusterName, "--region", a.Region, "--output", "json"}
	if a.Deployer.RoleARN != "" {
		args = append(args, "--role-arn", a.Deployer.RoleARN)
	}
	env := []map[string]string{}
	if a.Deployer.Profile != "" {
		env = append(env, map[string]string{"name": "AWS_PROFILE", "value": a.Deployer.Profile})
	}
	const user, cluster, context = "aws", "eks", "eks"
	doc := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": context,
		"clusters": []any{map[string]any{
			"name": cluster,
			"cluster": map[string]any{
				"server":                     a.Endpoint,
				"certificate-authority-data": a.CertificateAuthorityData,
			},
		}},
		"contexts": []any{map[string]any{
			"name":    context,
			"context": map[string]any{"cluster": cluster, "user": user},
		}},
		"users": []any{map[string]any{
			"name": user,
			"user": map[string]any{"exec": map[string]any{
				"apiVersion":      "client.authentication.k8s.io/v1beta1",
				"command":         "aws",
				"args":            args,
				"env":             env,
				"interactiveMode": "Never",
			}},
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	return string(b), nil
}
