package vllm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

const testStack = "prod"

// withTelemetry adds the CloudWatch agent to a boot.
func withTelemetry(b Boot) Boot {
	b.Telemetry = &Telemetry{Stack: testStack, AgentPackageS3URI: telemetry.DefaultAgentPackage(b.Region)}
	return b
}

// telemetryBoot is the gateway in front of pip-installed vLLM, with the agent.
func telemetryBoot() Boot { return withTelemetry(guardrailBoot()) }

// unpacked decodes a packed here-document of the user data.
func unpacked(t *testing.T, userData, tag string) string {
	t.Helper()
	gz, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(heredoc(t, userData, tag), "\n", ""))
	require.NoError(t, err)
	r, err := gzip.NewReader(bytes.NewReader(gz))
	require.NoError(t, err)
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

// agentFor is the agent configuration the telemetry package renders for b.
func agentFor(t *testing.T, b Boot) telemetry.EC2Agent {
	t.Helper()
	a := telemetry.EC2Agent{Region: b.Region, Stack: b.Telemetry.Stack, VLLMPort: b.Server.Port}
	if b.Guardrail != nil {
		a.GatewayPort = 8000
	}
	return a
}

// The user data carries the agent configuration and scrape configuration
// of the telemetry package, the settings, the telemetry unit and its
// start, and log rotation.
func TestRenderTelemetry(t *testing.T) {
	for name, b := range map[string]Boot{"pip with gateway": telemetryBoot(), "image alone": withTelemetry(imageBoot())} {
		t.Run(name, func(t *testing.T) {
			ud := mustRender(t, b)
			a := agentFor(t, b)
			cfg, err := a.AgentConfig()
			require.NoError(t, err)
			scrape, err := a.ScrapeConfig()
			require.NoError(t, err)
			assert.Equal(t, cfg, unpacked(t, ud, "CWAGENT"))
			assert.Equal(t, scrape, unpacked(t, ud, "SCRAPE"))

			// The configuration names the stack's log groups and namespace.
			var parsed map[string]any
			require.NoError(t, json.Unmarshal([]byte(unpacked(t, ud, "CWAGENT")), &parsed))
			assert.Contains(t, cfg, `"namespace":"DeepSeekR1CN/prod"`)
			groups, err := telemetry.EC2LogGroups(testStack, b.Guardrail != nil)
			require.NoError(t, err)
			for _, g := range groups {
				assert.Contains(t, cfg, `"log_group_name":"`+g.Name+`"`)
			}

			for _, want := range []string{
				"CW_AGENT_PACKAGE=s3://amazoncloudwatch-agent-cn-northwest-1/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb\n",
				"CW_AGENT_SHA256=''\n",
				"base64 -d >/etc/deepseek-r1-cn/cloudwatch-agent.json.gz <<'CWAGENT'\n",
				"gunzip -f /etc/deepseek-r1-cn/cloudwatch-agent.json.gz /etc/deepseek-r1-cn/prometheus.yaml.gz\n",
				"systemctl enable " + InstallUnit + " vllm.service " + TelemetryUnit + "\n",
				"systemctl start --no-block " + InstallUnit + " vllm.service " + TelemetryUnit + "\n",
				"ExecStart=/usr/local/bin/deepseek-r1-cn-install telemetry\n",
				"retry cloudwatch-agent cw_install\n",
				"retry cloudwatch-agent-config " + telemetry.AgentCtl + " -a fetch-config -m ec2 -c file:" + telemetry.AgentConfigFile + " -s\n",
				"exec > >(tee -a /var/log/deepseek-r1-cn/vllm.log) 2>&1\n",
				"copytruncate",
			} {
				assert.Contains(t, ud, want)
			}
			assert.Contains(t, heredoc(t, ud, "LOGROTATE"), "/var/log/deepseek-r1-cn/*.log /var/log/deepseek-r1-cn-boot.log {\n")
			bashSyntaxOK(t, requireBash(t), "install script", heredoc(t, ud, "INSTALL"))
		})
	}
}

