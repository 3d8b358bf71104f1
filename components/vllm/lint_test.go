package vllm

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lintBoots is every mode the stacks render.
func lintBoots() map[string]Boot {
	mirror := nvmeBoot()
	mirror.Install.AptMirror = "http://mirrors.aliyun.com/ubuntu/"
	quoted := pipBoot()
	quoted.Server.ServedModelName = "it's a \"model\" $HOME 100%"
	return map[string]Boot{
		"pip": pipBoot(), "pip on NVMe with a mirror": mirror, "image": imageBoot(),
		"modelscope": modelScopeBoot(), "guardrail": guardrailBoot(), "image with guardrail": imageGuardrailBoot(),
		"quoted name": quoted,
		"telemetry":   telemetryBoot(), "image with telemetry": withTelemetry(imageBoot()),
		"image with guardrail and telemetry": withTelemetry(imageGuardrailBoot()),
		"guard model":                        guardBoot(), "image with guard model and telemetry": withTelemetry(imageGuardBoot()),
	}
}

var scriptTags = []string{"INSTALL", "PREPARE", "SERVE", "GUARDRAIL", "GUARDPREPARE", "GUARDSERVE", "GUARDWAIT"}

// The user data and every script it writes pass shellcheck, where it is
// installed (apt-get install shellcheck).
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed")
	}
	for name, b := range lintBoots() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ud := mustRender(t, b)
			args := []string{"-s", "bash"}
			if strings.Contains(b.Server.ServedModelName, "$") {
				// SC2016 (info) notes a $ in single quotes, which is the point
				// of quoting a name that has one.
				args = append(args, "-e", "SC2016")
			}
			check := func(what, script string) {
				cmd := exec.Command(sc, append(args, "-")...)
				cmd.Stdin = strings.NewReader(script)
				out, err := cmd.CombinedOutput()
				assert.NoError(t, err, "shellcheck %s:\n%s", what, out)
			}
			check("user data", ud)
			for _, tag := range scriptTags {
				if strings.Contains(ud, "<<'"+tag+"'\n") {
					check(tag, heredoc(t, ud, tag))
				}
			}
		})
	}
}

// shellcheck finds what it should: a check that cannot fail would prove
// nothing.
func TestShellcheckCatches(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed")
	}
	cmd := exec.Command(sc, "-s", "bash", "-")
	cmd.Stdin = strings.NewReader("#!/bin/bash\nrm -rf $1/x\n")
	assert.Error(t, cmd.Run())
}

// units writes the unit files of a boot script, with the scripts they run
// moved into dir, so that systemd-analyze can check that they exist.
func units(t *testing.T, userData, dir string) []string {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	for _, m := range regexp.MustCompile(`cat >/usr/local/bin/(\S+) <<'(\w+)'\n`).FindAllStringSubmatch(userData, -1) {
		require.NoError(t, os.WriteFile(filepath.Join(bin, m[1]), []byte(heredoc(t, userData, m[2])), 0o755))
	}
	guardrail := filepath.Join(bin, "guardrail")
	require.NoError(t, os.WriteFile(guardrail, []byte("#!/bin/sh\n"), 0o755))
	var files []string
	rest := userData
	for {
		m := regexp.MustCompile(`cat >/etc/systemd/system/(\S+) <<'UNIT'\n`).FindStringSubmatchIndex(rest)
		if m == nil {
			break
		}
		name := rest[m[2]:m[3]]
		body := heredoc(t, rest[m[0]:], "UNIT")
		body = strings.ReplaceAll(body, "/usr/local/bin/", bin+"/")
		body = strings.ReplaceAll(body, "/opt/deepseek-r1-cn/guardrail/guardrail", guardrail)
		body = strings.ReplaceAll(body, "/usr/bin/docker", guardrail) // where docker is not installed
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
		files = append(files, path)
		rest = rest[m[1]:]
	}
	return files
}

// The units pass systemd-analyze verify, where systemd is installed: no
// error and no warning.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	for name, b := range lintBoots() {
		t.Run(name, func(t *testing.T) {
			files := units(t, mustRender(t, b), t.TempDir())
			want := 2
			if b.Guardrail != nil {
				want++
			}
			if b.Telemetry != nil {
				want++
			}
			if b.Guard != nil {
				want++
			}
			require.Len(t, files, want)
			out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, files...)...).CombinedOutput()
			assert.NoError(t, err, "%s", out)
			assert.Empty(t, string(out))
		})
	}
}

// systemd-analyze refuses what systemd would: Restart=always is not allowed
// on a oneshot service, which is why the install retries in its script.
func TestSystemdAnalyzeCatches(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	files := units(t, mustRender(t, pipBoot()), dir)
	install := files[0]
	require.Equal(t, InstallUnit, filepath.Base(install))
	b, err := os.ReadFile(install)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(install, []byte(strings.Replace(string(b), "RemainAfterExit=yes\n", "RemainAfterExit=yes\nRestart=always\n", 1)), 0o644))
	out, err := exec.Command(sa, "verify", "--man=no", install).CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "oneshot")
}
