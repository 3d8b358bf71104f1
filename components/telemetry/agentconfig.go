package telemetry

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Paths of the agent's configuration on the instance, and the agent's own.
const (
	// AgentConfigFile is the agent configuration (EC2Agent.AgentConfig).
	AgentConfigFile = "/etc/deepseek-r1-cn/cloudwatch-agent.json"
	// ScrapeConfigFile is the Prometheus scrape configuration
	// (EC2Agent.ScrapeConfig) that AgentConfigFile points at.
	ScrapeConfigFile = "/etc/deepseek-r1-cn/prometheus.yaml"
	// AgentCtl is the agent's control script, where the Debian package and
	// the Deep Learning AMI put it (packaging/dependencies/amazon-cloudwatch-
	// agent-ctl: AGENTDIR=/opt/aws/amazon-cloudwatch-agent).
	AgentCtl = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
	// AgentLogFile is the agent's own log, where to look when a metric or a
	// log stream is missing.
	AgentLogFile = "/opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log"
)

// ScrapeIntervalSeconds is how often the agent scrapes and samples the
// GPUs: CloudWatch's standard one-minute resolution.
const ScrapeIntervalSeconds = 60

// gpuMeasurements are the nvidia_gpu measurements, in the order of
// EC2Metrics, with the unit each is published with.
var gpuMeasurements = []struct{ name, unit string }{
	{"utilization_gpu", "Percent"},
	{"memory_used", "Megabytes"},
	{"memory_total", "Megabytes"},
	{"temperature_gpu", "None"},
	{"power_draw", "None"},
}

// EC2Agent is what the CloudWatch agent on an EC2 instance of the stack
// needs to know.
type EC2Agent struct {
	Region string
	Stack  string
	// VLLMPort is vLLM's port on the instance (it listens on 127.0.0.1 or
	// 0.0.0.0; the agent scrapes 127.0.0.1).
	VLLMPort int
	// GatewayPort is the gateway's port, or 0 when there is no gateway.
	GatewayPort int
}

func (a EC2Agent) validate() error {
	if err := errors.Join(scrapeErrors(a.Region, a.Stack, a.VLLMPort, a.GatewayPort)...); err != nil {
		return fmt.Errorf("CloudWatch agent: %w", err)
	}
	return nil
}

// scrapeErrors checks what every agent configuration needs: a region, a
// stack that names a namespace, vLLM's port, and the gateway's (0 for
// none) apart from it.
func scrapeErrors(region, stack string, vllmPort, gatewayPort int) []error {
	var errs []error
	if region == "" {
		errs = append(errs, errors.New("the region is empty"))
	}
	if _, err := Namespace(stack); err != nil {
		errs = append(errs, err)
	}
	if vllmPort < 1 || vllmPort > 65535 {
		errs = append(errs, fmt.Errorf("vLLM port %d is not a port", vllmPort))
	}
	if gatewayPort < 0 || gatewayPort > 65535 || (gatewayPort != 0 && gatewayPort == vllmPort) {
		errs = append(errs, fmt.Errorf("gateway port %d is not a port apart from vLLM's", gatewayPort))
	}
	return errs
}

// Options is the EC2Options the agent's catalog is for.
func (a EC2Agent) Options() EC2Options {
	return EC2Options{Stack: a.Stack, Gateway: a.GatewayPort != 0}
}

// The agent configuration file, in the shape of the agent's JSON schema
// (translator/config/schema.json). Structs rather than maps keep the keys
// in a fixed order, so that the rendered user data does not change between
// runs.
type (
	agentFile struct {
		Agent   agentSection   `json:"agent"`
		Metrics metricsSection `json:"metrics"`
		Logs    logsSection    `json:"logs"`
	}
	agentSection struct {
		Region                    string `json:"region"`
		MetricsCollectionInterval int    `json:"metrics_collection_interval"`
		// OmitHostname keeps the host name out of the nvidia_gpu
		// dimensions (schema.json agentDefinition.omit_hostname).
		OmitHostname bool `json:"omit_hostname"`
	}
	metricsSection struct {
		Namespace             string           `json:"namespace"`
		MetricsCollected      metricsCollected `json:"metrics_collected"`
		AggregationDimensions [][]string       `json:"aggregation_dimensions"`
	}
	metricsCollected struct {
		NvidiaGPU nvidiaGPU `json:"nvidia_gpu"`
	}
	nvidiaGPU struct {
		Measurement         []measurement     `json:"measurement"`
		Interval            int               `json:"metrics_collection_interval"`
		AppendDimensions    map[string]string `json:"append_dimensions"`
		DropOriginalMetrics []string          `json:"drop_original_metrics"`
	}
	measurement struct {
		Name string `json:"name"`
		Unit string `json:"unit"`
	}
	logsSection struct {
		LogsCollected    logsCollected        `json:"logs_collected"`
		MetricsCollected logsMetricsCollected `json:"metrics_collected"`
		// ForceFlushInterval is how long, in seconds, the agent buffers
		// log events at most.
		ForceFlushInterval int `json:"force_flush_interval"`
	}
	logsCollected struct {
		Files files `json:"files"`
	}
	files struct {
		CollectList []collectFile `json:"collect_list"`
	}
	collectFile struct {
		FilePath      string `json:"file_path"`
		LogGroupName  string `json:"log_group_name"`
		LogStreamName string `json:"log_stream_name"`
	}
	logsMetricsCollected struct {
		Prometheus prometheusSection `json:"prometheus"`
	}
	prometheusSection struct {
		LogGroupName         string       `json:"log_group_name"`
		PrometheusConfigPath string       `json:"prometheus_config_path"`
		EMFProcessor         emfProcessor `json:"emf_processor"`
	}
	emfProcessor struct {
		MetricDeclarationDedup bool                `json:"metric_declaration_dedup"`
		MetricNamespace        string              `json:"metric_namespace"`
		MetricUnit             map[string]string   `json:"metric_unit"`
		MetricDeclaration      []metricDeclaration `json:"metric_declaration"`
	}
	metricDeclaration struct {
		SourceLabels    []string   `json:"source_labels"`
		LabelMatcher    string     `json:"label_matcher"`
		Dimensions      [][]string `json:"dimensions"`
		MetricSelectors []string   `json:"metric_selectors"`
	}
)