// With the gateway, its stderr goes to the journal and a file, its audit
// log to the file the agent ships, which the sandboxed unit may write.
func TestRenderTelemetryGateway(t *testing.T) {
	ud := mustRender(t, telemetryBoot())
	assert.Contains(t, ud, "ExecStart=/bin/bash -c 'exec 2> >(tee -a /var/log/deepseek-r1-cn/guardrail.log >&2); "+
		"exec /opt/deepseek-r1-cn/guardrail/guardrail -listen 0.0.0.0:8000 -upstream http://127.0.0.1:8001 "+
		"-policy /etc/deepseek-r1-cn/guardrail/policy.yaml -api-keys-file /run/deepseek-r1-cn-guardrail/api-key "+
		"-upstream-api-key-file /run/deepseek-r1-cn-guardrail/api-key -audit-log /var/log/deepseek-r1-cn/guardrail-audit.log'\n")
	assert.Contains(t, ud, "ReadWritePaths=/var/log/deepseek-r1-cn\n")
	// The command bash runs is the gateway with its flags, as one word each.
	line := ud[strings.Index(ud, "ExecStart=/bin/bash -c '"):]
	line = line[:strings.Index(line, "\n")]
	inner := strings.TrimSuffix(strings.TrimPrefix(line, "ExecStart=/bin/bash -c '"), "'")
	out, err := exec.Command(requireBash(t), "-c", "set -- "+inner[strings.Index(inner, "exec /opt")+len("exec "):]+"; printf '%s\\n' \"$@\"").CombinedOutput()
	require.NoError(t, err, string(out))
	words := strings.Split(strings.TrimSpace(string(out)), "\n")
	assert.Equal(t, []string{"/opt/deepseek-r1-cn/guardrail/guardrail", "-listen", "0.0.0.0:8000"}, words[:3])
	assert.Equal(t, []string{"-audit-log", telemetry.AuditLogFile}, words[len(words)-2:])
}

// Without telemetry nothing of it is rendered: the user data is what it was.
func TestRenderWithoutTelemetry(t *testing.T) {
	for name, b := range map[string]Boot{"pip": pipBoot(), "image with guardrail": imageGuardrailBoot()} {
		t.Run(name, func(t *testing.T) {
			ud := mustRender(t, b)
			for _, bad := range []string{"cloudwatch", "CW_AGENT", "/var/log/deepseek-r1-cn/", "-audit-log", "logrotate",
				TelemetryUnit, "ReadWritePaths", "telemetry"} {
				assert.NotContains(t, ud, bad)
			}
			assert.NotContains(t, ud, "state=\"$state_dir/${1:-install}.state\"")
		})
	}
}

func TestValidateTelemetry(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Boot)
		want   string
	}{
		{"fine", func(*Boot) {}, ""},
		{"no package: the AMI's agent", func(b *Boot) { b.Telemetry.AgentPackageS3URI = "" }, ""},
		{"with a hash", func(b *Boot) { b.Telemetry.AgentPackageSHA256 = strings.Repeat("0f", 32) }, ""},
		{"no stack", func(b *Boot) { b.Telemetry.Stack = "" }, "the stack name is empty"},
		{"stack with a star", func(b *Boot) { b.Telemetry.Stack = "a*b" }, "is not allowed"},
		{"stack with a space", func(b *Boot) { b.Telemetry.Stack = "a b" }, "want 1-512 of letters"},
		{"package over https", func(b *Boot) { b.Telemetry.AgentPackageS3URI = "https://example.com/a.deb" }, "is not an s3://bucket/key URI"},
		{"package with a quote", func(b *Boot) { b.Telemetry.AgentPackageS3URI = "s3://bucket/a'$(id).deb" }, "is not an s3://bucket/key URI"},
		{"bucket alone", func(b *Boot) { b.Telemetry.AgentPackageS3URI = "s3://bucket" }, "is not an s3://bucket/key URI"},
		{"short hash", func(b *Boot) { b.Telemetry.AgentPackageSHA256 = "abc" }, "is not 64 hex digits"},
		{"upper-case hash", func(b *Boot) { b.Telemetry.AgentPackageSHA256 = strings.Repeat("AB", 32) }, "is not 64 hex digits"},
		{"gateway without a port", func(b *Boot) { b.Guardrail.Listen = "0.0.0.0" }, "listen address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := telemetryBoot()
			tc.mutate(&b)
			_, err := b.Render()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.ErrorContains(t, b.Validate(), tc.want)
		})
	}
}

