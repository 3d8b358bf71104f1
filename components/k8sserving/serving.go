// Package k8sserving runs vLLM on a Kubernetes cluster with NVIDIA GPUs: the
// NVIDIA device plugin, a vLLM Deployment that copies its weights from S3
// through an IAM role for its service account (IRSA), the API key as a
// Kubernetes Secret, and a Service. Every image comes from ECR in the region.
package k8sserving

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/vllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// Namespace holds the model server.
const Namespace = "deepseek-r1"

// Workload names the Deployment and the Service that front the model
// server; Container Insights reports the pods' restarts under the Service's
// name (the stack's pods-restarting alarm).
const Workload = "vllm"

// GuardrailContainer names the gateway's container: the EKS target's audit
// metric filters select its records in the application log group by it.
const GuardrailContainer = "guardrail"

// serviceAccount is the identity whose IAM role may read the weights.
const serviceAccount = "vllm"

// Images are the container images, all from ECR in the region.
type Images struct {
	VLLM         string
	DevicePlugin string
	AWSCLI       string
}

// Guardrail runs the guardrail gateway as a second container of the vLLM
// pod: it takes the Service's port and vLLM listens on the pod's loopback.
type Guardrail struct {
	Image string
	// Policy holds policy.yaml and the word lists it names, by file name;
	// it becomes a ConfigMap mounted at /etc/guardrail.
	Policy map[string]string
}

// Args configures a Serving.
type Args struct {
	Region region.Info
	// Server is vLLM's command line; its Model is set here.
	Server vllm.Server
	Images Images
	// GPUTaint and GPUNodeSelector place the pods on the GPU nodes.
	GPUTaint        string
	GPUNodeSelector map[string]string

	WeightsBucket pulumi.StringInput
	WeightsPrefix string
	// OIDCProviderARN and OIDCProviderURL are the cluster's IRSA provider.
	OIDCProviderARN pulumi.StringInput
	OIDCProviderURL pulumi.StringInput
	KMSKeyARN       string

	// APIKey is a Pulumi secret.
	APIKey   pulumi.StringInput
	Replicas int
	// InternalLoadBalancer exposes the Service on an internal NLB reachable
	// from AllowedCIDRs, in LoadBalancerSubnetIDs (the private subnets);
	// otherwise it is ClusterIP only.
	InternalLoadBalancer  bool
	AllowedCIDRs          pulumi.StringArrayInput
	LoadBalancerSubnetIDs pulumi.StringArrayInput
	// Resources size the pod's containers (SizePod).
	Resources PodResources
	// StartupSeconds bounds the weights copy plus loading them on the GPUs.
	StartupSeconds int
	// WeightsDiskGiB sizes the pod-local volume the weights are copied to.
	WeightsDiskGiB int
	// Guardrail, when set, fronts vLLM in the pod; Server must then listen
	// on 127.0.0.1 at another port than ServicePort.
	Guardrail *Guardrail
	// MetricsAgent, when set, runs the CloudWatch agent as a sidecar of each
	// vLLM pod (Resources.MetricsAgent sizes it).
	MetricsAgent *MetricsAgent
	// Guard, when set, runs the guard model beside vLLM on its first GPU
	// (guard.go); its weights are under WeightsPrefix. Needs Guardrail.
	Guard *vllm.GuardModel
	// ServicePort is the port clients use.
	ServicePort int
}

// MetricsAgent is the CloudWatch agent sidecar: it scrapes vLLM and the
// gateway on the pod's loopback and publishes the catalog's metrics
// (telemetry.ContainerAgent) into the stack's EKS metrics log group.
type MetricsAgent struct {
	// Image is the agent's image, mirrored into ECR in the region.
	Image string
	// Stack names the metrics' namespace and Stack dimension; Cluster is
	// the EKS cluster's name, which the agent needs in a container.
	Stack   string
	Cluster string
	// Account is the account ID for the log group's ARN in the pod role's
	// policy.
	Account string
}

// agent is the sidecar's telemetry description, with the pod's ports.
func (a *Args) agent() telemetry.ContainerAgent {
	c := telemetry.ContainerAgent{Region: a.Region.Name, Stack: a.MetricsAgent.Stack, Cluster: a.MetricsAgent.Cluster,
		VLLMPort: a.Server.Port}
	if a.Guardrail != nil {
		c.GatewayPort = a.ServicePort
	}
	return c
}