// AgentConfig renders the agent's JSON configuration (compact: it travels
// in the user data).
//
// Logs: each instance file goes to its log group, one stream per instance
// ({instance_id}). No retention_in_days: the program creates the groups
// with their retention, and the agent, not asked to set one, needs neither
// logs:PutRetentionPolicy nor logs:CreateLogGroup. Timestamps are the time
// the agent reads a line (no timestamp_format): vLLM's and the gateway's
// lines carry their own time in the text.
//
// Metrics: the Prometheus scrape (ScrapeConfig) goes out as Embedded
// Metric Format events into the metrics log group; the metric
// declarations select exactly the catalog's Prometheus metrics per scrape
// job, with the catalog's dimension sets, under the stack's namespace. The
// nvidia_gpu plugin samples the GPUs every minute; each GPU's datapoint is
// republished under [Stack] (aggregation_dimensions) and the per-GPU
// originals dropped.
func (a EC2Agent) AgentConfig() (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	ns, _ := Namespace(a.Stack)
	opts := a.Options()
	groups, err := EC2LogGroups(a.Stack, opts.Gateway)
	if err != nil {
		return "", err
	}
	catalog, err := EC2Metrics(opts)
	if err != nil {
		return "", err
	}
	f := agentFile{
		Agent: agentSection{Region: a.Region, MetricsCollectionInterval: ScrapeIntervalSeconds, OmitHostname: true},
		Metrics: metricsSection{
			Namespace: ns,
			MetricsCollected: metricsCollected{NvidiaGPU: nvidiaGPU{
				Interval:         ScrapeIntervalSeconds,
				AppendDimensions: map[string]string{StackDimension: a.Stack},
			}},
			AggregationDimensions: [][]string{{StackDimension}},
		},
		Logs: logsSection{ForceFlushInterval: 15},
	}
	for _, m := range gpuMeasurements {
		g := &f.Metrics.MetricsCollected.NvidiaGPU
		g.Measurement = append(g.Measurement, measurement{Name: m.name, Unit: m.unit})
		g.DropOriginalMetrics = append(g.DropOriginalMetrics, m.name)
	}
	for _, g := range groups {
		if g.File != "" {
			f.Logs.LogsCollected.Files.CollectList = append(f.Logs.LogsCollected.Files.CollectList,
				collectFile{FilePath: g.File, LogGroupName: g.Name, LogStreamName: g.Stream})
		}
	}
	metricsGroup, _ := LogGroupByKey(groups, LogMetrics)
	f.Logs.MetricsCollected.Prometheus = prometheusSection{
		LogGroupName: metricsGroup.Name, PrometheusConfigPath: ScrapeConfigFile, EMFProcessor: emfFor(ns, catalog),
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("CloudWatch agent configuration: %w", err)
	}
	return string(b), nil
}

// emfFor is the emf_processor section that publishes exactly the
// catalog's Prometheus metrics under ns, with their units.
func emfFor(ns string, catalog []Metric) emfProcessor {
	emf := emfProcessor{MetricDeclarationDedup: true, MetricNamespace: ns, MetricUnit: map[string]string{}}
	for _, d := range declarations(catalog) {
		emf.MetricDeclaration = append(emf.MetricDeclaration, d.render())
	}
	for _, m := range catalog {
		if m.Origin == OriginPrometheus && m.Unit != "None" {
			emf.MetricUnit[m.Name] = m.Unit
		}
	}
	return emf
}

// declaration is one metric declaration before rendering: the catalog's
// metrics of one job that share a dimension set.
type declaration struct {
	job   string
	dims  []string
	names []string
}

