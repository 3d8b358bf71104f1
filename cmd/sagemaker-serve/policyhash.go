package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail/policydigest"
)

// verifyPolicySHA256 checks that the policy file is the one the deployer
// meant: the SHA-256 of its bytes, exactly as stored (what `sha256sum
// policy.yaml` prints), must be want (lower-case hex). Only policy.yaml is
// hashed here: the word list files it names are pinned with the whole
// directory by verifyPolicyDirSHA256 (GUARDRAIL_POLICY_DIR_SHA256), which
// the Pulumi program sets beside this one.
//
// The policy arrives with the weights (an S3 prefix SageMaker copies to
// /opt/ml/model) or is baked into the image; the hash ties the running
// container to the policy the deployment was reviewed with, whichever way it
// came.
func verifyPolicySHA256(path, want string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the policy to check its SHA-256: %w", err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("policy %s has SHA-256 %s, but %s is %s: refusing to start with a policy other than the one deployed",
			path, got, envGuardrailSHA256, want)
	}
	return nil
}

// verifyPolicyDirSHA256 checks every file of the policy's directory (the
// policy and the word lists beside it) against the digest the deployer
// computed with the same function (components/guardrail/policydigest): a
// word list changed, missing or added beside the policy refuses the start.
func verifyPolicyDirSHA256(policyPath, want string) error {
	dir := filepath.Dir(policyPath)
	got, err := policydigest.Dir(dir)
	if err != nil {
		return fmt.Errorf("checking the policy directory's digest: %w", err)
	}
	if got != want {
		return fmt.Errorf("policy directory %s has digest %s, but %s is %s: refusing to start with word lists "+
			"other than the ones deployed", dir, got, envGuardrailDirSHA256, want)
	}
	return nil
}
