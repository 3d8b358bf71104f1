package vllm

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var stateNames = []string{"STATE", "STEP", "ATTEMPT", "INSTALL_KEY", "MESSAGE"}

// A pip install that fails (a mirror timeout) is retried with a growing wait
// until it succeeds, its progress readable in the state file meanwhile; the
// old boot script ran pip once under set -e and never again.
func TestInstallRetriesUntilPipSucceeds(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t, "PIP_FAILURES=2")
	s.settings(ud)

	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)

	assert.Equal(t, []string{"sleep 10", "sleep 20"}, s.callsOf("sleep"), "backoff doubles from 10 s")
	pips := s.callsOf("pip")
	require.Len(t, pips, 4, "two failed attempts, then pip and vLLM")
	assert.Contains(t, pips[3], "install --index-url https://mirrors.aliyun.com/pypi/simple/ --timeout 120 --retries 10 vllm==0.11.0")

	// While it waited, the state file said so.
	for i, want := range []string{"1", "2"} {
		st := s.sourced(s.path(fmt.Sprintf("state-at-sleep-%d", i+1)), stateNames...)
		assert.Equal(t, "retrying", st["STATE"])
		assert.Equal(t, "pip", st["STEP"])
		assert.Equal(t, want, st["ATTEMPT"])
		assert.Contains(t, st["MESSAGE"], "failed; next in")
	}
	st := s.sourced(s.path("/var/lib/deepseek-r1-cn/install.state"), stateNames...)
	assert.Equal(t, "installed", st["STATE"])
	key := st["INSTALL_KEY"]
	assert.Equal(t, "apt=python3-venv,python3-dev,build-essential pip=vllm==0.11.0 index=https://mirrors.aliyun.com/pypi/simple/", key)
	assert.Equal(t, key+"\n", s.read("/var/lib/deepseek-r1-cn/installed"), "the done marker")

	// Progress goes to the boot log as well as the journal (stdout).
	log := s.read("/var/log/deepseek-r1-cn-boot.log")
	assert.Contains(t, log, "pip: attempt 1 failed; next in 10s")
	assert.Contains(t, log, "pip: attempt 3")
	assert.Contains(t, log, "installed: "+key)
	assert.Contains(t, out, "pip: done")
}

// The wait doubles up to RetryMaxSeconds and stays there.
func TestInstallBackoffIsCapped(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t, "PIP_FAILURES=8")
	s.settings(ud)
	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)
	assert.Equal(t, []string{"sleep 10", "sleep 20", "sleep 40", "sleep 80", "sleep 160", "sleep 300", "sleep 300", "sleep 300"},
		s.callsOf("sleep"))
}

// Every step retries, apt included.
func TestInstallRetriesApt(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t)
	s.settings(ud)
	// apt-get fails until the flag file exists; the sleep stub creates it.
	stub := "#!/bin/bash\necho \"apt-get $*\" >>\"$SANDBOX/calls.log\"\n[ -e \"$SANDBOX/apt-ok\" ]\n"
	require.NoError(t, os.WriteFile(s.bin+"/apt-get", []byte(stub), 0o755))
	require.NoError(t, os.WriteFile(s.bin+"/sleep", []byte("#!/bin/bash\necho \"sleep $*\" >>\"$SANDBOX/calls.log\"\ntouch \"$SANDBOX/apt-ok\"\n"), 0o755))

	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)
	assert.Equal(t, []string{"sleep 10"}, s.callsOf("sleep"))
	assert.Contains(t, out, "apt: attempt 1 failed")
	assert.Contains(t, out, "apt: done")
}

