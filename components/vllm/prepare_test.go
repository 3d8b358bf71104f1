package vllm

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nvmeBoot is pipBoot on an instance type with local NVMe (g5.12xlarge).
func nvmeBoot() Boot {
	b := pipBoot()
	b.LocalNVMeGB = 3800
	return b
}

// installed makes the sandbox look installed, as the install unit leaves it.
func (s *sandbox) installed(userData string) {
	s.t.Helper()
	key := s.sourced(s.path("/etc/deepseek-r1-cn/settings"), "INSTALL_KEY")["INSTALL_KEY"]
	require.NoError(s.t, os.MkdirAll(s.path("/var/lib/deepseek-r1-cn"), 0o755))
	require.NoError(s.t, os.WriteFile(s.path("/var/lib/deepseek-r1-cn/installed"), []byte(key+"\n"), 0o644))
}

func prepared(t *testing.T, b Boot, env ...string) (*sandbox, string) {
	t.Helper()
	ud := mustRender(t, b)
	s := newSandbox(t, env...)
	s.settings(ud)
	s.installed(ud)
	return s, ud
}

// vLLM does not start before the install unit is done.
func TestPrepareWaitsForInstall(t *testing.T) {
	ud := mustRender(t, pipBoot())
	s := newSandbox(t)
	s.settings(ud)
	out, code := s.run(ud, "PREPARE")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "vLLM is not installed yet: see systemctl status "+InstallUnit)
	assert.Empty(t, s.callsOf("aws"), "nothing is copied before")
}

// On a type with NVMe, a store that is not mounted fails the start (and
// systemd retries it); the old script silently used the root volume.
func TestPrepareNVMeNotMountedFails(t *testing.T) {
	s, ud := prepared(t, nvmeBoot(), "MOUNTPOINT_EXIT=1")
	out, code := s.run(ud, "PREPARE")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "the instance store is not mounted at "+s.root+"/opt/dlami/nvme")
	assert.Len(t, s.callsOf("sleep"), nvmeWaitTries, "it waited for the mount first")
	assert.Empty(t, s.callsOf("aws"), "no weights copied")
	assert.NoDirExists(t, s.path("/opt/deepseek-r1-cn/data"), "nothing on the root volume")
}

func TestPrepareNVMeMounted(t *testing.T) {
	s, ud := prepared(t, nvmeBoot())
	out, code := s.run(ud, "PREPARE")
	require.Equal(t, 0, code, out)
	model := s.root + "/opt/dlami/nvme/deepseek-r1-cn/model"
	assert.Contains(t, s.calls(), "aws s3 sync "+testS3URI+" "+model+" --region cn-northwest-1 --only-show-errors --delete")
	link, err := os.Readlink(s.path("/opt/deepseek-r1-cn/model"))
	require.NoError(t, err)
	assert.Equal(t, model, link)
	assert.Equal(t, "the-api-key\n", s.read("/run/deepseek-r1-cn/api-key"))
	assert.Empty(t, s.callsOf("sleep"), "no wait when mounted")
}

// EBS-only types (p3) use the root volume and do not wait for a store they
// do not have.
func TestPrepareWithoutNVMe(t *testing.T) {
	s, ud := prepared(t, pipBoot(), "MOUNTPOINT_EXIT=1")
	out, code := s.run(ud, "PREPARE")
	require.Equal(t, 0, code, out)
	assert.Empty(t, s.callsOf("mountpoint"))
	assert.Contains(t, s.calls(), "aws s3 sync "+testS3URI+" "+s.root+"/opt/deepseek-r1-cn/data/model --region cn-northwest-1 --only-show-errors --delete")
}

func TestRenderNVMeOrdering(t *testing.T) {
	unit := heredocN(t, mustRender(t, nvmeBoot()), "UNIT", 2)
	assert.Contains(t, unit, "After=network-online.target multi-user.target "+InstallUnit+" dlami-nvme.service\n")
	assert.Contains(t, heredoc(t, mustRender(t, nvmeBoot()), "PREPARE"), "# This instance type has 3800 GB of NVMe instance store")

	ebs := mustRender(t, pipBoot())
	assert.NotContains(t, ebs, "dlami-nvme.service")
	assert.NotContains(t, heredoc(t, ebs, "PREPARE"), "mountpoint")
}