// render anchors each name (the selectors are regular expressions), and
// matches the job label exactly.
func (d declaration) render() metricDeclaration {
	md := metricDeclaration{SourceLabels: []string{"job"}, LabelMatcher: "^" + regexp.QuoteMeta(d.job) + "$",
		Dimensions: [][]string{d.dims}}
	for _, n := range d.names {
		md.MetricSelectors = append(md.MetricSelectors, "^"+regexp.QuoteMeta(n)+"$")
	}
	return md
}

// declarations groups the catalog's Prometheus metrics by job and
// dimension set, in catalog order.
func declarations(catalog []Metric) []declaration {
	var out []declaration
	for _, m := range catalog {
		if m.Origin != OriginPrometheus {
			continue
		}
		i := slices.IndexFunc(out, func(d declaration) bool { return d.job == m.Job && slices.Equal(d.dims, m.Dimensions) })
		if i < 0 {
			out = append(out, declaration{job: m.Job, dims: m.Dimensions})
			i = len(out) - 1
		}
		out[i].names = append(out[i].names, m.Name)
	}
	return out
}

// scrapeFile is the Prometheus configuration the agent reads
// (prometheus_config_path; Prometheus's configuration file format).
type (
	scrapeFile struct {
		Global        scrapeGlobal `yaml:"global"`
		ScrapeConfigs []scrapeJob  `yaml:"scrape_configs"`
	}
	scrapeGlobal struct {
		ScrapeInterval string `yaml:"scrape_interval"`
		ScrapeTimeout  string `yaml:"scrape_timeout"`
	}
	scrapeJob struct {
		JobName              string         `yaml:"job_name"`
		StaticConfigs        []staticConfig `yaml:"static_configs"`
		MetricRelabelConfigs []relabel      `yaml:"metric_relabel_configs"`
	}
	staticConfig struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels"`
	}
	relabel struct {
		SourceLabels []string `yaml:"source_labels"`
		Regex        string   `yaml:"regex"`
		Action       string   `yaml:"action"`
	}
)

// ScrapeConfig renders the Prometheus scrape configuration: vLLM's /metrics
// and, with the gateway, the gateway's, both on 127.0.0.1 (vLLM's /metrics
// needs no API key, nor does the gateway's). Every target carries the label
// Stack, which becomes the metrics' one dimension. A keep rule passes only
// the catalog's metrics of the job, so the metrics log group holds nothing
// else (Prometheus matches the regex against the whole name).
func (a EC2Agent) ScrapeConfig() (string, error) {
	if err := a.validate(); err != nil {
		return "", err
	}
	catalog, err := EC2Metrics(a.Options())
	if err != nil {
		return "", err
	}
	return renderScrape(a.Stack, catalog, a.VLLMPort, a.GatewayPort)
}

// renderScrape renders the scrape of vLLM on vllmPort and, unless
// gatewayPort is 0, the gateway, both on 127.0.0.1, each job keeping only
// the catalog's metrics of that job.
func renderScrape(stack string, catalog []Metric, vllmPort, gatewayPort int) (string, error) {
	f := scrapeFile{Global: scrapeGlobal{ScrapeInterval: strconv.Itoa(ScrapeIntervalSeconds) + "s", ScrapeTimeout: "10s"}}
	job := func(name string, port int) scrapeJob {
		var names []string
		for _, m := range catalog {
			if q := regexp.QuoteMeta(m.Name); m.Origin == OriginPrometheus && m.Job == name && !slices.Contains(names, q) {
				names = append(names, q)
			}
		}
		return scrapeJob{
			JobName: name,
			StaticConfigs: []staticConfig{{Targets: []string{"127.0.0.1:" + strconv.Itoa(port)},
				Labels: map[string]string{StackDimension: stack}}},
			MetricRelabelConfigs: []relabel{{SourceLabels: []string{"__name__"}, Regex: strings.Join(names, "|"), Action: "keep"}},
		}
	}
	f.ScrapeConfigs = append(f.ScrapeConfigs, job(JobVLLM, vllmPort))
	if gatewayPort != 0 {
		f.ScrapeConfigs = append(f.ScrapeConfigs, job(JobGateway, gatewayPort))
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("Prometheus scrape configuration: %w", err)
	}
	return string(b), nil
}

// DefaultAgentPackage is the CloudWatch agent's Debian package for x86-64
// Ubuntu in the region's own download bucket, following the pattern of the
// agent's region-specific download links
// (https://amazoncloudwatch-agent-<region>.s3.<region>.amazonaws.com/ubuntu/
// amd64/latest/amazon-cloudwatch-agent.deb). That the China regions have
// such buckets (amazoncloudwatch-agent-cn-north-1, -cn-northwest-1) and
// that they allow s3:GetObject through a VPC endpoint is UNCONFIRMED: a
// stack can name its own copy instead (AgentPackageS3URI in components/vllm).
func DefaultAgentPackage(regionName string) string {
	return "s3://amazoncloudwatch-agent-" + regionName + "/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb"
}
