package vllm

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// Paths on the instance. The model directory is a stable link to wherever
// the weights were copied (local NVMe when the instance has it).
const (
	homeDir   = "/opt/deepseek-r1-cn"
	modelLink = homeDir + "/model"
	guardLink = homeDir + "/guard-model"
	// stateDir holds the install's state file and done marker.
	stateDir = "/var/lib/deepseek-r1-cn"
)

// InstallUnit is the systemd unit that installs vLLM's dependencies and
// retries until it has; InstallStateFile shows its progress.
const (
	InstallUnit      = "deepseek-r1-cn-install.service"
	InstallStateFile = stateDir + "/install.state"
)

// The install retries each step after RetryInitialSeconds, doubling the wait
// up to RetryMaxSeconds. On a type with local NVMe, each start of vLLM waits
// up to nvmeWaitTries x 5 s for the instance store to be mounted.
const (
	RetryInitialSeconds = 10
	RetryMaxSeconds     = 300
	nvmeWaitTries       = 60
)

// aptPackages are what pip mode needs from Ubuntu: the venv module, and the
// Python headers and compiler Triton builds its C stub with (vLLM #27890).
var aptPackages = []string{"python3-venv", "python3-dev", "build-essential"}

// MaxUserDataBytes is EC2's limit on user data before base64 encoding. The
// script goes gzip-compressed (UserData), which cloud-init unpacks before
// it runs it (cloud-init doc/rtd/explanation/format.rst, "Gzip compressed
// content"), so the limit applies to the compressed script.
const MaxUserDataBytes = 16 * 1024

// Weights says where the instance gets the model from. Exactly one of S3URI
// and ModelScopeID is set.
type Weights struct {
	// S3URI is s3://bucket/prefix/ in the instance's region.
	S3URI string
	// ModelScopeID and ModelScopeRevision download from modelscope.cn, which
	// needs internet egress (NAT).
	ModelScopeID       string
	ModelScopeRevision string
}

// Install says how vLLM gets onto the instance. Exactly one of Image and
// Version (with PipIndexURL) is used.
type Install struct {
	// PipIndexURL is the Python package index (a China mirror in aws-cn).
	PipIndexURL string
	// Image is a vLLM OpenAI server image in the region's ECR; when set, the
	// instance runs it with Docker instead of installing vLLM with pip.
	Image string
	// AptMirror, when set, is the Ubuntu archive (http://.../ubuntu/) the
	// install takes its packages from instead of the AMI's sources. Where the
	// AMI's sources point in the China regions is UNCONFIRMED: cloud-init
	// tries <region>.ec2.archive.ubuntu.com and falls back to
	// archive.ubuntu.com (cloud-init config/cloud.cfg.tmpl package_mirrors).
	AptMirror string
}

// Guardrail runs the guardrail gateway (cmd/guardrail) in front of vLLM:
// it listens where clients connect and vLLM moves to loopback.
type Guardrail struct {
	// BinaryS3URI and PolicyS3URI are the gateway binary and its policy
	// directory (a zip with policy.yaml at its root) in the region's S3.
	BinaryS3URI string
	PolicyS3URI string
	// Listen is the gateway's address (0.0.0.0:<API port>); Upstream is
	// vLLM's (http://127.0.0.1:<port>).
	Listen   string
	Upstream string
}

// GuardModel runs the guard model (Qwen3Guard-Gen, sizing.GuardModel) on a
// second vLLM on the first GPU, for the gateway's model step
// (cmd/guardrail -guard-endpoint). vllm-guard.service starts it and answers
// its health check before vllm.service starts the main model, so that the
// two engines do not profile GPU memory at the same moment (each sizes its
// KV cache from what it measures at start: vllm/v1/worker/gpu_worker.py
// determine_available_memory).
type GuardModel struct {
	Decision sizing.ColocatedDecision
	// Weights: an S3 URI of its own, or its ModelScope id.
	Weights Weights
	// Port is its loopback port.
	Port int
	// MaxChars is the gateway's -guard-max-chars: runes per message sent to
	// it, so that a prompt and an answer fit its --max-model-len.
	MaxChars int
}

// GuardUnit is the guard model's systemd unit; GuardServedModelName the
// model name it serves and the gateway asks for.
const (
	GuardUnit            = "vllm-guard.service"
	GuardServedModelName = "qwen3guard"
	// guardHealthWaitTries x 5 s is how long vllm-guard.service waits for
	// the guard's /health before it fails (and restarts); vllm.service
	// starts after that either way.
	guardHealthWaitTries = 360
)