// runTelemetry runs the install script as the telemetry unit does.
func runTelemetry(t *testing.T, s *sandbox, userData string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(s.bash, "-c", s.rebase(heredoc(t, userData, "INSTALL")), "deepseek-r1-cn-install", "telemetry")
	cmd.Env = append(append(os.Environ(), s.env...), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err, string(out))
	return string(out), 0
}

// ctlStub is the agent's control script: it records its calls and fails
// CTL_FAILURES times.
const ctlStub = `#!/bin/bash
echo "cwagent-ctl $*" >>"$SANDBOX/calls.log"
n=$(grep -c '^cwagent-ctl ' "$SANDBOX/calls.log")
[ "$n" -gt "${CTL_FAILURES:-0}" ]
`

// agentSandbox has aws s3 cp write the package (failing CP_FAILURES
// times), and dpkg install the control script from it.
func agentSandbox(t *testing.T, env ...string) *sandbox {
	t.Helper()
	s := newSandbox(t, env...)
	writeStub(t, s, "aws", `#!/bin/bash
echo "aws $*" >>"$SANDBOX/calls.log"
if [ "$1 $2" = "s3 cp" ]; then
  n=$(grep -c '^aws s3 cp' "$SANDBOX/calls.log")
  [ "$n" -gt "${CP_FAILURES:-0}" ] || exit 1
  cat "$SANDBOX/package-content" >"$4" 2>/dev/null || echo the-package >"$4"
fi
`)
	ctl := s.path(telemetry.AgentCtl)
	writeStub(t, s, "dpkg", `#!/bin/bash
echo "dpkg $*" >>"$SANDBOX/calls.log"
mkdir -p "$(dirname `+ShellQuote(ctl)+`)"
cat >`+ShellQuote(ctl)+` <<'CTL'
`+ctlStub+`CTL
chmod +x `+ShellQuote(ctl)+`
`)
	return s
}

var telemetryStateNames = []string{"STATE", "STEP", "ATTEMPT", "MESSAGE"}

// Without an agent on the AMI, the package is fetched from the region's S3
// and installed; a failed download is retried with the install's backoff,
// its progress in telemetry.state; then the agent is started with the
// stack's configuration.
func TestTelemetryInstallsAgentWithRetries(t *testing.T) {
	ud := mustRender(t, telemetryBoot())
	s := agentSandbox(t, "CP_FAILURES=2")
	s.settings(ud)
	out, code := runTelemetry(t, s, ud)
	require.Equal(t, 0, code, out)

	assert.Equal(t, []string{"sleep 10", "sleep 20"}, s.callsOf("sleep"))
	cps := s.callsOf("aws s3 cp")
	require.Len(t, cps, 3)
	assert.Equal(t, "aws s3 cp s3://amazoncloudwatch-agent-cn-northwest-1/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb "+
		s.path("/var/lib/deepseek-r1-cn/cwagent.deb")+" --region cn-northwest-1 --only-show-errors", cps[2])
	assert.Equal(t, []string{"dpkg -i -E " + s.path("/var/lib/deepseek-r1-cn/cwagent.deb")}, s.callsOf("dpkg"))
	assert.Equal(t, []string{"cwagent-ctl -a fetch-config -m ec2 -c file:" + s.path(telemetry.AgentConfigFile) + " -s"},
		s.callsOf("cwagent-ctl"))
	// The agent starts after it is installed.
	calls := strings.Join(s.calls(), "\n")
	assert.Less(t, strings.Index(calls, "dpkg "), strings.Index(calls, "cwagent-ctl "))

	st := s.sourced(s.path("/var/lib/deepseek-r1-cn/telemetry.state"), telemetryStateNames...)
	assert.Equal(t, "running", st["STATE"])
	assert.NoFileExists(t, s.path("/var/lib/deepseek-r1-cn/install.state"), "the vLLM install's state is its own")
	assert.NoFileExists(t, s.path("/var/lib/deepseek-r1-cn/installed"))
	log := s.read("/var/log/deepseek-r1-cn-boot.log")
	assert.Contains(t, log, "cloudwatch-agent: attempt 1 failed; next in 10s")
	assert.Contains(t, log, "cloudwatch-agent-config: done")
}