// Python's headers and a compiler are installed for Triton's C stub in pip
// mode (vLLM #27890); the image has its own.
func TestInstallPythonHeaders(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t)
	s.settings(ud)
	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)
	apt := s.callsOf("apt-get")
	require.Len(t, apt, 2)
	assert.Equal(t, "apt-get -q -y -o DPkg::Lock::Timeout=600 update", apt[0])
	assert.Equal(t, "apt-get -q -y -o DPkg::Lock::Timeout=600 install --no-install-recommends python3-venv python3-dev build-essential", apt[1])
	// The headers come before vLLM.
	calls := strings.Join(s.calls(), "\n")
	assert.Less(t, strings.Index(calls, "python3-dev"), strings.Index(calls, "vllm==0.11.0"))

	for name, b := range map[string]Boot{"image": imageBoot(), "image with guardrail": imageGuardrailBoot()} {
		t.Run(name, func(t *testing.T) {
			install := heredoc(t, mustRender(t, b), "INSTALL")
			assert.NotContains(t, install, "python3-dev")
			assert.NotContains(t, install, "apt-get")
		})
	}
	t.Run("ModelScope in image mode needs only the venv module", func(t *testing.T) {
		b := imageBoot()
		b.Weights = Weights{ModelScopeID: testMSID, ModelScopeRevision: "master"}
		install := heredoc(t, mustRender(t, b), "INSTALL")
		assert.Contains(t, install, "apt_get install --no-install-recommends python3-venv\n")
	})
}

// With a mirror, apt uses only it, for the AMI's release.
func TestInstallAptMirror(t *testing.T) {
	b := pipBoot()
	b.Install.AptMirror = "http://mirrors.aliyun.com/ubuntu/"
	ud := mustRender(t, b)
	assert.Contains(t, ud, "APT_MIRROR=http://mirrors.aliyun.com/ubuntu/\n")
	s := newSandbox(t)
	s.settings(ud)
	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)
	assert.Equal(t, "deb http://mirrors.aliyun.com/ubuntu/ jammy main universe\n"+
		"deb http://mirrors.aliyun.com/ubuntu/ jammy-updates main universe\n"+
		"deb http://mirrors.aliyun.com/ubuntu/ jammy-security main universe\n",
		s.read("/etc/deepseek-r1-cn/apt-sources.list"))
	apt := s.callsOf("apt-get")
	require.NotEmpty(t, apt)
	assert.Contains(t, apt[0], "-o Dir::Etc::SourceList="+s.root+"/etc/deepseek-r1-cn/apt-sources.list -o Dir::Etc::SourceParts=- ")
	assert.Contains(t, s.read("/var/lib/deepseek-r1-cn/installed"), "mirror=http://mirrors.aliyun.com/ubuntu/")
}

// After a reboot the unit runs again: with the same pinned install it does
// nothing; a changed vLLM version installs again.
func TestInstallDoneMarker(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t)
	s.settings(ud)
	_, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code)
	before := len(s.calls())

	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)
	assert.Len(t, s.calls(), before, "nothing is run again")
	assert.Contains(t, out, "already installed")
	assert.Equal(t, "installed", s.sourced(s.path("/var/lib/deepseek-r1-cn/install.state"), "STATE")["STATE"])

	b := pipBoot()
	b.Server.Version = ver(0, 10, 2)
	newer := mustRender(t, b)
	s.settings(newer)
	out, code = s.run(newer, "INSTALL")
	require.Equal(t, 0, code, out)
	pips := s.callsOf("pip")
	assert.Contains(t, pips[len(pips)-1], "vllm==0.10.2")
	assert.Contains(t, s.read("/var/lib/deepseek-r1-cn/installed"), "vllm==0.10.2")
}

// An install interrupted before it finished (a reboot, or a kill) leaves no
// done marker, so the next run installs again.
func TestInstallWithoutMarkerRunsAgain(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t)
	s.settings(ud)
	require.NoError(t, os.MkdirAll(s.path("/var/lib/deepseek-r1-cn"), 0o755))
	require.NoError(t, os.WriteFile(s.path("/var/lib/deepseek-r1-cn/installed"), []byte("pip=vllm==0.9.0\n"), 0o644))
	_, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code)
	assert.NotEmpty(t, s.callsOf("pip"))
}