// TelemetryUnit is the systemd unit that installs the CloudWatch agent
// when the AMI has none and starts it with the stack's configuration,
// retrying until it has; TelemetryStateFile shows its progress.
const (
	TelemetryUnit      = "deepseek-r1-cn-telemetry.service"
	TelemetryStateFile = stateDir + "/telemetry.state"
)

// Telemetry ships the instance's logs and metrics to CloudWatch with the
// CloudWatch agent (components/telemetry holds what it publishes and
// where). vLLM and the gateway then also write their output to files under
// telemetry.LogDir (the journal keeps it too), the gateway its audit log to
// telemetry.AuditLogFile, and logrotate keeps those files small.
type Telemetry struct {
	// Stack is the Pulumi stack: the metrics' namespace and dimension, and
	// the log groups' names, come from it (telemetry.Namespace,
	// telemetry.EC2LogGroups). The program creates the log groups.
	Stack string
	// AgentPackageS3URI is the agent's Debian package (s3://bucket/key in
	// the region's S3, reached through the VPC's gateway endpoint), installed
	// when the AMI has no agent. "" relies on the AMI's: the Deep Learning
	// Base OSS AMIs list amazon-cloudwatch-agent among their packages (DLAMI
	// release notes), which is UNCONFIRMED for every x86-64 Ubuntu 22.04
	// release; without either, the telemetry unit retries and says why.
	// telemetry.DefaultAgentPackage is the region's own download bucket
	// (UNCONFIRMED in China).
	AgentPackageS3URI string
	// AgentPackageSHA256, when set, is the package's SHA-256: a copy that
	// does not match is not installed.
	AgentPackageSHA256 string
}

// Boot is everything the boot script needs. None of it is secret.
type Boot struct {
	Region string
	// Server is vLLM's command line. The instance type is deliberately not
	// in the script: a change of type with the same sizing is then an
	// in-place resize, not a new instance.
	Server  Server
	Weights Weights
	Install Install
	// APIKeySecretARN is the Secrets Manager secret holding the API key.
	APIKeySecretARN string
	// Guardrail, when set, puts the guardrail gateway in front of vLLM.
	Guardrail *Guardrail
	// LocalNVMeGB is the instance type's NVMe instance store
	// (sizing.InstanceType.LocalNVMeGB); 0 for EBS-only types. When it is
	// not 0, vLLM starts only once the store is mounted and the weights are
	// on it, never on the root volume. A launch template per instance type
	// renders its own.
	LocalNVMeGB int
	// Telemetry, when set, runs the CloudWatch agent.
	Telemetry *Telemetry
	// Guard, when set, serves the guard model beside the main one; it needs
	// the Guardrail, which asks it.
	Guard *GuardModel
}

//go:embed *.tmpl
var templates embed.FS

var bootTmpl = template.Must(template.New("boot").Funcs(template.FuncMap{
	"q":    ShellQuote,
	"args": func(a []string) string { return ShellJoin(a) },
	// unit escapes free text for a unit file, where % starts a specifier.
	"unit": func(s string) string { return strings.ReplaceAll(s, "%", "%%") },
}).ParseFS(templates, "*.tmpl"))