// The AMI's agent is used as it is: nothing is downloaded or installed.
func TestTelemetryUsesTheAMIAgent(t *testing.T) {
	ud := mustRender(t, telemetryBoot())
	s := agentSandbox(t)
	s.settings(ud)
	require.NoError(t, writeFile(s.path(telemetry.AgentCtl), ctlStub))
	require.NoError(t, os.Chmod(s.path(telemetry.AgentCtl), 0o755))
	out, code := runTelemetry(t, s, ud)
	require.Equal(t, 0, code, out)
	assert.Empty(t, s.callsOf("aws"))
	assert.Empty(t, s.callsOf("dpkg"))
	assert.Len(t, s.callsOf("cwagent-ctl"), 1)
}

// A failing fetch-config (the agent's service not up yet) is retried too.
func TestTelemetryRetriesTheConfiguration(t *testing.T) {
	ud := mustRender(t, telemetryBoot())
	s := agentSandbox(t, "CTL_FAILURES=1")
	s.settings(ud)
	out, code := runTelemetry(t, s, ud)
	require.Equal(t, 0, code, out)
	assert.Len(t, s.callsOf("cwagent-ctl"), 2)
	assert.Equal(t, []string{"sleep 10"}, s.callsOf("sleep"))
	assert.Contains(t, out, "cloudwatch-agent-config: attempt 1 failed")
}

// With a hash, a package that does not match is not installed; the next
// download is checked again.
func TestTelemetryChecksThePackage(t *testing.T) {
	good := "the agent package\n"
	sum := sha256.Sum256([]byte(good))
	b := telemetryBoot()
	b.Telemetry.AgentPackageSHA256 = hex.EncodeToString(sum[:])
	ud := mustRender(t, b)
	s := agentSandbox(t)
	s.settings(ud)
	require.NoError(t, os.WriteFile(s.path("package-content"), []byte("tampered\n"), 0o644))
	// The first wait swaps in the good copy.
	writeStub(t, s, "sleep", "#!/bin/bash\necho \"sleep $*\" >>\"$SANDBOX/calls.log\"\nprintf '"+strings.TrimSuffix(good, "\n")+"\\n' >\"$SANDBOX/package-content\"\n")
	out, code := runTelemetry(t, s, ud)
	require.Equal(t, 0, code, out)
	assert.Len(t, s.callsOf("aws s3 cp"), 2)
	assert.Len(t, s.callsOf("dpkg"), 1, "only the good copy is installed")
	calls := strings.Join(s.calls(), "\n")
	assert.Less(t, strings.Index(calls, "sleep 10"), strings.Index(calls, "dpkg "))
	assert.Contains(t, out, "cloudwatch-agent: attempt 1 failed")
}

// With neither an agent on the AMI nor a package, the unit says so and
// keeps trying (an operator may install the agent by hand).
func TestTelemetryWithoutAgentOrPackage(t *testing.T) {
	b := telemetryBoot()
	b.Telemetry.AgentPackageS3URI = ""
	ud := mustRender(t, b)
	s := agentSandbox(t)
	s.settings(ud)
	ctl := s.path(telemetry.AgentCtl)
	writeStub(t, s, "sleep", "#!/bin/bash\necho \"sleep $*\" >>\"$SANDBOX/calls.log\"\nmkdir -p "+
		ShellQuote(filepath.Dir(ctl))+"\nprintf '%s' "+ShellQuote(ctlStub)+" >"+ShellQuote(ctl)+"\nchmod +x "+ShellQuote(ctl)+"\n")
	out, code := runTelemetry(t, s, ud)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "no CloudWatch agent on this AMI and no package to install")
	assert.Empty(t, s.callsOf("aws"))
	assert.Len(t, s.callsOf("cwagent-ctl"), 1)
}

