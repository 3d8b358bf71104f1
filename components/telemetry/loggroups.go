package telemetry

import (
	"fmt"
	"regexp"
)

// Files on an EC2 instance. The units write these besides the journal
// (components/vllm); the CloudWatch agent tails them.
const (
	// LogDir holds the service logs.
	LogDir = "/var/log/deepseek-r1-cn"
	// BootLogFile is the user data's and the install unit's log.
	BootLogFile = "/var/log/deepseek-r1-cn-boot.log"
	// VLLMLogFile is vLLM's standard output and error.
	VLLMLogFile = LogDir + "/vllm.log"
	// GatewayLogFile is the guardrail gateway's operational log (stderr).
	GatewayLogFile = LogDir + "/guardrail.log"
	// AuditLogFile is the gateway's JSON audit log (its -audit-log flag):
	// one record per request, finding types and counts, never text.
	AuditLogFile = LogDir + "/guardrail-audit.log"
)

// Who creates a log group.
const (
	// CreatedByProgram: the Pulumi program creates it, with retention and
	// encryption; whatever writes to it may not create it.
	CreatedByProgram = "program"
	// CreatedByService: an AWS service creates it on first write. The
	// program may create it first to set retention and encryption.
	CreatedByService = "service"
)

// LogGroup is a CloudWatch Logs group a target writes to.
type LogGroup struct {
	Name string
	// Key is a short stable name for Pulumi resource names and lookups.
	Key string
	// File is the instance file the CloudWatch agent ships into it, if any.
	File string
	// Stream is the agent's log stream name ({instance_id} is the instance).
	Stream    string
	CreatedBy string
	Purpose   string
}

// Log group keys of the EC2 target.
const (
	LogBoot         = "boot"
	LogVLLM         = "vllm"
	LogGateway      = "guardrail"
	LogGatewayAudit = "guardrail-audit"
	// LogMetrics receives the agent's Embedded Metric Format events, from
	// which CloudWatch extracts the Prometheus metrics; one stream per
	// scrape job ({JobName}: the agent's awsemf_default_prometheus.yaml).
	LogMetrics = "metrics"
)

// LogGroupPrefix is where every log group of a stack's own lives.
func LogGroupPrefix(stack string) string { return "/deepseek-r1-cn/" + stack }

// logGroupName: 1-512 characters of [\.\-_/#A-Za-z0-9] (CloudWatch Logs
// API_CreateLogGroup).
var logGroupName = regexp.MustCompile(`^[.\-_/#A-Za-z0-9]{1,512}$`)

// ValidateLogGroupName applies CloudWatch Logs' naming rule.
func ValidateLogGroupName(name string) error {
	if !logGroupName.MatchString(name) {
		return fmt.Errorf("log group %q: want 1-512 of letters, digits and . - _ / #", name)
	}
	return nil
}

// EC2LogGroups are the EC2 target's log groups; the gateway's only when it
// runs.
func EC2LogGroups(stack string, gateway bool) ([]LogGroup, error) {
	p := LogGroupPrefix(stack) + "/ec2/"
	groups := []LogGroup{
		{Key: LogBoot, Name: p + LogBoot, File: BootLogFile, Stream: "{instance_id}", CreatedBy: CreatedByProgram,
			Purpose: "the user data, the install unit (apt, pip or the image pull, with retries) and the CloudWatch agent's setup"},
		{Key: LogVLLM, Name: p + LogVLLM, File: VLLMLogFile, Stream: "{instance_id}", CreatedBy: CreatedByProgram,
			Purpose: "vLLM's output: model loading, engine errors, its periodic throughput and KV-cache lines"},
	}
	if gateway {
		groups = append(groups,
			LogGroup{Key: LogGateway, Name: p + LogGateway, File: GatewayLogFile, Stream: "{instance_id}", CreatedBy: CreatedByProgram,
				Purpose: "the guardrail gateway's operational log (start, policy, upstream failures)"},
			LogGroup{Key: LogGatewayAudit, Name: p + LogGatewayAudit, File: AuditLogFile, Stream: "{instance_id}", CreatedBy: CreatedByProgram,
				Purpose: "one JSON record per request (request_id, route, status, outcome, latency, finding types and counts; never text)"},
		)
	}
	groups = append(groups, LogGroup{Key: LogMetrics, Name: p + LogMetrics, Stream: "{JobName}", CreatedBy: CreatedByProgram,
		Purpose: "Embedded Metric Format events of the Prometheus scrape (vLLM and the gateway), from which the metrics come"})
	for _, g := range groups {
		if err := ValidateLogGroupName(g.Name); err != nil {
			return nil, fmt.Errorf("stack %q: %w", stack, err)
		}
	}
	return groups, nil
}