// podOptions are what the pod holds, for its resources' checks.
func (a *Args) podOptions() PodOptions {
	return PodOptions{Guardrail: a.Guardrail != nil, MetricsAgent: a.MetricsAgent != nil}
}

// Serving is the component.
type Serving struct {
	pulumi.ResourceState

	ServiceName pulumi.StringOutput `pulumi:"serviceName"`
	RoleARN     pulumi.StringOutput `pulumi:"roleArn"`
}

// Validate checks the arguments before anything is registered.
func (a *Args) Validate() error {
	var errs []error
	images := map[string]string{"vLLM": a.Images.VLLM, "device plugin": a.Images.DevicePlugin, "AWS CLI": a.Images.AWSCLI}
	if a.Guardrail != nil {
		images["guardrail"] = a.Guardrail.Image
		if a.Server.Host != "127.0.0.1" || a.Server.Port == a.ServicePort {
			errs = append(errs, errors.New("behind the guardrail, vLLM must listen on 127.0.0.1 at its own port"))
		}
		if _, ok := a.Guardrail.Policy["policy.yaml"]; !ok {
			errs = append(errs, errors.New("the guardrail policy has no policy.yaml"))
		}
	}
	if a.MetricsAgent != nil {
		images["CloudWatch agent"] = a.MetricsAgent.Image
		if _, err := a.agent().AgentConfig(); err != nil {
			errs = append(errs, err)
		}
		if a.MetricsAgent.Account == "" {
			errs = append(errs, errors.New("the CloudWatch agent sidecar needs the account ID for its log group's ARN"))
		}
	}
	for name, img := range images {
		if !a.Region.IsRegionalECRImage(img) {
			errs = append(errs, fmt.Errorf("%s image %q is not in a private ECR registry of %s", name, img, a.Region.Name))
		}
	}
	errs = append(errs, a.validateGuard()...)
	if a.Replicas < 1 {
		errs = append(errs, fmt.Errorf("replicas %d must be at least 1", a.Replicas))
	}
	if a.APIKey == nil || a.WeightsBucket == nil || a.OIDCProviderARN == nil || a.OIDCProviderURL == nil {
		errs = append(errs, errors.New("API key, weights bucket and OIDC provider are required"))
	}
	if a.StartupSeconds < 60 {
		errs = append(errs, fmt.Errorf("start-up time %d s is too short", a.StartupSeconds))
	}
	if a.InternalLoadBalancer && a.LoadBalancerSubnetIDs == nil {
		errs = append(errs, errors.New("an internal load balancer needs the private subnets to place it in"))
	}
	if err := a.Resources.Validate(a.podOptions()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// New deploys the workloads with the given Kubernetes provider.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Serving, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("serving %s: %w", name, err)
	}
	s := &Serving{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:k8s:Serving", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)

	if err := devicePlugin(ctx, name, args, parent); err != nil {
		return nil, fmt.Errorf("serving %s: %w", name, err)
	}
	ns, err := corev1.NewNamespace(ctx, name, &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(Namespace)},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("serving %s: namespace: %w", name, err)
	}
	inNS := []pulumi.ResourceOption{parent, pulumi.DependsOn([]pulumi.Resource{ns})}

	role, err := weightsReader(ctx, name, args, parent)
	if err != nil {
		return nil, fmt.Errorf("serving %s: %w", name, err)
	}
	if _, err := corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name:        pulumi.String(serviceAccount),
			Namespace:   pulumi.String(Namespace),
			Annotations: pulumi.StringMap{"eks.amazonaws.com/role-arn": role.Arn},
		},
	}, inNS...); err != nil {
		return nil, fmt.Errorf("serving %s: service account: %w", name, err)
	}
	if _, err := corev1.NewSecret(ctx, name+"-api-key", &corev1.SecretArgs{
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String("vllm-api-key"), Namespace: pulumi.String(Namespace)},
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.StringMap{"VLLM_API_KEY": pulumi.ToSecret(args.APIKey).(pulumi.StringOutput)},
	}, inNS...); err != nil {
		return nil, fmt.Errorf("serving %s: API key secret: %w", name, err)
	}
	if args.Guardrail != nil {
		if _, err := corev1.NewConfigMap(ctx, name+"-guardrail-policy", &corev1.ConfigMapArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("guardrail-policy"), Namespace: pulumi.String(Namespace)},
			Data:     pulumi.ToStringMap(args.Guardrail.Policy),
		}, inNS...); err != nil {
			return nil, fmt.Errorf("serving %s: guardrail policy: %w", name, err)
		}
	}
	if args.MetricsAgent != nil {
		if err := metricsAgent(ctx, name, args, role, parent, inNS); err != nil {
			return nil, fmt.Errorf("serving %s: %w", name, err)
		}
	}
	if _, err := deployment(ctx, name, args, inNS); err != nil {
		return nil, fmt.Errorf("serving %s: %w", name, err)
	}
	if err := disruptionBudget(ctx, name, inNS); err != nil {
		return nil, fmt.Errorf("serving %s: %w", name, err)
	}
	svc, err := service(ctx, name, args, inNS)
	if err != nil {
		return nil, fmt.Errorf("serving %s: %w", name, err)
	}

	s.ServiceName = svc.Metadata.Name().Elem()
	s.RoleARN = role.Arn
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"serviceName": s.ServiceName,
		"roleArn":     s.RoleARN,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// weightsReader is the IRSA role of the vLLM pods: only the vllm service
