package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// minDriverMajor is the oldest NVIDIA driver branch that runs the image's
// CUDA 12 by CUDA's minor version compatibility (CUDA 12.x needs
// 525.60.13 or later; NVIDIA's CUDA Compatibility guide). SageMaker's
// default host AMI for ml.g4dn and ml.g5 endpoints has 470 (CUDA 11.4), on
// which CUDA 12 starts only with the forward-compatibility libraries
// (cuda-compat) in the image; the stack asks SageMaker for a newer host
// AMI (deepseek-r1-cn:sagemakerInferenceAmiVersion).
const minDriverMajor = 525

var driverVersion = regexp.MustCompile(`Kernel Module\s+(\d+)\.(\d+)(\.\d+)?`)

// checkDriver reads the host's NVIDIA driver version (the kernel module's,
// /proc/driver/nvidia/version) and refuses one too old for CUDA 12 unless
// the image brings the forward-compatibility libraries (compatDir holds a
// libcuda.so.*). It returns the version it read, "" when the file is not
// there (no GPU visible: vLLM reports that itself).
func checkDriver(versionFile, compatDir string) (string, error) {
	b, err := os.ReadFile(versionFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the NVIDIA driver version: %w", err)
	}
	m := driverVersion.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("no driver version in %s: %q", versionFile, firstLine(b))
	}
	version := string(m[1]) + "." + string(m[2]) + string(m[3])
	major, _ := strconv.Atoi(string(m[1]))
	if major >= minDriverMajor {
		return version, nil
	}
	if compat, _ := filepath.Glob(filepath.Join(compatDir, "libcuda.so.*")); len(compat) > 0 {
		return version, nil
	}
	return version, fmt.Errorf("the host's NVIDIA driver is %s, older than %d, the first that runs this image's "+
		"CUDA 12, and the image has no CUDA forward-compatibility libraries (%s): SageMaker's default host AMI "+
		"for ml.g4dn and ml.g5 has driver 470; set deepseek-r1-cn:sagemakerInferenceAmiVersion to "+
		"al2-ami-sagemaker-inference-gpu-3-1 (driver 550) or auto and run pulumi up", version, minDriverMajor, compatDir)
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