// LogGroupByKey finds a group by its key.
func LogGroupByKey(groups []LogGroup, key string) (LogGroup, bool) {
	for _, g := range groups {
		if g.Key == key {
			return g, true
		}
	}
	return LogGroup{}, false
}

// SageMakerLogGroups: SageMaker writes the endpoint containers' output to
// /aws/sagemaker/Endpoints/<EndpointName>, one stream per variant and
// instance, creating the group with its execution role
// (components/sagemaker ExecutionPolicy grants logs:CreateLogGroup there).
// Creating it first with a retention and key is what Terraform users do;
// that SageMaker then writes to the existing group is UNCONFIRMED by an
// AWS document.
func SageMakerLogGroups(endpoint string) []LogGroup {
	return []LogGroup{{Key: "endpoint", Name: "/aws/sagemaker/Endpoints/" + endpoint, CreatedBy: CreatedByService,
		Purpose: "the container's stdout and stderr: sagemaker-serve and vLLM, and the gateway's audit records"}}
}

// EKSLogGroups: the Amazon CloudWatch Observability add-on's Fluent Bit
// writes application (container), dataplane (kubelet, containerd) and host
// logs, its agent the performance (Container Insights EMF) events
// (aws-observability/helm-charts amazon-cloudwatch-observability
// values.yaml; the agent's sampleConfig emf_and_kubernetes_with_gpu_config
// .yaml); EKS writes the control plane's to /aws/eks/<cluster>/cluster (EKS
// user guide, "Send control plane logs to CloudWatch Logs").
//
// The program creates them first (with the stack's retention and key):
// the add-on's and the control plane's writers create a missing group
// without a retention, so that it would keep every line forever.
func EKSLogGroups(cluster string) []LogGroup {
	ci := "/aws/containerinsights/" + cluster + "/"
	return []LogGroup{
		{Key: LogEKSApplication, Name: ci + "application", CreatedBy: CreatedByService, Purpose: "container logs: vLLM, the gateway (its audit records on stdout) and the metrics sidecar"},
		{Key: LogEKSDataplane, Name: ci + "dataplane", CreatedBy: CreatedByService, Purpose: "kubelet, containerd, aws-node and kube-proxy"},
		{Key: LogEKSHost, Name: ci + "host", CreatedBy: CreatedByService, Purpose: "the nodes' kernel and system journal lines"},
		{Key: LogEKSPerformance, Name: ci + "performance", CreatedBy: CreatedByService, Purpose: "Container Insights EMF events (the ContainerInsights metrics)"},
		{Key: LogEKSControlPlane, Name: "/aws/eks/" + cluster + "/cluster", CreatedBy: CreatedByService, Purpose: "control plane logs: api, audit, authenticator"},
	}
}

// Log group keys of the EKS target. LogMetrics is the sidecar's group
// (EKSOwnLogGroups); the others are the add-on's and the control plane's
// (EKSLogGroups).
const (
	LogEKSApplication  = "application"
	LogEKSDataplane    = "dataplane"
	LogEKSHost         = "host"
	LogEKSPerformance  = "performance"
	LogEKSControlPlane = "cluster"
)

// EKSOwnLogGroups are the EKS target's log groups that its own programs
// write: the metrics sidecar's Embedded Metric Format events, one stream
// per scrape job ({JobName}) shared by every replica: PutLogEvents ignores
// the sequence token, takes parallel calls on one stream, and has no
// per-stream rate quota any more (CloudWatch Logs API reference,
// PutLogEvents).
func EKSOwnLogGroups(stack string) ([]LogGroup, error) {
	g := LogGroup{Key: LogMetrics, Name: LogGroupPrefix(stack) + "/eks/" + LogMetrics, Stream: "{JobName}", CreatedBy: CreatedByProgram,
		Purpose: "Embedded Metric Format events of the vLLM pods' CloudWatch agent sidecar (vLLM and the gateway), from which the metrics come"}
	if err := ValidateLogGroupName(g.Name); err != nil {
		return nil, fmt.Errorf("stack %q: %w", stack, err)
	}
	return []LogGroup{g}, nil
}