// Validate checks what the template relies on.
func (b Boot) Validate() error {
	var errs []error
	if b.Region == "" {
		errs = append(errs, errors.New("region is empty"))
	}
	if (b.Weights.S3URI == "") == (b.Weights.ModelScopeID == "") {
		errs = append(errs, errors.New("exactly one of the S3 URI and the ModelScope id must be set"))
	}
	if b.Weights.S3URI != "" && !strings.HasPrefix(b.Weights.S3URI, "s3://") {
		errs = append(errs, fmt.Errorf("weights URI %q is not an s3:// URI", b.Weights.S3URI))
	}
	if (b.Install.Image == "" || b.Weights.ModelScopeID != "") && b.Install.PipIndexURL == "" {
		errs = append(errs, errors.New("a pip index is needed to install vLLM (without an image) or the ModelScope client"))
	}
	if b.APIKeySecretARN == "" {
		errs = append(errs, errors.New("the API key secret ARN is empty"))
	}
	if m := b.Install.AptMirror; m != "" {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(m, " \t\n'\"$`\\") {
			errs = append(errs, fmt.Errorf("apt mirror %q is not an http(s) URL such as http://mirrors.aliyun.com/ubuntu/", m))
		}
	}
	if b.LocalNVMeGB < 0 {
		errs = append(errs, fmt.Errorf("local NVMe of %d GB is negative", b.LocalNVMeGB))
	}
	if err := CheckAttentionBackend(b.Server.AttentionBackend); err != nil {
		errs = append(errs, err)
	}
	if t := b.Telemetry; t != nil {
		if _, err := b.agent(); err != nil {
			errs = append(errs, err)
		}
		if u := t.AgentPackageS3URI; u != "" && !s3ObjectURI.MatchString(u) {
			errs = append(errs, fmt.Errorf("agent package %q is not an s3://bucket/key URI", u))
		}
		if h := t.AgentPackageSHA256; h != "" && !sha256Hex.MatchString(h) {
			errs = append(errs, fmt.Errorf("agent package SHA-256 %q is not 64 hex digits", h))
		}
	}
	if g := b.Guardrail; g != nil {
		if !strings.HasPrefix(g.BinaryS3URI, "s3://") || !strings.HasPrefix(g.PolicyS3URI, "s3://") {
			errs = append(errs, errors.New("the guardrail binary and policy must be s3:// URIs"))
		}
		if g.Listen == "" || !strings.HasPrefix(g.Upstream, "http://127.0.0.1:") {
			errs = append(errs, errors.New("the guardrail needs a listen address and vLLM on loopback"))
		}
		if b.Server.Host != "127.0.0.1" {
			errs = append(errs, fmt.Errorf("with the guardrail, vLLM must listen on 127.0.0.1, not %q", b.Server.Host))
		}
	}
	if g := b.Guard; g != nil {
		errs = append(errs, g.validate(b)...)
	}
	return errors.Join(errs...)
}

func (g *GuardModel) validate(b Boot) []error {
	var errs []error
	if b.Guardrail == nil {
		errs = append(errs, errors.New("the guard model needs the guardrail gateway, which asks it"))
	}
	if (g.Weights.S3URI == "") == (g.Weights.ModelScopeID == "") {
		errs = append(errs, errors.New("exactly one of the guard model's S3 URI and ModelScope id must be set"))
	}
	if u := g.Weights.S3URI; u != "" && (!strings.HasPrefix(u, "s3://") || !strings.HasSuffix(u, "/")) {
		errs = append(errs, fmt.Errorf("guard model weights URI %q is not an s3:// prefix ending in /", u))
	}
	if g.Weights.ModelScopeID != "" && b.Install.PipIndexURL == "" {
		errs = append(errs, errors.New("a pip index is needed for the ModelScope client that downloads the guard model"))
	}
	return append(errs, g.CheckBeside(b.Server)...)
}

// CheckBeside checks the guard against the model's server it runs beside,
// on every target: a port of its own, and GPU shares that fit together.
// ports are other ports of the host or pod it must not take.
func (g GuardModel) CheckBeside(s Server, ports ...int) []error {
	var errs []error
	if g.Port < 1024 || g.Port > 65535 || g.Port == s.Port || slices.Contains(ports, g.Port) {
		errs = append(errs, fmt.Errorf("guard model port %d must be a free port above 1023, not vLLM's %d", g.Port, s.Port))
	}
	if u := g.Decision.GPUMemoryUtilization; u <= 0 || u+s.Decision.GPUMemoryUtilization > sizing.MaxColocatedUtilization+1e-9 {
		errs = append(errs, fmt.Errorf("the guard model's GPU memory share %.2f and vLLM's %.2f must add up to at most %.2f",
			u, s.Decision.GPUMemoryUtilization, sizing.MaxColocatedUtilization))
	}
	if g.Decision.MaxModelLen <= 0 || g.MaxChars <= 0 {
		errs = append(errs, errors.New("the guard model needs a max model length and a max number of characters"))
	}
	return errs
}

// Args is the guard vLLM's command line after "vllm serve". It runs eagerly
// (no CUDA graphs to hold memory for) with a small batch: it answers a few
// tokens per request. Request logging stays off on every release (before
// 0.10.1 it was on by default, with the prompt text: vLLM PR #21739).
func (g GuardModel) Args(model string, v Version) []string {
	args := []string{
		model,
		"--served-model-name", GuardServedModelName,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(g.Port),
		"--dtype", g.Decision.DType,
		"--max-model-len", strconv.Itoa(g.Decision.MaxModelLen),
		"--gpu-memory-utilization", strconv.FormatFloat(g.Decision.GPUMemoryUtilization, 'f', 2, 64),
		"--max-num-seqs", "8",
		"--enforce-eager",
	}
	if !v.LogsRequests() {
		args = append(args, "--disable-log-requests")
	}
	return args
}

