package plan

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
)

// JSON is the plan as indented JSON with a trailing newline: the format of
// the golden snapshots under tests/testdata.
func (p *Plan) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteText prints the plan for a person: decisions first, then the
// resources as a tree with their inputs (long values shortened; --json has
// them whole).
func (p *Plan) WriteText(w io.Writer) {
	s := p.Sizing
	fmt.Fprintf(w, "Plan for stack %s of %s: target %s in %s (partition %s)\n\n", p.Stack, p.Project, p.Target, p.Region, p.Partition)
	fmt.Fprintf(w, "Sizing: %s on %s (%d x %s)\n", s.Model, s.InstanceType, s.GPUs, s.GPU)
	fmt.Fprintf(w, "  tensor parallel %d, pipeline parallel %d, dtype %s, gpu memory utilization %.2f\n",
		s.TensorParallelSize, s.PipelineParallelSize, s.DType, s.GPUMemoryUtilization)
	fmt.Fprintf(w, "  weights %.1f GiB, KV cache %.1f GiB = %d tokens, max model length %d\n",
		s.WeightsGiB, s.KVCacheGiB, s.KVCacheTokens, s.MaxModelLen)
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	c := p.Cost
	if c.Known {
		fmt.Fprintf(w, "\nCost: %.2f %s per hour, %.2f %s per month (730 h)\n  basis: %s\n",
			c.PerHour, c.Currency, c.PerMonth, c.Currency, c.Basis)
	} else {
		fmt.Fprintf(w, "\nCost: no estimate\n")
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}

	if len(p.Fallbacks) > 0 {
		fmt.Fprintf(w, "\nFallback instance types (launched in this order when the ones before have no capacity in any zone):\n")
		for i, f := range p.Fallbacks {
			fs := f.Sizing
			fmt.Fprintf(w, "  %d. %s (%d x %s): tensor parallel %d, pipeline parallel %d, %s, max model length %d; ",
				i+1, fs.InstanceType, fs.GPUs, fs.GPU, fs.TensorParallelSize, fs.PipelineParallelSize, fs.DType, fs.MaxModelLen)
			if f.Cost.Known {
				fmt.Fprintf(w, "%.2f %s per hour\n", f.Cost.PerHour, f.Cost.Currency)
			} else {
				fmt.Fprintf(w, "no price\n")
			}
			for _, n := range fs.Notes {
				fmt.Fprintf(w, "     note: %s\n", n)
			}
		}
	}

	fmt.Fprintf(w, "\nResources to create (%d):\n", len(p.Resources))
	children := map[string][]Resource{}
	for _, r := range p.Resources {
		children[r.Parent] = append(children[r.Parent], r)
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, r := range children[parent] {
			indent := strings.Repeat("    ", depth)
			fmt.Fprintf(w, "%s+ %s  %s", indent, r.Type, r.Name)
			if len(r.Options) > 0 {
				fmt.Fprintf(w, "  [%s]", strings.Join(r.Options, "; "))
			}
			fmt.Fprintln(w)
			keys := make([]string, 0, len(r.Inputs))
			for k := range r.Inputs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s      %s: %s\n", indent, k, short(r.Inputs[k]))
			}
			for _, n := range r.Shown {
				fmt.Fprintf(w, "%s      (%s)\n", indent, n)
			}
			if r.Name != parent {
				walk(r.Name, depth+1)
			}
		}
	}
	walk("", 0)
	fmt.Fprintf(w, "\n%s\n", p.Offline.Note)
}

// short renders a value on one line, cut to a readable length.
func short(v any) string {
	var s string
	switch t := v.(type) {
	case string:
		s = t
		if n := strings.Count(t, "\n"); n > 0 {
			first, _, _ := strings.Cut(t, "\n")
			return fmt.Sprintf("%s … (%d lines; --json shows all)", first, n+1)
		}
	default:
		b, _ := json.Marshal(t)
		s = string(b)
	}
	const max = 160
	if len(s) > max {
		return s[:max] + fmt.Sprintf("… (%d bytes; --json shows all)", len(s))
	}
	return s
}

// Exit statuses of Main. With --diff, ExitChanged tells a caller such as CI
// that the plan differs from the baseline without parsing the output.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitUsage   = 2
	ExitChanged = 3
)

// Main is `go run . plan`: it returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := fs.String("stack", "", "stack name: reads Pulumi.<stack>.yaml (required)")
	asJSON := fs.Bool("json", false, "print the plan as JSON, with every input in full (with --diff: the diff as JSON)")
	dir := fs.String("dir", ".", "directory holding Pulumi.yaml")
	diffPath := fs.String("diff", "", "compare with the baseline plan in this `file` (the --json form, such as "+
		"tests/testdata/<stack>.plan.json; an empty file is an empty plan) and print what would change")
	asMarkdown := fs.Bool("markdown", false, "with --diff: print the diff as Markdown, for a job summary or a PR comment")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run . plan --stack <name> [--json] [--dir <project dir>]")
		fmt.Fprintln(stderr, "       go run . plan --stack <name> --diff <baseline.json> [--markdown | --json] [--dir <project dir>]")
		fmt.Fprintln(stderr, "exit status: 0 planned (with --diff: nothing changed), 1 error, 2 usage error,")
		fmt.Fprintln(stderr, "             3 with --diff: the plan differs from the baseline")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *stack == "" || fs.NArg() > 0 || (*asMarkdown && (*diffPath == "" || *asJSON)) {
		fs.Usage()
		return ExitUsage
	}
	var base *Plan
	if *diffPath != "" {
		// Read the baseline first: a bad path fails before the plan runs.
		b, err := LoadPlan(*diffPath)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return ExitError
		}
		base = b
	}
	p, err := Run(*dir, *stack)
	if err != nil {
		// Pulumi wraps program errors in a list of one; show ours as is.
		var invalid *stacks.InvalidConfigError
		if errors.As(err, &invalid) {
			err = invalid
		}
		fmt.Fprintf(stderr, "error: %v\n", err)
		return ExitError
	}
	if base != nil {
		return writeDiff(Diff(base, p), *asJSON, *asMarkdown, stdout, stderr)
	}
	if *asJSON {
		b, err := p.JSON()
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return ExitError
		}
		_, _ = stdout.Write(b)
		return ExitOK
	}
	p.WriteText(stdout)
	return ExitOK
}

// writeDiff prints a diff in the chosen form and returns ExitChanged when
// anything changed.
func writeDiff(d *PlanDiff, asJSON, asMarkdown bool, stdout, stderr io.Writer) int {
	switch {
	case asJSON:
		b, err := d.JSON()
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return ExitError
		}
		_, _ = stdout.Write(b)
	case asMarkdown:
		d.Markdown(stdout)
	default:
		d.WriteText(stdout)
	}
	if d.Changed() {
		return ExitChanged
	}
	return ExitOK
}
