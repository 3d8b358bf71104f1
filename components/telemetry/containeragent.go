package telemetry

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// How the CloudWatch agent's container image runs, read in
// aws/amazon-cloudwatch-agent at ab55b8d (v1.300071+):
//   - The image (amazon-cloudwatch-container-insights/cloudwatch-agent-
//     dockerfile/Dockerfile) is FROM scratch, sets RUN_IN_CONTAINER=True
//     and starts bin/start-amazon-cloudwatch-agent; it has no shell.
//   - In a container the start command translates every JSON file of
//     /etc/cwagentconfig (tool/paths/paths_unix.go CONFIG_DIR_IN_CONTAINER;
//     cmd/start-amazon-cloudwatch-agent/start-amazon-cloudwatch-agent.go
//     --input-dir), or the CW_CONFIG_CONTENT variable when that directory
//     holds none (translator/cmdutil/translatorutil.go), and logs to stdout
//     (translator/translate/agent/ruleLogFile.go).
//   - logs.metrics_collected.prometheus needs cluster_name in a container
//     (translator/translate/logs/metrics_collected/prometheus/
//     ruleClusterName.go: "ClusterName is not defined"); it becomes a
//     ClusterName label of each scraped metric (plugins/inputs/prometheus/
//     metrics_handler.go), not a dimension, since the metric declarations
//     name theirs.
//   - Credentials: with RUN_WITH_IRSA=True the agent runs in the "withIRSA"
//     mode and uses the SDK's default chain, which reads the web identity
//     token EKS injects for the pod's service account. Without it, a pod
//     that cannot reach the instance metadata is taken for an on-premises
//     host, and the agent forces the shared-credentials profile
//     AmazonCloudWatchAgent (translator/util/sdkutil.go DetectAgentMode and
//     GetCredentials), which does not exist in the container.
//   - The region is the configuration's agent.region
//     (translator/translate/agent/ruleRegion.go); AWS_REGION is set too for
//     the SDK's STS call.
//
// AWS's own Container Insights Prometheus manifest mounts the two files the
// same way (aws-samples/amazon-cloudwatch-container-insights k8s-deployment-
// manifest-templates/deployment-mode/service/cwagent-prometheus/
// prometheus-eks.yaml: cwagentconfig.json at /etc/cwagentconfig,
// prometheus.yaml at /etc/prometheusconfig).
const (
	// ContainerConfigDir holds the agent's JSON configuration in the
	// container, as ContainerConfigFile.
	ContainerConfigDir  = "/etc/cwagentconfig"
	ContainerConfigFile = "cwagentconfig.json"
	// ContainerScrapeDir holds the Prometheus scrape configuration, as
	// ContainerScrapeFile. It must not be ContainerConfigDir: the start
	// command passes every YAML file there to the agent as an OpenTelemetry
	// configuration (internal/util/config/config.go GetOTELConfigArgs).
	ContainerScrapeDir  = "/etc/prometheusconfig"
	ContainerScrapeFile = "prometheus.yaml"
)

// ContainerAgentEnv is the environment the agent's container needs besides
// the configuration files: RUN_IN_CONTAINER (the image sets it; repeated so
// that an image built otherwise behaves the same) and RUN_WITH_IRSA (see
// above). AWS_REGION is the region's.
func ContainerAgentEnv(regionName string) [][2]string {
	return [][2]string{{"RUN_IN_CONTAINER", "True"}, {"RUN_WITH_IRSA", "True"}, {"AWS_REGION", regionName}}
}

// ContainerAgent is the CloudWatch agent as a sidecar of a vLLM pod on EKS:
// it scrapes vLLM and the gateway on the pod's loopback and publishes the
// same metrics as the EC2 agent does (PrometheusMetrics), with no GPU
// plugin (the add-on's DCGM exporter covers the GPUs) and no file logs
// (the add-on's Fluent Bit ships the containers' output).
type ContainerAgent struct {
	Region string
	Stack  string
	// Cluster is the EKS cluster's name, which the agent requires in a
	// container.
	Cluster string
	// VLLMPort is vLLM's port in the pod; GatewayPort the gateway's, or 0
	// when there is no gateway.
	VLLMPort    int
	GatewayPort int
}