// The image path pulls in the install unit, with retries; the image must
// still be there for the install to count as done.
func TestInstallPullsImageWithRetries(t *testing.T) {
	ud := mustRender(t, imageBoot())
	s := newSandbox(t, "PULL_FAILURES=1")
	s.settings(ud)
	out, code := s.run(ud, "INSTALL")
	require.Equal(t, 0, code, out)
	assert.Equal(t, []string{"sleep 10"}, s.callsOf("sleep"))
	assert.Len(t, s.callsOf("docker pull"), 2)
	assert.Contains(t, s.calls(), "aws ecr get-login-password --region cn-northwest-1")
	assert.Contains(t, s.calls(), "docker login --username AWS --password-stdin 123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn")
	assert.Empty(t, s.callsOf("apt-get"))
	assert.Empty(t, s.callsOf("python3"))

	// Marker present but the image gone (docker image inspect fails): pull again.
	n := len(s.callsOf("docker pull"))
	_, code = s.run(ud, "INSTALL")
	require.Equal(t, 0, code)
	assert.Len(t, s.callsOf("docker pull"), n+1)
	// Image there: nothing to do.
	_, code = s.run(ud, "INSTALL", "DOCKER_IMAGE_EXIT=0")
	require.Equal(t, 0, code)
	assert.Len(t, s.callsOf("docker pull"), n+1)
}

// The user data itself downloads nothing: everything that can fail for a
// network reason is in a unit that retries it.
func TestUserDataDownloadsNothing(t *testing.T) {
	for name, b := range map[string]Boot{
		"pip": pipBoot(), "image": imageBoot(), "modelscope": modelScopeBoot(), "guardrail": guardrailBoot(),
	} {
		t.Run(name, func(t *testing.T) {
			top := outsideHeredocs(mustRender(t, b))
			for _, bad := range []string{
				"pip install", "apt-get", "aws s3", "aws ecr", "aws secretsmanager",
				"docker pull", "docker login", "modelscope download", "python3 -m venv",
			} {
				assert.NotContains(t, top, bad)
			}
			assert.Contains(t, top, "systemctl start --no-block "+InstallUnit+" vllm.service")
			assert.Contains(t, top, "systemctl enable "+InstallUnit+" vllm.service")
		})
	}
}

// Run as cloud-init would, the user data writes its files and starts the
// units, and calls nothing that needs the network.
func TestUserDataRunsOffline(t *testing.T) {
	for name, b := range map[string]Boot{"pip": nvmeBoot(), "image with guardrail": imageGuardrailBoot()} {
		t.Run(name, func(t *testing.T) {
			ud := mustRender(t, b)
			s := newSandbox(t)
			out, code := s.run(ud, "")
			require.Equal(t, 0, code, out)
			for _, c := range s.calls() {
				cmd, _, _ := strings.Cut(c, " ")
				assert.Contains(t, []string{"id", "useradd", "install", "systemctl"}, cmd, c)
			}
			assert.Contains(t, s.calls(), "systemctl start --no-block "+InstallUnit+" vllm.service")
			for _, f := range []string{"/usr/local/bin/deepseek-r1-cn-install", "/usr/local/bin/deepseek-r1-cn-prepare",
				"/usr/local/bin/deepseek-r1-cn-serve", "/etc/systemd/system/" + InstallUnit, "/etc/systemd/system/vllm.service"} {
				info, err := os.Stat(s.path(f))
				require.NoError(t, err, f)
				if strings.HasPrefix(f, "/usr/local/bin/") {
					assert.Equal(t, os.FileMode(0o755), info.Mode().Perm(), f)
				}
			}
			// What was written is the script, but for the sandbox's paths.
			written := strings.ReplaceAll(s.read("/usr/local/bin/deepseek-r1-cn-install"), s.root, "")
			assert.Equal(t, heredoc(t, ud, "INSTALL"), written)
			assert.Contains(t, s.read("/var/log/deepseek-r1-cn-boot.log"), "deepseek-r1-cn boot done")
		})
	}
}

// outsideHeredocs is the user data without the bodies of its here-documents.
func outsideHeredocs(script string) string {
	var out []string
	end := ""
	for _, line := range strings.Split(script, "\n") {
		if end != "" {
			if line == end {
				end = ""
			}
			continue
		}
		out = append(out, line)
		if i := strings.Index(line, "<<'"); i >= 0 {
			end = strings.TrimSuffix(line[i+3:], "'")
		}
	}
	return strings.Join(out, "\n")
}

func TestOutsideHeredocs(t *testing.T) {
	assert.Equal(t, "a\ncat >x <<'EOF'\nb", outsideHeredocs("a\ncat >x <<'EOF'\nhidden\nEOF\nb"))
}