// Run as cloud-init would, the user data writes the agent's configuration,
// the scrape configuration, the rotation and the unit, and starts the unit
// without touching the network.
func TestUserDataWithTelemetryRunsOffline(t *testing.T) {
	b := withTelemetry(imageGuardrailBoot())
	ud := mustRender(t, b)
	s := newSandbox(t)
	out, code := s.run(ud, "")
	require.Equal(t, 0, code, out)
	for _, c := range s.calls() {
		cmd, _, _ := strings.Cut(c, " ")
		assert.Contains(t, []string{"id", "useradd", "install", "systemctl"}, cmd, c)
	}
	assert.Contains(t, s.calls(), "systemctl start --no-block "+InstallUnit+" vllm.service "+TelemetryUnit)
	a := agentFor(t, b)
	cfg, err := a.AgentConfig()
	require.NoError(t, err)
	scrape, err := a.ScrapeConfig()
	require.NoError(t, err)
	assert.Equal(t, cfg, s.read(telemetry.AgentConfigFile))
	assert.Equal(t, scrape, s.read(telemetry.ScrapeConfigFile))
	assert.NoFileExists(t, s.path(telemetry.AgentConfigFile+".gz"))
	assert.Contains(t, s.read("/etc/logrotate.d/deepseek-r1-cn"), "copytruncate")
	assert.Contains(t, strings.ReplaceAll(s.read("/etc/systemd/system/"+TelemetryUnit), s.root, ""),
		"ExecStart=/usr/local/bin/deepseek-r1-cn-install telemetry\n")
}

// vLLM's output goes to the journal (the script's stdout) and to the file
// the agent ships, which the prepare script creates for the vllm user.
func TestServeWritesTheLogFile(t *testing.T) {
	ud := mustRender(t, withTelemetry(pipBoot()))
	s := newSandbox(t)
	require.NoError(t, writeFile(s.path("/run/deepseek-r1-cn/api-key"), "k\n"))
	vllmBin := s.path("/opt/deepseek-r1-cn/venv/bin/vllm")
	require.NoError(t, writeFile(vllmBin, "#!/bin/bash\necho \"vllm out $1\"\necho 'vllm err' >&2\n"))
	require.NoError(t, os.Chmod(vllmBin, 0o755))
	require.NoError(t, os.MkdirAll(s.path(telemetry.LogDir), 0o755))
	out, code := s.run(ud, "SERVE")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "vllm out serve")
	assert.Contains(t, out, "vllm err")
	// tee may still be writing when bash returns.
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(s.path(telemetry.VLLMLogFile))
		return strings.Contains(string(b), "vllm out serve") && strings.Contains(string(b), "vllm err")
	}, 5e9, 1e7)
}

func TestPrepareCreatesTheLogFile(t *testing.T) {
	s, ud := prepared(t, withTelemetry(pipBoot()))
	out, code := s.run(ud, "PREPARE")
	require.Equal(t, 0, code, out)
	assert.FileExists(t, s.path(telemetry.VLLMLogFile))
	assert.Contains(t, s.calls(), "chown vllm:vllm "+s.path(telemetry.VLLMLogFile))
	// An existing log is appended to, not truncated.
	require.NoError(t, os.WriteFile(s.path(telemetry.VLLMLogFile), []byte("earlier\n"), 0o644))
	_, code = s.run(ud, "PREPARE")
	require.Equal(t, 0, code)
	assert.Equal(t, "earlier\n", s.read(telemetry.VLLMLogFile))
}

func TestGuardrailPrepareCreatesTheLogFiles(t *testing.T) {
	ud := mustRender(t, telemetryBoot())
	s := newSandbox(t)
	s.settings(ud)
	writeStub(t, s, "aws", "#!/bin/bash\necho \"aws $*\" >>\"$SANDBOX/calls.log\"\n"+
		"case \"$1 $2\" in \"s3 cp\") echo x >\"$4\" ;; \"secretsmanager get-secret-value\") echo k ;; esac\n")
	writeStub(t, s, "chmod", "#!/bin/bash\necho \"chmod $*\" >>\"$SANDBOX/calls.log\"\n")
	out, code := s.run(ud, "GUARDRAIL")
	require.Equal(t, 0, code, out)
	assert.FileExists(t, s.path(telemetry.GatewayLogFile))
	assert.FileExists(t, s.path(telemetry.AuditLogFile))
	assert.Contains(t, s.calls(), "chown guardrail:guardrail "+s.path(telemetry.GatewayLogFile)+" "+s.path(telemetry.AuditLogFile))
	assert.Contains(t, s.calls(), "chmod 0640 "+s.path(telemetry.AuditLogFile))
}
