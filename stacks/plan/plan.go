// Package plan runs the Pulumi program offline, under Pulumi's mock engine,
// and reports what `pulumi up` would create: every resource with its inputs,
// the sizing decision and the cost estimate. It needs no AWS credentials and
// no Pulumi CLI, so a pull request can show its infrastructure change as a
// diff of plans.
package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/stacks"
)

// Plan is what `pulumi up` would do for a stack.
type Plan struct {
	Project   string      `json:"project"`
	Stack     string      `json:"stack"`
	Region    string      `json:"region"`
	Partition string      `json:"partition"`
	Target    string      `json:"target"`
	Sizing    Sizing      `json:"sizing"`
	Cost      stacks.Cost `json:"cost"`
	// Fallbacks are the instance types the ec2 target's Auto Scaling group
	// launches, in order, when the first has no capacity: each sized and
	// priced on its own.
	Fallbacks []Fallback `json:"fallbacks,omitempty"`
	Resources []Resource `json:"resources"`
	// Outputs are the stack outputs, secrets masked and values only known
	// after apply marked so.
	Outputs map[string]any  `json:"outputs,omitempty"`
	Offline OfflineStandins `json:"offline"`
}

// Sizing is the sizing decision, as the program acted on it.
type Sizing struct {
	Model                string  `json:"model"`
	InstanceType         string  `json:"instanceType"`
	GPU                  string  `json:"gpu"`
	GPUs                 int     `json:"gpus"`
	DType                string  `json:"dtype"`
	TensorParallelSize   int     `json:"tensorParallelSize"`
	PipelineParallelSize int     `json:"pipelineParallelSize"`
	GPUMemoryUtilization float64 `json:"gpuMemoryUtilization"`
	WeightsGiB           float64 `json:"weightsGiB"`
	KVCacheGiB           float64 `json:"kvCacheGiB"`
	KVCacheTokens        int     `json:"kvCacheTokens"`
	MaxModelLen          int     `json:"maxModelLen"`
	// GuardModel is the guard model beside it on the first GPU, if any.
	GuardModel *GuardModel `json:"guardModel,omitempty"`
	Notes      []string    `json:"notes,omitempty"`
}

// GuardModel is a colocated guard model's sizing.
type GuardModel struct {
	Model                string  `json:"model"`
	GPUMemoryUtilization float64 `json:"gpuMemoryUtilization"`
	GiB                  float64 `json:"gib"`
	MaxModelLen          int     `json:"maxModelLen"`
}

// Fallback is one fallback instance type.
type Fallback struct {
	Sizing Sizing      `json:"sizing"`
	Cost   stacks.Cost `json:"cost"`
}

// Resource is one registered resource.
type Resource struct {
	Type   string         `json:"type"`
	Name   string         `json:"name"`
	Parent string         `json:"parent,omitempty"`
	Inputs map[string]any `json:"inputs"`
	// Options lists the resource options a reviewer must see
	// (retainOnDelete, ignoreChanges, protect).
	Options []string `json:"options,omitempty"`
	// Shown says where the plan shows an input otherwise than it is sent
	// (a launch template's base64 user data, decoded for review).
	Shown []string `json:"shown,omitempty"`
	// Dependencies are the logical names of the resources it waits for:
	// its dependsOn option and those its inputs come from, as the SDK sends
	// them to the engine. For tests of creation order; not part of the plan
	// document.
	Dependencies []string `json:"-"`
}

// OfflineStandins says which values in the plan are stand-ins for what AWS
// would answer: a plan must never pass one off as real.
type OfflineStandins struct {
	Note    string `json:"note"`
	Account string `json:"account"`
}

// Run plans a stack from the project in dir.
func Run(dir, stack string) (*Plan, error) {
	sc, err := LoadStackConfig(dir, stack)
	if err != nil {
		return nil, err
	}
	return RunConfig(sc)
}

// RunConfig plans an already loaded stack config against the default
// stand-in of the region (DefaultCatalog).
func RunConfig(sc *StackConfig) (*Plan, error) {
	return RunConfigWith(sc, nil)
}

