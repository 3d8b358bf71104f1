// Package stacks is the Pulumi program: it reads and checks the stack
// config, makes every sizing and placement decision, and then wires the
// components of the chosen alternative (deepseek-r1-cn:target).
package stacks

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/weights"
)

// Program is the whole Pulumi program; main.go runs it with pulumi.Run.
func Program(ctx *pulumi.Context) error { return run(ctx, nil) }

// ProgramWith is Program that also hands the deployment decisions to observe
// before any resource is registered. The offline plan uses it to print the
// sizing and cost that the program acted on.
func ProgramWith(observe func(*Deployment)) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error { return run(ctx, observe) }
}

// baseName prefixes the logical names of every component; Pulumi's URNs
// already carry the project and stack.
const baseName = "dsr1"

func run(ctx *pulumi.Context, observe func(*Deployment)) error {
	cfg, err := Load(ctx)
	if err != nil {
		return invalid(err)
	}
	d, err := Resolve(cfg)
	if err != nil {
		return invalid(err)
	}
	if observe != nil {
		observe(d)
	}
	exportDecision(ctx, d)
	switch cfg.Target {
	case "ec2":
		return deployEC2(ctx, d)
	case "sagemaker":
		return deploySageMaker(ctx, d)
	case "eks":
		return deployEKS(ctx, d)
	default:
		// Load refuses unknown targets; this is a safety net.
		return fmt.Errorf("unknown target %q", cfg.Target)
	}
}

// exportDecision exports what was decided, the same for every target.
func exportDecision(ctx *pulumi.Context, d *Deployment) {
	d.export(ctx, "target", pulumi.String(d.Config.Target))
	d.export(ctx, "region", pulumi.String(d.Region.Name))
	d.export(ctx, "partition", pulumi.String(d.Region.Partition))
	d.export(ctx, "model", pulumi.String(d.Model.Key))
	d.export(ctx, "instanceType", pulumi.String(d.Decision.InstanceType))
	notes := pulumi.StringArray{}
	for _, n := range d.Decision.Notes {
		notes = append(notes, pulumi.String(n))
	}
	d.export(ctx, "sizing", pulumi.Map{
		"gpu":                  pulumi.String(d.Decision.GPU),
		"gpus":                 pulumi.Int(d.Decision.GPUs),
		"dtype":                pulumi.String(d.Decision.DType),
		"tensorParallelSize":   pulumi.Int(d.Decision.TensorParallel),
		"pipelineParallelSize": pulumi.Int(d.Decision.PipelineParallel),
		"maxModelLen":          pulumi.Int(d.Decision.MaxModelLen),
		"kvCacheTokens":        pulumi.Int(d.Decision.KVCacheTokens),
		"weightsGiB":           pulumi.Float64(round1(d.Decision.WeightsGiB)),
		"notes":                notes,
	})
	cost := pulumi.Map{"known": pulumi.Bool(d.Cost.Known)}
	if d.Cost.Known {
		cost["perHour"] = pulumi.Float64(d.Cost.PerHour)
		cost["perMonth"] = pulumi.Float64(d.Cost.PerMonth)
		cost["currency"] = pulumi.String(d.Cost.Currency)
		cost["basis"] = pulumi.String(d.Cost.Basis)
	}
	d.export(ctx, "costEstimate", cost)
}

// newWeightsStore is the bucket of the weights (and of the guardrail's
// artifacts), new or the configured one, under prefix.
func newWeightsStore(ctx *pulumi.Context, d *Deployment, prefix string) (*weights.Store, error) {
	return weights.New(ctx, baseName+"-weights", &weights.Args{
		Region:         d.Region,
		ExistingBucket: d.Config.WeightsBucket,
		Prefix:         prefix,
		KMSKeyARN:      d.Config.KMSKeyARN,
	})
}

// exportWeights exports where the weights go and how to put them there.
func exportWeights(ctx *pulumi.Context, d *Deployment, store *weights.Store) {
	d.export(ctx, "weightsUri", store.URI)
	d.export(ctx, "stageWeightsCommands", store.URI.ApplyT(func(uri string) string {
		return StageWeightsCommands(d, uri)
	}).(pulumi.StringOutput))
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

// InvalidConfigError lists every problem found in a stack's config, one per
// line, each naming the key, the value and what would work.
type InvalidConfigError struct{ Errs []error }

func (e *InvalidConfigError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		lines[i] = "  - " + err.Error()
	}
	return "invalid stack config:\n" + strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each ConfigError.
func (e *InvalidConfigError) Unwrap() []error { return e.Errs }

func invalid(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return &InvalidConfigError{Errs: j.Unwrap()}
	}
	return &InvalidConfigError{Errs: []error{err}}
}