// account of its namespace may assume it, and it may only read the weights.
func weightsReader(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) (*iam.Role, error) {
	r := args.Region
	trust := pulumi.All(args.OIDCProviderARN, args.OIDCProviderURL).ApplyT(func(v []any) string {
		return IRSATrust(r, v[0].(string), v[1].(string), Namespace, serviceAccount).JSON()
	}).(pulumi.StringOutput)
	role, err := iam.NewRole(ctx, name+"-weights", &iam.RoleArgs{
		Description:      pulumi.String("vLLM pods (IRSA): read the model weights"),
		AssumeRolePolicy: trust,
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("weights role: %w", err)
	}
	policy := args.WeightsBucket.ToStringOutput().ApplyT(func(bucket string) string {
		st := weights.ReadStatements(r, bucket, args.WeightsPrefix)
		if args.KMSKeyARN != "" {
			st = append(st, iamdoc.Allow("DecryptWeights", []string{"kms:Decrypt"}, []string{args.KMSKeyARN}))
		}
		return iamdoc.New(st...).JSON()
	}).(pulumi.StringOutput)
	if _, err := iam.NewRolePolicy(ctx, name+"-weights", &iam.RolePolicyArgs{Role: role.ID(), Policy: policy}, parent); err != nil {
		return nil, fmt.Errorf("weights policy: %w", err)
	}
	return role, nil
}

// IRSATrust lets one Kubernetes service account assume a role through the
// cluster's OIDC provider.
func IRSATrust(r region.Info, providerARN, providerURL, namespace, account string) iamdoc.Document {
	issuer := strings.TrimPrefix(providerURL, "https://")
	return iamdoc.New(iamdoc.Statement{
		Effect:    "Allow",
		Principal: map[string]any{"Federated": providerARN},
		Action:    []string{"sts:AssumeRoleWithWebIdentity"},
		Condition: map[string]map[string]any{"StringEquals": {
			issuer + ":sub": "system:serviceaccount:" + namespace + ":" + account,
			issuer + ":aud": r.IRSAAudience(),
		}},
	})
}

// devicePlugin runs NVIDIA's device plugin on the GPU nodes, which
// advertises nvidia.com/gpu to the scheduler; pulumi-eks does not install it.
func devicePlugin(ctx *pulumi.Context, name string, args *Args, parent pulumi.ResourceOption) error {
	labels := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("nvidia-device-plugin")}
	_, err := appsv1.NewDaemonSet(ctx, name+"-nvidia-device-plugin", &appsv1.DaemonSetArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("nvidia-device-plugin"), Namespace: pulumi.String("kube-system")},
		Spec: &appsv1.DaemonSetSpecArgs{
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: labels},
			UpdateStrategy: &appsv1.DaemonSetUpdateStrategyArgs{Type: pulumi.String("RollingUpdate")},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{
					PriorityClassName: pulumi.String("system-node-critical"),
					NodeSelector:      pulumi.ToStringMap(args.GPUNodeSelector),
					Tolerations:       gpuTolerations(args.GPUTaint),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:  pulumi.String("nvidia-device-plugin"),
						Image: pulumi.String(args.Images.DevicePlugin),
						Env: corev1.EnvVarArray{corev1.EnvVarArgs{
							Name: pulumi.String("FAIL_ON_INIT_ERROR"), Value: pulumi.String("false"),
						}},
						Resources: devicePluginResources.requirements(nil),
						SecurityContext: &corev1.SecurityContextArgs{
							AllowPrivilegeEscalation: pulumi.Bool(false),
							Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
						},
						VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{
							Name: pulumi.String("device-plugin"), MountPath: pulumi.String("/var/lib/kubelet/device-plugins"),
						}},
					}},
					Volumes: corev1.VolumeArray{corev1.VolumeArgs{
						Name:     pulumi.String("device-plugin"),
						HostPath: &corev1.HostPathVolumeSourceArgs{Path: pulumi.String("/var/lib/kubelet/device-plugins")},
					}},
				},
			},
		},
	}, parent)
	if err != nil {
		return fmt.Errorf("NVIDIA device plugin: %w", err)
	}
	return nil
}

