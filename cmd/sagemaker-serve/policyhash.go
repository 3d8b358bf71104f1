package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

// verifyPolicySHA256 checks that the policy file is the one the deployer
// meant: the SHA-256 of its bytes, exactly as stored (what `sha256sum
// policy.yaml` prints), must be want (lower-case hex). Only policy.yaml is
// hashed: word list files it names (words.lists[].files) are not, so a
// deployer that pins the policy should keep its lists inline or accept
// that those files travel unpinned beside it.
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