func (a ContainerAgent) validate() error {
	errs := scrapeErrors(a.Region, a.Stack, a.VLLMPort, a.GatewayPort)
	if a.Cluster == "" {
		errs = append(errs, errors.New("the cluster name is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("CloudWatch agent sidecar: %w", err)
	}
	return nil
}

// catalog is the sidecar's part of EKSMetrics.
func (a ContainerAgent) catalog() ([]Metric, error) {
	return EKSMetrics(EKSOptions{Stack: a.Stack, Gateway: a.GatewayPort != 0})
}

// The sidecar's configuration file: only the agent and the logs sections
// (translator/config/schema.json agentDefinition and logsDefinition
// metrics_collected.prometheus).
type (
	containerAgentFile struct {
		Agent containerAgentSection `json:"agent"`
		Logs  containerLogsSection  `json:"logs"`
	}
	containerAgentSection struct {
		Region                    string `json:"region"`
		MetricsCollectionInterval int    `json:"metrics_collection_interval"`
	}
	containerLogsSection struct {
		MetricsCollected   containerLogsMetrics `json:"metrics_collected"`
		ForceFlushInterval int                  `json:"force_flush_interval"`
	}
	containerLogsMetrics struct {
		Prometheus containerPrometheus `json:"prometheus"`
	}
	containerPrometheus struct {
		ClusterName          string       `json:"cluster_name"`
		LogGroupName         string       `json:"log_group_name"`
		PrometheusConfigPath string       `json:"prometheus_config_path"`
		EMFProcessor         emfProcessor `json:"emf_processor"`
	}
)

// AgentConfig renders the sidecar's JSON configuration: the Prometheus
// scrape (ScrapeConfig) published as Embedded Metric Format into the
// stack's EKS metrics log group, under the stack's namespace, with the
// catalog's metric declarations.
func (a ContainerAgent) AgentConfig() (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	ns, _ := Namespace(a.Stack)
	groups, err := EKSOwnLogGroups(a.Stack)
	if err != nil {
		return "", err
	}
	catalog, err := a.catalog()
	if err != nil {
		return "", err
	}
	metrics, _ := LogGroupByKey(groups, LogMetrics)
	f := containerAgentFile{
		Agent: containerAgentSection{Region: a.Region, MetricsCollectionInterval: ScrapeIntervalSeconds},
		Logs: containerLogsSection{ForceFlushInterval: 15, MetricsCollected: containerLogsMetrics{Prometheus: containerPrometheus{
			ClusterName: a.Cluster, LogGroupName: metrics.Name,
			PrometheusConfigPath: ContainerScrapeDir + "/" + ContainerScrapeFile,
			EMFProcessor:         emfFor(ns, catalog),
		}}},
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", fmt.Errorf("CloudWatch agent sidecar configuration: %w", err)
	}
	return string(b), nil
}

// ScrapeConfig renders the sidecar's Prometheus scrape configuration:
// vLLM and the gateway on the pod's loopback, each target labelled with the
// stack, keeping only the catalog's metrics.
func (a ContainerAgent) ScrapeConfig() (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	catalog, err := a.catalog()
	if err != nil {
		return "", err
	}
	return renderScrape(a.Stack, catalog, a.VLLMPort, a.GatewayPort)
}

// ContainerAgentStatements are what the sidecar calls AWS for:
// logs:CreateLogStream, logs:PutLogEvents and logs:DescribeLogStreams on
// the EKS metrics log group and its streams, and nothing else. Not
// cloudwatch:PutMetricData (the metrics are extracted from the log
// events), not logs:CreateLogGroup or logs:PutRetentionPolicy (the program
// creates the group with its retention), no EC2 call (the configuration
// asks for no EC2 tags). account is the account ID, or "*".
func ContainerAgentStatements(r region.Info, account, stack string) ([]iamdoc.Statement, error) {
	groups, err := EKSOwnLogGroups(stack)
	if err != nil {
		return nil, err
	}
	return []iamdoc.Statement{
		iamdoc.Allow("MetricsSidecarLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"},
			logGroupARNs(r, account, groups)),
	}, nil
}