// devicePluginResources is small: the plugin only lists GPUs to the kubelet.
var devicePluginResources = Resources{MilliCPU: 50, MemoryMiB: 128}

func gpuTolerations(taint string) corev1.TolerationArray {
	return corev1.TolerationArray{corev1.TolerationArgs{
		Key: pulumi.String(taint), Operator: pulumi.String("Exists"), Effect: pulumi.String("NoSchedule"),
	}}
}

// deployment is vLLM: an init container copies the weights from S3 to a
// pod-local volume with the IRSA role, then vLLM serves them with the sized
// arguments and the API key from the Secret.
func deployment(ctx *pulumi.Context, name string, args *Args, opts []pulumi.ResourceOption) (*appsv1.Deployment, error) {
	const modelDir = "/models/model"
	server := args.Server
	server.Model = modelDir
	d := server.Decision
	gpus := strconv.Itoa(d.TensorParallel * d.PipelineParallel)
	labels := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("vllm")}
	port := pulumi.Int(server.Port)
	// Probes get 5 s to answer, not the kubelet's default of 1 s: vLLM's
	// /health shares the event loop with requests and answers late under
	// load, and a liveness probe that times out restarts the server.
	health := &corev1.ProbeArgs{
		HttpGet:        &corev1.HTTPGetActionArgs{Path: pulumi.String("/health"), Port: port},
		TimeoutSeconds: pulumi.Int(probeTimeoutSeconds),
	}

	startup := *health
	startup.PeriodSeconds = pulumi.Int(10)
	startup.FailureThreshold = pulumi.Int(args.StartupSeconds/10 + 1)
	readiness := *health
	readiness.PeriodSeconds = pulumi.Int(10)
	liveness := *health
	liveness.PeriodSeconds = pulumi.Int(30)
	liveness.FailureThreshold = pulumi.Int(5)
	if args.Guardrail != nil {
		// vLLM is on the pod's loopback, which the kubelet's HTTP probes
		// cannot reach: probe from inside the container.
		exec := &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"python3", "-c",
			fmt.Sprintf("import urllib.request; urllib.request.urlopen('http://127.0.0.1:%d/health', timeout=5)", server.Port)})}
		for _, p := range []*corev1.ProbeArgs{&startup, &readiness, &liveness} {
			p.HttpGet = nil
			p.Exec = exec
			p.TimeoutSeconds = pulumi.Int(10)
		}
	}

	command, cmdArgs := []string{"vllm"}, append([]string{"serve"}, server.Args()...)
	if args.Guard != nil {
		command, cmdArgs = guardCommand(args.Guard, server, modelDir)
	}
	res := args.Resources
	dep, err := appsv1.NewDeployment(ctx, name+"-vllm", &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String("vllm"), Namespace: pulumi.String(Namespace),
			// `pulumi up` does not wait for the pods to become ready: that
			// needs the weights in the bucket, which is created by the same
			// update (the fetch-weights container waits for them), plus the
			// image pull and the model load, longer than pulumi-kubernetes'
			// 10-minute await. `kubectl -n deepseek-r1 rollout status
			// deploy/vllm` follows the rollout instead (README).
			Annotations: pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")},
		},
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(args.Replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
			// GPUs are scarce: replace one pod at a time rather than asking
			// for a spare GPU node during a rollout.
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
					MaxSurge: pulumi.Int(0), MaxUnavailable: pulumi.Int(1),
				},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName: pulumi.String(serviceAccount),
					NodeSelector:       pulumi.ToStringMap(args.GPUNodeSelector),
					Tolerations:        gpuTolerations(args.GPUTaint),
					InitContainers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:    pulumi.String("fetch-weights"),
						Image:   pulumi.String(args.Images.AWSCLI),
						Command: pulumi.ToStringArray([]string{"/bin/sh", "-c", fetchScript(args)}),
						Env: corev1.EnvVarArray{
							corev1.EnvVarArgs{Name: pulumi.String("AWS_STS_REGIONAL_ENDPOINTS"), Value: pulumi.String("regional")},
							corev1.EnvVarArgs{Name: pulumi.String("AWS_REGION"), Value: pulumi.String(args.Region.Name)},
							corev1.EnvVarArgs{Name: pulumi.String("WEIGHTS_BUCKET"), Value: args.WeightsBucket},
							corev1.EnvVarArgs{Name: pulumi.String("WEIGHTS_PREFIX"), Value: pulumi.String(args.WeightsPrefix)},
							corev1.EnvVarArgs{Name: pulumi.String("MODEL_DIR"), Value: pulumi.String(modelDir)},
						},
						Resources:       res.FetchWeights.requirements(nil),
						VolumeMounts:    corev1.VolumeMountArray{mount("models", "/models")},
						SecurityContext: restricted(),
					}},
					Containers: append(append(guardrailContainer(args), corev1.ContainerArgs{
						Name:    pulumi.String("vllm"),
						Image:   pulumi.String(args.Images.VLLM),
						Command: pulumi.ToStringArray(command),
						Args:    pulumi.ToStringArray(cmdArgs),
						Env: append(corev1.EnvVarArray{
							corev1.EnvVarArgs{Name: pulumi.String("VLLM_API_KEY"), ValueFrom: &corev1.EnvVarSourceArgs{
								SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: pulumi.String("vllm-api-key"), Key: pulumi.String("VLLM_API_KEY")},
							}},
							corev1.EnvVarArgs{Name: pulumi.String("HF_HUB_OFFLINE"), Value: pulumi.String("1")},
							corev1.EnvVarArgs{Name: pulumi.String("VLLM_NO_USAGE_STATS"), Value: pulumi.String("1")},
						}, serverEnv(server)...),
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String(vllmPortName(args)), ContainerPort: port,
						}},
						Resources:       res.VLLM.requirements(pulumi.StringMap{"nvidia.com/gpu": pulumi.String(gpus)}),
						StartupProbe:    &startup,
						ReadinessProbe:  &readiness,
						LivenessProbe:   &liveness,
						VolumeMounts:    corev1.VolumeMountArray{mount("models", "/models"), mount("shm", "/dev/shm")},
						SecurityContext: restricted(),
					}), metricsAgentContainer(args)...),
					Volumes: append(append(guardrailVolumes(args),
						corev1.VolumeArgs{Name: pulumi.String("models"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{
							SizeLimit: pulumi.String(fmt.Sprintf("%dGi", args.WeightsDiskGiB)),
						}},
						// NCCL and PyTorch workers share tensors through /dev/shm,
						// which defaults to 64 MiB in a container. It is memory,
						// charged to vLLM's limit, so it is sized from it.
						corev1.VolumeArgs{Name: pulumi.String("shm"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{
							Medium: pulumi.String("Memory"), SizeLimit: pulumi.String(fmt.Sprintf("%dMi", res.ShmMiB)),
						}},
					), metricsAgentVolumes(args)...),
				},
			},
		},
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("vLLM deployment: %w", err)
	}
	return dep, nil
}

