//go:build tools

// This file pins modules that the issue tracker's later alternatives build on
// (pulumi-eks for the EKS target), so that go.mod records the versions the
// project is tested against before the code that uses them lands. The build
// tag keeps it out of every build.
package main

import (
	_ "github.com/pulumi/pulumi-eks/sdk/v2/go/eks"
)