// RunConfigWith plans a stack config against the given stand-in of AWS;
// nil is the region's DefaultCatalog.
func RunConfigWith(sc *StackConfig, aws *Catalog) (*Plan, error) {
	if aws == nil {
		aws = DefaultCatalog(sc.Values["aws:region"], offeredOverride(sc.Values))
	}
	m := newMocks(sc.Values["aws:region"], aws)
	var dep *stacks.Deployment
	withConfig := func(info *pulumi.RunInfo) {
		info.Config = sc.Values
		info.ConfigSecretKeys = sc.SecretKeys
		info.DryRun = true
		info.MonitorAddr, info.EngineAddr = "", ""
	}
	program := stacks.ProgramWith(func(d *stacks.Deployment) { dep = d })
	var outputs map[string]any
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		// Stand-ins for remote components register their own children.
		m.ctx = ctx
		if err := program(ctx); err != nil {
			return err
		}
		var err error
		if dep != nil {
			outputs, err = awaitExports(ctx, dep.Exports)
		}
		return err
	}, pulumi.WithMocks(sc.Project, sc.Stack, m), withConfig)
	if err != nil {
		return nil, &ProgramError{Err: err, Registered: len(m.resources())}
	}
	if dep == nil {
		return nil, fmt.Errorf("the program registered nothing for stack %s", sc.Stack)
	}
	p := &Plan{
		Project: sc.Project, Stack: sc.Stack,
		Region: dep.Region.Name, Partition: dep.Region.Partition, Target: dep.Config.Target,
		Sizing:    sizingOf(dep.Decision),
		Cost:      dep.Cost,
		Resources: m.resources(),
		Outputs:   outputs,
		Offline: OfflineStandins{
			Account: mockAccount,
			Note: "Planned without AWS. Ids, ARNs, generated names and data-source answers (the AMI, " +
				"the zones that offer the instance type, the account " + mockAccount + ") are offline stand-ins; " +
				"`pulumi preview` shows the real ones.",
		},
	}
	if dep.EC2 != nil {
		for _, f := range dep.EC2.Fallbacks {
			p.Fallbacks = append(p.Fallbacks, Fallback{Sizing: sizingOf(f.Decision), Cost: f.Cost})
		}
	}
	return p, nil
}

func sizingOf(d sizing.Decision) Sizing {
	s := Sizing{
		Model: d.Model, InstanceType: d.InstanceType, GPU: d.GPU, GPUs: d.GPUs, DType: d.DType,
		TensorParallelSize: d.TensorParallel, PipelineParallelSize: d.PipelineParallel,
		GPUMemoryUtilization: d.GPUMemoryUtilization,
		WeightsGiB:           round2(d.WeightsGiB), KVCacheGiB: round2(d.KVCacheGiB),
		KVCacheTokens: d.KVCacheTokens, MaxModelLen: d.MaxModelLen, Notes: d.Notes,
	}
	if c := d.Colocated; c != nil {
		s.GuardModel = &GuardModel{Model: c.Model, GPUMemoryUtilization: c.GPUMemoryUtilization, GiB: round2(c.GiB), MaxModelLen: c.MaxModelLen}
	}
	return s
}

// awaitExports resolves the stack outputs the program exported.
func awaitExports(ctx *pulumi.Context, exports map[string]pulumi.Input) (map[string]any, error) {
	out := make(map[string]any, len(exports))
	for name, v := range exports {
		r, err := internals.UnsafeAwaitOutput(ctx.Context(), pulumi.ToOutput(v))
		if err != nil {
			return nil, fmt.Errorf("stack output %s: %w", name, err)
		}
		switch {
		case r.Secret:
			out[name] = SecretMask
		case !r.Known:
			out[name] = Unknown
		default:
			out[name] = jsonValue(r.Value)
		}
	}
	return out, nil
}

// jsonValue turns an output's Go value into plain JSON values.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Sprint(v)
	}
	return out
}

// ProgramError is the program failing under the plan. Registered counts
// the resources it had registered by then: config errors must come before
// the first one.
type ProgramError struct {
	Err        error
	Registered int
}

func (e *ProgramError) Error() string { return e.Err.Error() }

func (e *ProgramError) Unwrap() error { return e.Err }

// offeredOverride reads deepseek-r1-cn:offeredInstanceTypes, the user's
// statement of what AWS offers them; the program reports a malformed one.
func offeredOverride(values map[string]string) []string {
	var out []string
	if v := values[stacks.Namespace+":offeredInstanceTypes"]; v != "" {
		_ = json.Unmarshal([]byte(v), &out)
	}
	return out
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }

// recorder collects resources as the mock engine registers them.
type recorder struct {
	mu   sync.Mutex
	list []Resource
}

func (r *recorder) add(res Resource) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, res)
}

func (r *recorder) resources() []Resource {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Resource(nil), r.list...)
	// Registration order depends on goroutine scheduling; sort so that a
	// plan is a stable, diffable document.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// parentName is the logical name in a parent URN
// (urn:pulumi:stack::project::type$type::name).
func parentName(urn string) string {
	if urn == "" {
		return ""
	}
	i := strings.LastIndex(urn, "::")
	if i < 0 {
		return urn
	}
	t := urn[:i]
	if j := strings.LastIndex(t, "::"); j >= 0 {
		t = t[j+2:]
	}
	if k := strings.LastIndex(t, "$"); k >= 0 {
		t = t[k+1:]
	}
	if t == string(resource.RootStackType) {
		return ""
	}
	return urn[i+2:]
}