// probeTimeoutSeconds is how long an HTTP probe may take to answer.
const probeTimeoutSeconds = 5

// fetchWeightsScript waits until the weights are staged (their config.json
// exists: the bucket is created by the same `pulumi up`, and the weights
// are copied into it afterwards, see the stageWeightsCommands output),
// then copies them. An init container runs once per pod: copying an empty
// prefix and letting vLLM crash would never pick the weights up later.
// head-object needs only s3:GetObject, which the IRSA role has on the prefix.
const fetchWeightsScript = `set -eu
until aws s3api head-object --bucket "$WEIGHTS_BUCKET" --key "${WEIGHTS_PREFIX}config.json" --region "$AWS_REGION" >/dev/null 2>&1; do
  echo "waiting for the weights at s3://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX (run the stageWeightsCommands stack output)"
  sleep 30
done
exec aws s3 sync "s3://$WEIGHTS_BUCKET/$WEIGHTS_PREFIX" "$MODEL_DIR" --region "$AWS_REGION" --only-show-errors`

// disruptionBudget lets voluntary disruptions (node drains, managed node
// group updates) take down one vLLM pod at a time. maxUnavailable rather
// than minAvailable: with one replica a minAvailable of 1 would block every
// drain, and EKS managed node group updates fail with PodEvictionFailure
// when a budget never allows the eviction (amazon-eks-user-guide
// managed-node-update-behavior).
func disruptionBudget(ctx *pulumi.Context, name string, opts []pulumi.ResourceOption) error {
	_, err := policyv1.NewPodDisruptionBudget(ctx, name+"-vllm", &policyv1.PodDisruptionBudgetArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("vllm"), Namespace: pulumi.String(Namespace)},
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("vllm")}},
		},
	}, opts...)
	if err != nil {
		return fmt.Errorf("pod disruption budget: %w", err)
	}
	return nil
}