// The copy is exact: weights of an earlier source are removed before the new
// ones are copied, and sync deletes what is no longer under the prefix.
func TestPrepareCopyIsExact(t *testing.T) {
	s, ud := prepared(t, nvmeBoot(), "S3_FILES=config.json model-00001-of-00002.safetensors model-00002-of-00002.safetensors")
	_, code := s.run(ud, "PREPARE")
	require.Equal(t, 0, code)
	dir := s.path("/opt/dlami/nvme/deepseek-r1-cn/model")
	assert.FileExists(t, dir+"/model-00002-of-00002.safetensors")
	assert.Equal(t, testS3URI+"\n", s.read("/opt/dlami/nvme/deepseek-r1-cn/source"))

	// Same source (a restart): kept, and synced.
	_, code = s.run(ud, "PREPARE", "S3_FILES=config.json")
	require.Equal(t, 0, code)
	assert.FileExists(t, dir+"/model-00002-of-00002.safetensors", "sync --delete decides, not the script")

	// Another model: the old shards go before the copy.
	other := nvmeBoot()
	other.Weights.S3URI = "s3://deepseek-weights-123456789012/models/deepseek-ai/DeepSeek-R1-Distill-Qwen-14B/"
	ud2 := mustRender(t, other)
	s.settings(ud2)
	s.installed(ud2)
	out, code := s.run(ud2, "PREPARE", "S3_FILES=config.json model.safetensors")
	require.Equal(t, 0, code, out)
	assert.NoFileExists(t, dir+"/model-00001-of-00002.safetensors")
	assert.FileExists(t, dir+"/model.safetensors")
	assert.Equal(t, other.Weights.S3URI+"\n", s.read("/opt/dlami/nvme/deepseek-r1-cn/source"))

	for _, c := range s.callsOf("aws s3 sync") {
		assert.True(t, strings.HasSuffix(c, " --delete"), c)
	}
}

func TestPrepareModelScopeSourceChangeEmptiesDir(t *testing.T) {
	b := modelScopeBoot()
	s, ud := prepared(t, b)
	dir := s.path("/opt/deepseek-r1-cn/data/model")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(dir+"/stale.safetensors", nil, 0o644))
	require.NoError(t, os.WriteFile(dir+"/config.json", nil, 0o644))
	// A fake modelscope that downloads nothing new.
	require.NoError(t, os.MkdirAll(s.path("/opt/deepseek-r1-cn/venv/bin"), 0o755))
	require.NoError(t, os.WriteFile(s.path("/opt/deepseek-r1-cn/venv/bin/modelscope"),
		[]byte("#!/bin/bash\necho \"modelscope $*\" >>\"$SANDBOX/calls.log\"\nmkdir -p \"${@: -1}\"\ntouch \"${@: -1}/config.json\"\n"), 0o755))
	out, code := s.run(ud, "PREPARE")
	require.Equal(t, 0, code, out)
	assert.NoFileExists(t, dir+"/stale.safetensors", "no source marker: the directory is emptied")
	assert.Equal(t, "modelscope:"+testMSID+"@master\n", s.read("/opt/deepseek-r1-cn/data/source"))
	assert.Contains(t, s.calls(), "modelscope download --model "+testMSID+" --revision master --local_dir "+dir)
}

// Weights without config.json fail the start (and are retried).
func TestPrepareNeedsConfigJSON(t *testing.T) {
	s, ud := prepared(t, pipBoot(), "S3_FILES=model.safetensors")
	out, code := s.run(ud, "PREPARE")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, "no config.json in the weights from "+testS3URI)
}

// heredocN returns the body of the n-th (from 1) here-document tagged tag.
func heredocN(t *testing.T, script, tag string, n int) string {
	t.Helper()
	rest := script
	for i := 1; i < n; i++ {
		at := strings.Index(rest, "<<'"+tag+"'\n")
		require.GreaterOrEqual(t, at, 0, "fewer than %d here-documents %s", n, tag)
		rest = rest[at+len(tag)+4:]
	}
	return heredoc(t, rest, tag)
}
