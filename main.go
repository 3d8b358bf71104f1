// Command deepseek-r1-cn is the Pulumi program that runs DeepSeek-R1 models
// on GPU instances in the AWS China regions.
//
//	pulumi up                          deploy the selected stack (needs the Pulumi CLI)
//	go run . plan --stack <name>       show offline what `pulumi up` would create
package main

import (
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks/plan"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "plan" {
		os.Exit(plan.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	pulumi.Run(stacks.Program)
}