// service exposes vLLM inside the cluster, or on an internal NLB.
//
// No load balancer controller is installed: the NLB comes from the AWS
// cloud provider's service controller that EKS runs (the "legacy" one,
// kubernetes/cloud-provider-aws pkg/providers/v1, tag v1.33.4), which
// honours these annotations: aws-load-balancer-type "nlb" (isNLB),
// aws-load-balancer-internal (any value but "false" makes it internal),
// and aws-load-balancer-subnets (getLoadBalancerSubnets uses the listed
// subnets instead of discovering them). Naming the private subnets places
// the NLB in them whatever the subnets' tags: without it, discovery takes
// one subnet per zone, breaking ties by the kubernetes.io/role/internal-elb
// tag and then by subnet id, so in the zone that also holds the NAT
// gateway's public subnet it could pick that one (findELBSubnets). The EKS
// user guide (network-load-balancing.adoc) documents the annotation as the
// way to skip subnet tagging. loadBalancerSourceRanges become the ingress
// rules the controller adds to the nodes' security group
// (updateInstanceSecurityGroupsForNLB). That code builds no ARN or host
// name of its own (no partition-specific strings at v1.33.4), so it works
// in aws-cn as elsewhere; the AWS Load Balancer Controller, which EKS
// recommends instead, would need its image mirrored and an IRSA role.
func service(ctx *pulumi.Context, name string, args *Args, opts []pulumi.ResourceOption) (*corev1.Service, error) {
	meta := &metav1.ObjectMetaArgs{Name: pulumi.String(Workload), Namespace: pulumi.String(Namespace)}
	spec := &corev1.ServiceSpecArgs{
		Type:     pulumi.String("ClusterIP"),
		Selector: pulumi.StringMap{"app.kubernetes.io/name": pulumi.String("vllm")},
		Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
			Name: pulumi.String("http"), Port: pulumi.Int(args.ServicePort), TargetPort: pulumi.String("http"),
		}},
	}
	if args.InternalLoadBalancer {
		subnets := args.LoadBalancerSubnetIDs.ToStringArrayOutput().ApplyT(func(ids []string) string {
			return strings.Join(ids, ",")
		}).(pulumi.StringOutput)
		meta.Annotations = pulumi.StringMap{
			AnnotationLoadBalancerType:     pulumi.String("nlb"),
			AnnotationLoadBalancerInternal: pulumi.String("true"),
			AnnotationLoadBalancerSubnets:  subnets,
		}
		spec.Type = pulumi.String("LoadBalancer")
		spec.LoadBalancerSourceRanges = args.AllowedCIDRs
	}
	svc, err := corev1.NewService(ctx, name+"-vllm", &corev1.ServiceArgs{Metadata: meta, Spec: spec}, opts...)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return svc, nil
}

