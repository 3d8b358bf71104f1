package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// procVersion is /proc/driver/nvidia/version as the driver writes it.
func procVersion(t *testing.T, dir, version string) string {
	t.Helper()
	p := filepath.Join(dir, "version")
	require.NoError(t, os.WriteFile(p, []byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  "+version+
		"  Tue Jul  9 17:21:41 UTC 2024\nGCC version:  gcc version 10.5.0 20230707 (Red Hat 10.5.0-1) (GCC)\n"), 0o644))
	return p
}

func TestCheckDriver(t *testing.T) {
	tests := []struct {
		name, version string
		compat        bool
		wantErr       string
	}{
		{name: "550 of gpu-3-1", version: "550.90.07"},
		{name: "535 of gpu-2", version: "535.183.01"},
		{name: "470 of SageMaker's default", version: "470.256.02", wantErr: "set deepseek-r1-cn:sagemakerInferenceAmiVersion"},
		{name: "470 with forward compatibility in the image", version: "470.256.02", compat: true},
		{name: "two-part version", version: "525.60", wantErr: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			compat := filepath.Join(dir, "compat")
			if tt.compat {
				require.NoError(t, os.MkdirAll(compat, 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(compat, "libcuda.so.570.124.06"), nil, 0o644))
			}
			got, err := checkDriver(procVersion(t, dir, tt.version), compat)
			assert.Equal(t, tt.version, got)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), tt.version)
		})
	}
	t.Run("no driver file", func(t *testing.T) {
		got, err := checkDriver(filepath.Join(t.TempDir(), "none"), "")
		assert.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("unreadable content", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "version")
		require.NoError(t, os.WriteFile(p, []byte("garbage\n"), 0o644))
		_, err := checkDriver(p, "")
		assert.ErrorContains(t, err, `"garbage"`)
	})
}

// An old driver ends the entry point before vLLM starts, naming the setting.
func TestRefusesAnOldDriver(t *testing.T) {
	o := testOptions
	o.driverVersionFile = procVersion(t, t.TempDir(), "470.256.02")
	o.cudaCompatDir = filepath.Join(t.TempDir(), "compat")
	in := startWith(t, nil, o)
	assert.Equal(t, exitConfig, in.wait(30*time.Second))
	assert.Contains(t, in.stderr.String(), "sagemakerInferenceAmiVersion")
	_, err := os.Stat(filepath.Join(in.dir, "argv.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "vLLM was not started")

	o.driverVersionFile = procVersion(t, t.TempDir(), "550.90.07")
	ok := startWith(t, map[string]string{envFakeReady: "1"}, o)
	ok.waitHealthy()
	assert.Contains(t, ok.stderr.String(), "version=550.90.07")
}