// GatewayArgs is the gateway's command line on the instance (without the
// audit log, which telemetry adds): cmd/guardrail's flags, which its tests
// parse from here.
func (b Boot) GatewayArgs() []string {
	g := b.Guardrail
	if g == nil {
		return nil
	}
	const key = "/run/deepseek-r1-cn-guardrail/api-key"
	args := []string{"-listen", g.Listen, "-upstream", g.Upstream, "-policy", "/etc/deepseek-r1-cn/guardrail/policy.yaml",
		"-api-keys-file", key, "-upstream-api-key-file", key}
	if m := b.Guard; m != nil {
		args = append(args, "-guard-endpoint", m.Endpoint(), "-guard-model", GuardServedModelName,
			"-guard-api-key-file", key, "-guard-max-chars", strconv.Itoa(m.MaxChars))
	}
	return args
}

// Endpoint is the guard's OpenAI-compatible base URL for the gateway.
func (g GuardModel) Endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d/v1", g.Port) }

var (
	s3ObjectURI = regexp.MustCompile(`^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*()/=+-]+$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// agent is what the CloudWatch agent scrapes: vLLM on its port, and the
// gateway on the port it listens on.
func (b Boot) agent() (telemetry.EC2Agent, error) {
	a := telemetry.EC2Agent{Region: b.Region, Stack: b.Telemetry.Stack, VLLMPort: b.Server.Port}
	if g := b.Guardrail; g != nil {
		_, port, err := net.SplitHostPort(g.Listen)
		if err != nil {
			return a, fmt.Errorf("the guardrail's listen address %q: %w", g.Listen, err)
		}
		if a.GatewayPort, err = strconv.Atoi(port); err != nil {
			return a, fmt.Errorf("the guardrail's listen address %q has no port number", g.Listen)
		}
	}
	if _, err := a.AgentConfig(); err != nil {
		return a, err
	}
	return a, nil
}

// packed is text gzipped and base64-encoded in 76-column lines, for a
// here-document: the agent's configuration is mostly repetitive JSON that
// would otherwise take a quarter of the 16 KiB of user data. The output is
// the same for the same text (no name or time in the gzip header).
func packed(text string) (string, error) {
	var gz bytes.Buffer
	w, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := w.Write([]byte(text)); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	enc := base64.StdEncoding.EncodeToString(gz.Bytes())
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	return strings.Join(append(lines, enc), "\n") + "\n", nil
}

// Render produces the cloud-init user data: a bash script that only writes
// files and starts systemd units, so that nothing in it fails for a network
// reason. A oneshot unit (InstallUnit) installs vLLM's dependencies,
// retrying each step with capped exponential backoff, at every boot until it
// has; vllm.service waits for it and restarts on any failure. Each start of
// vLLM re-syncs the weights exactly (the instance store is empty after a
// stop) and re-reads the API key (so a rotated key takes effect on restart).
func (b Boot) Render() (string, error) {
	if err := b.Validate(); err != nil {
		return "", fmt.Errorf("boot script: %w", err)
	}
	s := b.Server
	s.Model = modelLink
	if b.Install.Image != "" {
		s.Model = "/model"
	}
	data := struct {
		Boot
		HomeDir, ModelLink, StateDir, InstallUnit string
		ServeArgs                                 []string
		PipPackages, AptPackages                  []string
		Registry, InstallKey                      string
		Env                                       []EnvVar
		RetryInitialSeconds, RetryMaxSeconds      int
		NVMeWaitTries                             int
		// Telemetry: the units, files and the packed agent configuration.
		TelemetryUnit, AgentCtl, AgentConfigFile, ScrapeConfigFile string
		LogDir, VLLMLog, GatewayLog, AuditLog                      string
		AgentConfig, ScrapeConfig                                  string
		// Guard: the guard model's unit, weights link and command line.
		GuardUnit, GuardLink, GuardServedModelName string
		GuardArgs, GatewayArgs                     []string
		// GuardExclude is the guard's weights relative to the model's
		// prefix, when they are under it: the model's copy skips them.
		GuardExclude   string
		GuardWaitTries int
	}{
		Boot: b, HomeDir: homeDir, ModelLink: modelLink, StateDir: stateDir, InstallUnit: InstallUnit,
		ServeArgs: s.Args(), Env: s.Env(), GatewayArgs: b.GatewayArgs(),
		RetryInitialSeconds: RetryInitialSeconds, RetryMaxSeconds: RetryMaxSeconds, NVMeWaitTries: nvmeWaitTries,
		TelemetryUnit: TelemetryUnit, AgentCtl: telemetry.AgentCtl,
		AgentConfigFile: telemetry.AgentConfigFile, ScrapeConfigFile: telemetry.ScrapeConfigFile,
		LogDir: telemetry.LogDir, VLLMLog: telemetry.VLLMLogFile, GatewayLog: telemetry.GatewayLogFile,
		AuditLog: telemetry.AuditLogFile, GuardUnit: GuardUnit, GuardLink: guardLink, GuardServedModelName: GuardServedModelName, GuardWaitTries: guardHealthWaitTries,
	}
	if g := b.Guard; g != nil {
		model := guardLink
		if b.Install.Image != "" {
			model = "/model"
		}
		data.GuardArgs = g.Args(model, b.Server.Version)
		if w := b.Weights.S3URI; w != "" && strings.HasPrefix(g.Weights.S3URI, w) {
			data.GuardExclude = strings.TrimPrefix(g.Weights.S3URI, w) + "*"
		}
	}
	if b.Telemetry != nil {
		a, err := b.agent()
		if err != nil {
			return "", fmt.Errorf("boot script: %w", err)
		}
		cfg, err := a.AgentConfig()
		if err != nil {
			return "", fmt.Errorf("boot script: %w", err)
		}
		scrape, err := a.ScrapeConfig()
		if err != nil {
			return "", fmt.Errorf("boot script: %w", err)
		}
		if data.AgentConfig, err = packed(cfg); err != nil {
			return "", fmt.Errorf("boot script: packing the agent configuration: %w", err)
		}
		if data.ScrapeConfig, err = packed(scrape); err != nil {
			return "", fmt.Errorf("boot script: packing the scrape configuration: %w", err)
		}
	}
	if b.Install.Image == "" {
		data.PipPackages = append(data.PipPackages, "vllm=="+b.Server.Version.String())
		data.AptPackages = aptPackages
	} else {
		data.Registry, _, _ = strings.Cut(b.Install.Image, "/")
	}
	if b.Weights.ModelScopeID != "" || (b.Guard != nil && b.Guard.Weights.ModelScopeID != "") {
		data.PipPackages = append(data.PipPackages, "modelscope")
		if data.AptPackages == nil {
			data.AptPackages = []string{"python3-venv"}
		}
	}
	data.InstallKey = installKey(data.PipPackages, b.Install.PipIndexURL, data.AptPackages, b.Install.AptMirror, b.Install.Image)
	var buf bytes.Buffer
	if err := bootTmpl.ExecuteTemplate(&buf, "boot.sh.tmpl", data); err != nil {
		return "", fmt.Errorf("boot script: %w", err)
	}
	if z, err := compress(buf.Bytes()); err != nil {
		return "", fmt.Errorf("boot script: %w", err)
	} else if len(z) > MaxUserDataBytes {
		return "", fmt.Errorf("boot script is %d bytes gzip-compressed (%d plain), over EC2's %d-byte user data limit",
			len(z), buf.Len(), MaxUserDataBytes)
	}
	return buf.String(), nil
}

// installKey names what the install puts on the instance; its done marker
// holds it, so that a changed vLLM version, package index, mirror or image
// installs again.
func installKey(pip []string, index string, apt []string, mirror, image string) string {
	var parts []string
	if len(apt) > 0 {
		parts = append(parts, "apt="+strings.Join(apt, ","))
		if mirror != "" {
			parts = append(parts, "mirror="+mirror)
		}
	}
	if len(pip) > 0 {
		parts = append(parts, "pip="+strings.Join(pip, ","), "index="+index)
	}
	if image != "" {
		parts = append(parts, "image="+image)
	}
	return strings.Join(parts, " ")
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// ShellJoin quotes each word and joins them with spaces.
func ShellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = ShellQuote(w)
	}
	return strings.Join(out, " ")
}

// UserData is the rendered script gzip-compressed, as the launch templates
// send it.
func (b Boot) UserData() ([]byte, error) {
	s, err := b.Render()
	if err != nil {
		return nil, err
	}
	return compress([]byte(s))
}

// compress gzips b; the output is the same for the same input (no name or
// time in the header), so that an unchanged script is an unchanged launch
// template.
func compress(b []byte) ([]byte, error) {
	var out bytes.Buffer
	z, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := z.Write(b); err != nil {
		return nil, err
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