// The Service annotations of the AWS cloud provider's load balancers
// (kubernetes/cloud-provider-aws pkg/providers/v1/aws.go).
const (
	AnnotationLoadBalancerType     = "service.beta.kubernetes.io/aws-load-balancer-type"
	AnnotationLoadBalancerInternal = "service.beta.kubernetes.io/aws-load-balancer-internal"
	AnnotationLoadBalancerSubnets  = "service.beta.kubernetes.io/aws-load-balancer-subnets"
)

func mount(name, path string) corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(name), MountPath: pulumi.String(path)}
}

func restricted() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		AllowPrivilegeEscalation: pulumi.Bool(false),
		Privileged:               pulumi.Bool(false),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
	}
}

// vllmPortName names vLLM's port "http" (the Service's target) unless the
// guardrail takes that name.
func vllmPortName(args *Args) string {
	if args.Guardrail != nil {
		return "vllm"
	}
	return "http"
}

// guardrailContainer is the gateway container, listening on the Service's
// port and calling vLLM on the pod's loopback with the same API key.
func guardrailContainer(args *Args) corev1.ContainerArray {
	g := args.Guardrail
	if g == nil {
		return corev1.ContainerArray{}
	}
	key := &corev1.EnvVarSourceArgs{SecretKeyRef: &corev1.SecretKeySelectorArgs{
		Name: pulumi.String("vllm-api-key"), Key: pulumi.String("VLLM_API_KEY"),
	}}
	healthz := &corev1.ProbeArgs{HttpGet: &corev1.HTTPGetActionArgs{Path: pulumi.String("/healthz"), Port: pulumi.String("http")},
		PeriodSeconds: pulumi.Int(10), TimeoutSeconds: pulumi.Int(probeTimeoutSeconds)}
	return corev1.ContainerArray{corev1.ContainerArgs{
		Name:  pulumi.String(GuardrailContainer),
		Image: pulumi.String(g.Image),
		Args: pulumi.ToStringArray(append([]string{
			"-listen", fmt.Sprintf("0.0.0.0:%d", args.ServicePort),
			"-upstream", fmt.Sprintf("http://127.0.0.1:%d", args.Server.Port),
			"-policy", "/etc/guardrail/policy.yaml",
		}, guardGatewayArgs(args.Guard)...)),
		Env: append(corev1.EnvVarArray{
			corev1.EnvVarArgs{Name: pulumi.String("GUARDRAIL_API_KEYS"), ValueFrom: key},
			corev1.EnvVarArgs{Name: pulumi.String("GUARDRAIL_UPSTREAM_API_KEY"), ValueFrom: key},
		}, guardGatewayEnv(args.Guard, key)...),
		Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
			Name: pulumi.String("http"), ContainerPort: pulumi.Int(args.ServicePort),
		}},
		Resources:      args.Resources.Guardrail.requirements(nil),
		ReadinessProbe: healthz,
		LivenessProbe:  healthz,
		VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{
			Name: pulumi.String("guardrail-policy"), MountPath: pulumi.String("/etc/guardrail"), ReadOnly: pulumi.Bool(true),
		}},
		SecurityContext: &corev1.SecurityContextArgs{
			AllowPrivilegeEscalation: pulumi.Bool(false),
			Privileged:               pulumi.Bool(false),
			RunAsNonRoot:             pulumi.Bool(true),
			RunAsUser:                pulumi.Int(65532),
			ReadOnlyRootFilesystem:   pulumi.Bool(true),
			Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
		},
	}}
}

func guardrailVolumes(args *Args) corev1.VolumeArray {
	if args.Guardrail == nil {
		return corev1.VolumeArray{}
	}
	return corev1.VolumeArray{corev1.VolumeArgs{
		Name:      pulumi.String("guardrail-policy"),
		ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: pulumi.String("guardrail-policy")},
	}}
}

// serverEnv is what vLLM's environment needs for its GPU besides the API key
// and the offline switches: the attention backend on T4 and V100, as the
// EC2 server sets it (vllm.Server.Env).
func serverEnv(s vllm.Server) corev1.EnvVarArray {
	var out corev1.EnvVarArray
	for _, v := range s.Env() {
		out = append(out, corev1.EnvVarArgs{Name: pulumi.String(v.Name), Value: pulumi.String(v.Value)})
	}
	return out
}
