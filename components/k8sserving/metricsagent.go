package k8sserving

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// The sidecar's ConfigMap, container and volume names.
const (
	metricsAgentConfigMap = "cloudwatch-agent"
	// MetricsAgentContainer is the sidecar's container name.
	MetricsAgentContainer = "cloudwatch-agent"
	metricsAgentVolume    = "cloudwatch-agent-config"
	metricsScrapeVolume   = "cloudwatch-agent-scrape"
)

// metricsAgent creates the sidecar's configuration (one ConfigMap with the
// agent's JSON and the Prometheus scrape) and lets the pod's role write
// the metrics log group.
//
// The permission goes to the pod's existing role rather than a role of its
// own: IRSA gives a pod one service account, and every container of the pod
// gets its token (the EKS pod identity webhook mounts it into each one), so
// a second role trusting the same service account would separate nothing.
// The statement allows writing one log group only
// (telemetry.ContainerAgentStatements).
func metricsAgent(ctx *pulumi.Context, name string, args *Args, role *iam.Role, parent pulumi.ResourceOption,
	inNS []pulumi.ResourceOption,
) error {
	a := args.agent()
	config, err := a.AgentConfig()
	if err != nil {
		return err
	}
	scrape, err := a.ScrapeConfig()
	if err != nil {
		return err
	}
	if _, err := corev1.NewConfigMap(ctx, name+"-cloudwatch-agent", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(metricsAgentConfigMap), Namespace: pulumi.String(Namespace)},
		Data: pulumi.StringMap{
			telemetry.ContainerConfigFile: pulumi.String(config),
			telemetry.ContainerScrapeFile: pulumi.String(scrape),
		},
	}, inNS...); err != nil {
		return fmt.Errorf("CloudWatch agent configuration: %w", err)
	}
	st, err := telemetry.ContainerAgentStatements(args.Region, args.MetricsAgent.Account, args.MetricsAgent.Stack)
	if err != nil {
		return fmt.Errorf("CloudWatch agent policy: %w", err)
	}
	if _, err := iam.NewRolePolicy(ctx, name+"-metrics", &iam.RolePolicyArgs{
		Role: role.ID(), Policy: pulumi.String(iamdoc.New(st...).JSON()),
	}, parent); err != nil {
		return fmt.Errorf("CloudWatch agent policy: %w", err)
	}
	return nil
}

// metricsAgentContainer is the sidecar. It has no probe of any kind: a
// pod is Ready only when every container is (kubelet pkg/kubelet/status/
// generate.go GenerateContainersReadyCondition counts regular containers
// and restartable init containers alike), so a probe that failed would take
// vLLM out of the Service for a metrics problem. What remains is the
// container exiting: the configuration is rendered and checked here
// (telemetry's tests parse it), the memory limit has headroom and
// GOMEMLIMIT makes the Go runtime collect before it (the agent is a Go
// program); a scrape that fails while vLLM loads is a Prometheus scrape
// error, not an exit, and that a refused or unreachable CloudWatch is only
// retried and logged, never fatal, is the Collector exporters' design but
// UNCONFIRMED here by a run. A crash loop would show the pod unready:
// `kubectl -n deepseek-r1 logs deploy/vllm -c cloudwatch-agent`.
//
// It runs as the image's user, root (the image is FROM scratch with no
// other user), without capabilities or privilege escalation; the agent
// writes its translated configuration under /opt/aws/amazon-cloudwatch-
// agent/etc, which the package ships owned by root (aws/amazon-cloudwatch-
// agent Tools/src/create_deb.sh: --owner=0), so the root file system stays
// writable.
func metricsAgentContainer(args *Args) corev1.ContainerArray {
	if args.MetricsAgent == nil {
		return corev1.ContainerArray{}
	}
	env := corev1.EnvVarArray{}
	for _, kv := range telemetry.ContainerAgentEnv(args.Region.Name) {
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(kv[0]), Value: pulumi.String(kv[1])})
	}
	limit := args.Resources.MetricsAgent.MemoryMiB
	env = append(env,
		corev1.EnvVarArgs{Name: pulumi.String("AWS_STS_REGIONAL_ENDPOINTS"), Value: pulumi.String("regional")},
		corev1.EnvVarArgs{Name: pulumi.String("GOMEMLIMIT"), Value: pulumi.String(fmt.Sprintf("%dMiB", limit*8/10))},
	)
	return corev1.ContainerArray{corev1.ContainerArgs{
		Name:      pulumi.String(MetricsAgentContainer),
		Image:     pulumi.String(args.MetricsAgent.Image),
		Env:       env,
		Resources: args.Resources.MetricsAgent.requirements(nil),
		VolumeMounts: corev1.VolumeMountArray{
			corev1.VolumeMountArgs{Name: pulumi.String(metricsAgentVolume), MountPath: pulumi.String(telemetry.ContainerConfigDir), ReadOnly: pulumi.Bool(true)},
			corev1.VolumeMountArgs{Name: pulumi.String(metricsScrapeVolume), MountPath: pulumi.String(telemetry.ContainerScrapeDir), ReadOnly: pulumi.Bool(true)},
		},
		SecurityContext: restricted(),
	}}
}

// metricsAgentVolumes mount the ConfigMap's two files in their two
// directories.
func metricsAgentVolumes(args *Args) corev1.VolumeArray {
	if args.MetricsAgent == nil {
		return corev1.VolumeArray{}
	}
	one := func(volume, file string) corev1.VolumeArgs {
		return corev1.VolumeArgs{Name: pulumi.String(volume), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{
			Name:  pulumi.String(metricsAgentConfigMap),
			Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(file), Path: pulumi.String(file)}},
		}}
	}
	return corev1.VolumeArray{one(metricsAgentVolume, telemetry.ContainerConfigFile), one(metricsScrapeVolume, telemetry.ContainerScrapeFile)}
}
