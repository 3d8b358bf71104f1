// Package policydigest digests a guardrail policy directory (policy.yaml and
// the word lists it names) the same way where it is deployed (the Pulumi
// program) and where it is read (the SageMaker container), without either
// side's dependencies.
package policydigest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files is the SHA-256 of the sorted lines "<name> <SHA-256 of its
// content>\n", one per file: any change to any file, and any file added or
// removed, changes it.
func Files(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + " " + SHA256(files[n]) + "\n")
	}
	return SHA256([]byte(b.String()))
}

// Dir is Files of the regular files directly in dir.
func Dir(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read policy directory: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", fmt.Errorf("read policy file: %w", err)
		}
		files[e.Name()] = b
	}
	return Files(files), nil
}

// SHA256 is the hex SHA-256 of b.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
