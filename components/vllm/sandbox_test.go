package vllm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sandbox runs the scripts of a rendered boot script under bash with the
// instance's paths moved into a temporary directory and the commands that
// reach the network, the GPU or root replaced by stubs on PATH that record
// their arguments in calls.log.
type sandbox struct {
	t    *testing.T
	bash string
	root string
	bin  string
	env  []string
}

// instancePaths are the absolute paths the scripts use, moved under the
// sandbox's root.
var instancePaths = []string{
	"/etc/deepseek-r1-cn", "/var/lib/deepseek-r1-cn", "/var/log/", "/opt/deepseek-r1-cn",
	"/opt/dlami/nvme", "/run/deepseek-r1-cn", "/etc/os-release", "/usr/local/bin/", "/etc/systemd/system/",
	"/opt/aws/", "/etc/logrotate.d/",
}

// stubs record their arguments; some also act, so that the script under test
// sees the effect it expects.
var stubs = map[string]string{
	// sleep returns at once and keeps a copy of the install's state file,
	// which is what an operator would read while it waits.
	"sleep": `n=$(grep -c '^sleep ' "$SANDBOX/calls.log")
cp "$SANDBOX/var/lib/deepseek-r1-cn/install.state" "$SANDBOX/state-at-sleep-$n" 2>/dev/null || true`,
	"apt-get": `exit "${APT_EXIT:-0}"`,
	// python3 -m venv DIR creates a pip that fails PIP_FAILURES times, then succeeds.
	"python3": `if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/bash\necho "pip $*" >>"$SANDBOX/calls.log"\nn=$(grep -c "^pip " "$SANDBOX/calls.log")\n[ "$n" -gt "${PIP_FAILURES:-0}" ]\n' >"$3/bin/pip"
  chmod +x "$3/bin/pip"
fi`,
	"aws": `case "$1 $2" in
  "s3 sync") mkdir -p "$4"; for f in ${S3_FILES:-config.json}; do echo "$3$f" >"$4/$f"; done ;;
  "secretsmanager get-secret-value") echo the-api-key ;;
  "ecr get-login-password") echo token ;;
esac
exit "${AWS_EXIT:-0}"`,
	"docker": `case "$1" in
  image) exit "${DOCKER_IMAGE_EXIT:-1}" ;;
  pull) n=$(grep -c '^docker pull' "$SANDBOX/calls.log"); [ "$n" -gt "${PULL_FAILURES:-0}" ] ;;
  login) cat >/dev/null ;;
esac`,
	"mountpoint": `exit "${MOUNTPOINT_EXIT:-0}"`,
	"install": `dir=0 args=()
while [ $# -gt 0 ]; do case "$1" in -d) dir=1 ;; -o|-g|-m) shift ;; *) args+=("$1") ;; esac; shift; done
if [ "$dir" = 1 ]; then mkdir -p "${args[@]}"; else cp "${args[0]}" "${args[1]}"; fi`,
	"chown":     ``,
	"systemctl": ``,
	"useradd":   ``,
	"id":        `exit 1`,
}

func newSandbox(t *testing.T, env ...string) *sandbox {
	t.Helper()
	s := &sandbox{t: t, bash: requireBash(t), root: t.TempDir()}
	s.bin = filepath.Join(s.root, "stub-bin")
	require.NoError(t, os.MkdirAll(s.bin, 0o755))
	for name, body := range stubs {
		script := "#!/bin/bash\necho \"" + name + " $*\" >>\"$SANDBOX/calls.log\"\n" + body + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(s.bin, name), []byte(script), 0o755))
	}
	for _, d := range []string{"etc/deepseek-r1-cn", "var/log", "opt/deepseek-r1-cn", "usr/local/bin", "etc/systemd/system", "etc/logrotate.d"} {
		require.NoError(t, os.MkdirAll(filepath.Join(s.root, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(s.root, "etc/os-release"), []byte("VERSION_CODENAME=jammy\n"), 0o644))
	s.env = append([]string{"PATH=" + s.bin + ":" + os.Getenv("PATH"), "SANDBOX=" + s.root}, env...)
	return s
}

// rebase moves the instance's paths in a script into the sandbox.
func (s *sandbox) rebase(script string) string {
	for _, p := range instancePaths {
		script = strings.ReplaceAll(script, p, s.root+p)
	}
	return strings.ReplaceAll(script, "/usr/bin/docker", "docker")
}

// install writes the settings of a rendered boot script into the sandbox.
func (s *sandbox) settings(userData string) {
	s.t.Helper()
	require.NoError(s.t, os.WriteFile(s.path("/etc/deepseek-r1-cn/settings"), []byte(heredoc(s.t, userData, "SETTINGS")), 0o644))
}

// run runs the here-document tag of userData, or all of it for tag ""; it
// returns the output and the exit status.
func (s *sandbox) run(userData, tag string, env ...string) (string, int) {
	s.t.Helper()
	script := userData
	if tag != "" {
		script = heredoc(s.t, userData, tag)
	}
	cmd := exec.Command(s.bash, "-c", s.rebase(script))
	cmd.Env = append(append(os.Environ(), s.env...), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	require.NoError(s.t, err, string(out))
	return string(out), 0
}

// path is where an instance path is in the sandbox.
func (s *sandbox) path(p string) string { return filepath.Join(s.root, p) }

// calls are the stubbed commands run so far, one per line.
func (s *sandbox) calls() []string {
	b, err := os.ReadFile(s.path("calls.log"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(s.t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// callsOf are the calls of one command.
func (s *sandbox) callsOf(name string) []string {
	var out []string
	for _, c := range s.calls() {
		if strings.HasPrefix(c, name+" ") {
			out = append(out, c)
		}
	}
	return out
}

// sourced reads a file of shell assignments (the install state) back.
func (s *sandbox) sourced(file string, names ...string) map[string]string {
	s.t.Helper()
	script := ". " + ShellQuote(file) + "\n"
	for _, n := range names {
		script += "printf '%s\\0' \"$" + n + "\"\n"
	}
	out, err := exec.Command(s.bash, "-c", script).Output()
	require.NoError(s.t, err)
	values := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	require.Len(s.t, values, len(names))
	m := map[string]string{}
	for i, n := range names {
		m[n] = values[i]
	}
	return m
}

func (s *sandbox) read(p string) string {
	s.t.Helper()
	b, err := os.ReadFile(s.path(p))
	require.NoError(s.t, err)
	return string(b)
}

// writeStub replaces a stub of the sandbox.
func writeStub(t *testing.T, s *sandbox, name, script string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(s.bin, name), []byte(script), 0o755))
}

// writeFile writes a file, making its directory.
func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

func execBash(bash, script string) (string, error) {
	out, err := exec.Command(bash, "-c", script).CombinedOutput()
	return string(out), err
}
