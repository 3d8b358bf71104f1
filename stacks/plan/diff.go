package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// The offline diff compares two plans the way `pulumi preview --diff`
// compares the program with the stack's state, but for the declared inputs
// only: it has no provider schema and no state, so it cannot know what a
// provider computes, which inputs force replacement (with one exception it
// can see in the inputs, the EC2 instance's userDataReplaceOnChange), or
// whether two secrets differ. It says so rather than guess.

// Op is what a deployment would do to a resource.
type Op string

const (
	OpCreate  Op = "create"
	OpDelete  Op = "delete"
	OpUpdate  Op = "update"
	OpReplace Op = "replace"
	// OpSame is a resource whose only differences are paths the program
	// ignores (ignoreChanges): `pulumi up` leaves it alone.
	OpSame Op = "same"
)

// ChangeKind says how one input path differs.
type ChangeKind string

const (
	Added    ChangeKind = "add"
	Removed  ChangeKind = "delete"
	Modified ChangeKind = "update"
)

// Change is one differing input path, such as rootBlockDevice.volumeSize,
// ingress[0].cidrBlocks[1], or policy(json).Statement[2].Sid inside a JSON
// document held in a string input. Old is absent for an added path, New for a
// removed one.
type Change struct {
	Path string     `json:"path"`
	Kind ChangeKind `json:"kind"`
	Old  any        `json:"old,omitempty"`
	New  any        `json:"new,omitempty"`
	// Ignored is a path the program lists in ignoreChanges: `pulumi up`
	// keeps the old value, so the change does not count.
	Ignored bool `json:"ignored,omitempty"`
	// Note explains a change that cannot be shown, such as a secret.
	Note string `json:"note,omitempty"`
}

// ResourceDiff is what happens to one resource, matched by type and name.
type ResourceDiff struct {
	Op     Op     `json:"op"`
	Type   string `json:"type"`
	Name   string `json:"name"`
	Parent string `json:"parent,omitempty"`
	// Inputs and Options of a resource to create or delete.
	Inputs  map[string]any `json:"inputs,omitempty"`
	Options []string       `json:"options,omitempty"`
	// Changes to the inputs of a resource to update or replace.
	Changes []Change `json:"changes,omitempty"`
	// OptionChanges are changes to resource options, the parent included
	// (paths [parent], [retainOnDelete], [ignoreChanges], [protect]).
	OptionChanges []Change `json:"optionChanges,omitempty"`
	// ReplaceReasons name the input paths that force a replacement.
	ReplaceReasons []string `json:"replaceReasons,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// CostChange is the estimate before and after, when both have one in the
// same currency.
type CostChange struct {
	Currency    string  `json:"currency"`
	OldPerHour  float64 `json:"oldPerHour"`
	NewPerHour  float64 `json:"newPerHour"`
	OldPerMonth float64 `json:"oldPerMonth"`
	NewPerMonth float64 `json:"newPerMonth"`
}

// PlanDiff is the difference between a baseline plan and the current one.
type PlanDiff struct {
	Stack     string `json:"stack"`
	Region    string `json:"region"`
	Partition string `json:"partition"`
	Target    string `json:"target"`
	// BaseStack is the baseline's stack when it is another one.
	BaseStack string `json:"baseStack,omitempty"`
	// BaseEmpty is an empty baseline (a new stack): everything is new.
	BaseEmpty bool `json:"baseEmpty,omitempty"`
	// Decisions are changes to the plan's own fields: region, partition,
	// target, sizing.* and cost.*.
	Decisions []Change       `json:"decisions,omitempty"`
	Cost      *CostChange    `json:"cost,omitempty"`
	Resources []ResourceDiff `json:"resources,omitempty"`
	// Unchanged counts the resources with nothing to do.
	Unchanged int `json:"unchanged"`
}

// Changed is whether anything differs that a deployment would act on, or
// that a reviewer must see: a resource, a resource option, the sizing or
// the cost.
func (d *PlanDiff) Changed() bool {
	if len(d.Decisions) > 0 {
		return true
	}
	for _, r := range d.Resources {
		if r.Op != OpSame {
			return true
		}
	}
	return false
}

// Counts is the number of resources per operation.
func (d *PlanDiff) Counts() map[Op]int {
	out := map[Op]int{}
	for _, r := range d.Resources {
		out[r.Op]++
	}
	return out
}

// LoadPlan reads a plan written by `go run . plan --json`, such as a golden
// snapshot. An empty file (or /dev/null) is an empty plan, the baseline of a
// stack that did not exist before. A file that does not exist is an error:
// a mistyped path must not pass as "everything is new".
func LoadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline plan: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return &Plan{}, nil
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("baseline plan %s: %w", path, err)
	}
	if p.Stack == "" || p.Resources == nil {
		return nil, fmt.Errorf("baseline plan %s: no stack or no resources list: not the output of `go run . plan --json`", path)
	}
	for i, r := range p.Resources {
		if r.Type == "" || r.Name == "" {
			return nil, fmt.Errorf("baseline plan %s: resource %d has no type or name", path, i)
		}
	}
	return &p, nil
}

// isEmpty is the plan LoadPlan returns for an empty file.
func (p *Plan) isEmpty() bool { return p.Stack == "" && len(p.Resources) == 0 }

const (
	ec2InstanceType    = "aws:ec2/instance:Instance"
	launchTemplateType = "aws:ec2/launchTemplate:LaunchTemplate"
)

// Diff compares the baseline plan base with the current plan head.
// Resources are matched by type and name: Pulumi's URN is made of those and
// the parent's type, and a parent change is reported as a change of its own.
func Diff(base, head *Plan) *PlanDiff {
	d := &PlanDiff{Stack: head.Stack, Region: head.Region, Partition: head.Partition, Target: head.Target}
	if base.isEmpty() {
		d.BaseEmpty = true
	} else if base.Stack != head.Stack {
		d.BaseStack = base.Stack
	}

	var oldTop, newTop map[string]any
	if !d.BaseEmpty {
		oldTop = decisions(base)
	}
	newTop = decisions(head)
	diffValue("", oldTop, newTop, true, true, &d.Decisions)
	if oc, nc := base.Cost, head.Cost; !d.BaseEmpty && oc.Known && nc.Known && oc.Currency == nc.Currency &&
		(oc.PerHour != nc.PerHour || oc.PerMonth != nc.PerMonth) {
		d.Cost = &CostChange{Currency: nc.Currency, OldPerHour: oc.PerHour, NewPerHour: nc.PerHour,
			OldPerMonth: oc.PerMonth, NewPerMonth: nc.PerMonth}
	}

	olds, news := index(base.Resources), index(head.Resources)
	keys := make([]resourceKey, 0, len(olds)+len(news))
	for k := range olds {
		keys = append(keys, k)
	}
	for k := range news {
		if _, ok := olds[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })

	for _, k := range keys {
		o, inOld := olds[k]
		n, inNew := news[k]
		switch {
		case !inOld:
			d.Resources = append(d.Resources, ResourceDiff{Op: OpCreate, Type: n.Type, Name: n.Name, Parent: n.Parent,
				Inputs: normalize(n.Inputs).(map[string]any), Options: n.Options})
		case !inNew:
			rd := ResourceDiff{Op: OpDelete, Type: o.Type, Name: o.Name, Parent: o.Parent,
				Inputs: normalize(o.Inputs).(map[string]any), Options: o.Options}
			opts := options(o.Options)
			if _, retain := opts["retainOnDelete"]; retain {
				rd.Notes = append(rd.Notes, "retainOnDelete: Pulumi drops it from the stack but leaves it in AWS")
			}
			if _, protected := opts["protect"]; protected {
				rd.Notes = append(rd.Notes, "protect: `pulumi up` refuses to delete it until `pulumi state unprotect`")
			}
			d.Resources = append(d.Resources, rd)
		default:
			if rd, changed := diffResource(o, n); changed {
				d.Resources = append(d.Resources, rd)
			} else {
				d.Unchanged++
			}
		}
	}
	return d
}

// decisions is the plan without its resources, identity and offline note,
// as generic JSON values: new plan fields are compared without code here.
func decisions(p *Plan) map[string]any {
	b, err := json.Marshal(p)
	if err != nil {
		// A Plan holds only JSON values; this cannot fail.
		panic(fmt.Sprintf("encode plan: %v", err))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(fmt.Sprintf("decode plan: %v", err))
	}
	for _, k := range []string{"project", "stack", "resources", "offline"} {
		delete(m, k)
	}
	return m
}

type resourceKey struct {
	typ, name string
	// nth tells apart resources of the same type and name (possible in
	// Pulumi under parents of different types); they pair in plan order.
	nth int
}

func (a resourceKey) less(b resourceKey) bool {
	if a.typ != b.typ {
		return a.typ < b.typ
	}
	if a.name != b.name {
		return a.name < b.name
	}
	return a.nth < b.nth
}

func index(rs []Resource) map[resourceKey]Resource {
	out := make(map[resourceKey]Resource, len(rs))
	for _, r := range rs {
		k := resourceKey{typ: r.Type, name: r.Name}
		for {
			if _, dup := out[k]; !dup {
				break
			}
			k.nth++
		}
		out[k] = r
	}
	return out
}

// options turns the plan's option strings ("retainOnDelete",
// "ignoreChanges: ami,tags") into a map.
func options(opts []string) map[string]any {
	out := map[string]any{}
	for _, o := range opts {
		if k, v, ok := strings.Cut(o, ": "); ok {
			out[k] = v
		} else {
			out[o] = true
		}
	}
	return out
}

func diffResource(o, n Resource) (ResourceDiff, bool) {
	rd := ResourceDiff{Op: OpUpdate, Type: n.Type, Name: n.Name, Parent: n.Parent}
	diffValue("", normalize(o.Inputs), normalize(n.Inputs), true, true, &rd.Changes)

	// ignoreChanges of the new program applies: the engine keeps the old
	// value for those paths.
	var ignore []string
	if v, ok := options(n.Options)["ignoreChanges"].(string); ok {
		ignore = strings.Split(v, ",")
	}
	counted := 0
	for i := range rd.Changes {
		if ignored(rd.Changes[i].Path, ignore) {
			rd.Changes[i].Ignored = true
		} else {
			counted++
		}
	}

	oldOpts, newOpts := options(o.Options), options(n.Options)
	if o.Parent != n.Parent {
		oldOpts["parent"], newOpts["parent"] = o.Parent, n.Parent
		if o.Parent == "" {
			delete(oldOpts, "parent")
		}
		if n.Parent == "" {
			delete(newOpts, "parent")
		}
		rd.Notes = append(rd.Notes, "the parent is part of the URN: unless the program declares an alias, "+
			"Pulumi creates the resource under its new parent and deletes the old one")
	}
	var optChanges []Change
	diffValue("", oldOpts, newOpts, true, true, &optChanges)
	for _, c := range optChanges {
		c.Path = "[" + c.Path + "]"
		rd.OptionChanges = append(rd.OptionChanges, c)
	}

	if len(rd.Changes) == 0 && len(rd.OptionChanges) == 0 {
		return rd, false
	}
	if counted == 0 && len(rd.OptionChanges) == 0 {
		rd.Op = OpSame
		return rd, true
	}
	if n.Type == launchTemplateType {
		for _, c := range rd.Changes {
			if !c.Ignored {
				rd.Notes = append(rd.Notes, "a new launch template version: the Auto Scaling group's instance refresh "+
					"launches a new server and ends the old one once the new one is healthy")
				break
			}
		}
	}
	if n.Type == ec2InstanceType {
		changed := map[string]bool{}
		for _, c := range rd.Changes {
			if !c.Ignored {
				changed[topKey(c.Path)] = true
			}
		}
		// The one replacement the inputs tell: with userDataReplaceOnChange
		// the provider replaces the instance when its user data changes.
		if changed["userData"] && n.Inputs["userDataReplaceOnChange"] == true {
			rd.Op = OpReplace
			rd.ReplaceReasons = append(rd.ReplaceReasons, "userData")
			rd.Notes = append(rd.Notes, "replaced: userData changed and userDataReplaceOnChange is true")
		} else if changed["instanceType"] {
			rd.Notes = append(rd.Notes, "instanceType changes in place: AWS stops and starts the instance")
		}
	}
	return rd, true
}

// topKey is the input a path starts in.
func topKey(path string) string {
	if i := strings.IndexAny(path, ".[("); i >= 0 {
		return path[:i]
	}
	return path
}

// ignored is whether an ignoreChanges entry covers the path: the entry
// itself or anything under it.
func ignored(path string, ignore []string) bool {
	for _, ig := range ignore {
		ig = strings.TrimSpace(ig)
		if ig == "" {
			continue
		}
		if path == ig || (strings.HasPrefix(path, ig) && strings.ContainsRune(".[(", rune(path[len(ig)]))) {
			return true
		}
	}
	return false
}

// normalize gives values the shapes JSON decoding gives them, so that a plan
// made in this process compares equal with one read from a file.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode plan value: %v", err))
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("decode plan value: %v", err))
	}
	if out == nil {
		if _, isMap := v.(map[string]any); isMap {
			return map[string]any{}
		}
	}
	return out
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// child is the path of a map key, in Pulumi's property path syntax.
func child(path, key string) string {
	if identifier.MatchString(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	q, _ := json.Marshal(key)
	return path + "[" + string(q) + "]"
}

// isSecret is a value the plan masked. The diff cannot see behind the mask,
// so two masked values are treated as equal.
func isSecret(v any) bool { s, ok := v.(string); return ok && s == SecretMask }

// diffValue appends the differences between old and new at path. A null
// value counts as absent, as it does for Pulumi.
func diffValue(path string, old, new any, oldOK, newOK bool, out *[]Change) {
	oldOK = oldOK && old != nil
	newOK = newOK && new != nil
	switch {
	case !oldOK && !newOK:
		return
	case !oldOK:
		leaves(path, new, func(p string, v any) { *out = append(*out, Change{Path: p, Kind: Added, New: v}) })
		return
	case !newOK:
		leaves(path, old, func(p string, v any) { *out = append(*out, Change{Path: p, Kind: Removed, Old: v}) })
		return
	}
	if isSecret(old) || isSecret(new) {
		if isSecret(old) && isSecret(new) {
			return
		}
		// A value became secret or stopped being one: say so, show neither
		// side, since the plain side may be the very value now protected.
		*out = append(*out, Change{Path: path, Kind: Modified, Old: SecretMask, New: SecretMask,
			Note: "secret: values not shown"})
		return
	}
	switch o := old.(type) {
	case map[string]any:
		if n, ok := new.(map[string]any); ok {
			keys := make([]string, 0, len(o)+len(n))
			for k := range o {
				keys = append(keys, k)
			}
			for k := range n {
				if _, dup := o[k]; !dup {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				ov, ook := o[k]
				nv, nok := n[k]
				diffValue(child(path, k), ov, nv, ook, nok, out)
			}
			return
		}
	case []any:
		if n, ok := new.([]any); ok {
			// Element by element, as Pulumi compares lists.
			for i := 0; i < len(o) || i < len(n); i++ {
				var ov, nv any
				if i < len(o) {
					ov = o[i]
				}
				if i < len(n) {
					nv = n[i]
				}
				diffValue(fmt.Sprintf("%s[%d]", path, i), ov, nv, i < len(o), i < len(n), out)
			}
			return
		}
	case string:
		if n, ok := new.(string); ok {
			if o == n {
				return
			}
			// IAM policies and the like are JSON in a string: compare them
			// as documents, as `pulumi preview --diff` does.
			if oj, nj, ok := jsonPair(o, n); ok {
				diffValue(path+"(json)", oj, nj, true, true, out)
				return
			}
		}
	}
	if !reflect.DeepEqual(old, new) {
		*out = append(*out, Change{Path: path, Kind: Modified, Old: old, New: new})
	}
}

// jsonPair parses two strings that both hold a JSON object, or both an array.
func jsonPair(a, b string) (any, any, bool) {
	parse := func(s string) (any, byte) {
		s = strings.TrimSpace(s)
		if s == "" || (s[0] != '{' && s[0] != '[') {
			return nil, 0
		}
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return nil, 0
		}
		return v, s[0]
	}
	av, ak := parse(a)
	bv, bk := parse(b)
	if ak == 0 || ak != bk {
		return nil, nil, false
	}
	return av, bv, true
}

// leaves calls f for every leaf under v: scalars, empty objects and arrays.
func leaves(path string, v any, f func(path string, v any)) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			f(path, t)
			return
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if t[k] != nil {
				leaves(child(path, k), t[k], f)
			}
		}
	case []any:
		if len(t) == 0 {
			f(path, t)
			return
		}
		for i, e := range t {
			leaves(fmt.Sprintf("%s[%d]", path, i), e, f)
		}
	default:
		f(path, v)
	}
}

// WriteText prints the diff in the manner of `pulumi preview --diff`: a
// marker in the first column (+ create, - delete, ~ update, +- replace; -
// and + before an old and a new value), so that it also reads as a diff in
// Markdown.
func (d *PlanDiff) WriteText(w io.Writer) {
	tw := &textWriter{w: w}
	tw.printf("Stack %s: target %s in %s (partition %s), ", d.Stack, d.Target, d.Region, d.Partition)
	switch {
	case d.BaseEmpty:
		tw.printf("compared with an empty baseline: everything is new\n")
	case d.BaseStack != "":
		tw.printf("compared with the baseline plan of stack %s\n", d.BaseStack)
	default:
		tw.printf("compared with the baseline plan\n")
	}

	if len(d.Decisions) > 0 {
		tw.printf("\nSizing, cost and other plan settings:\n")
		for _, c := range d.Decisions {
			if d.Cost != nil && (c.Path == "cost.perHour" || c.Path == "cost.perMonth") {
				continue // shown with the difference below
			}
			tw.change(c, "   ")
		}
		if c := d.Cost; c != nil {
			tw.printf("~   cost: %.2f => %.2f %s per hour (%+.2f), %.2f => %.2f %s per month (%+.2f)\n",
				c.OldPerHour, c.NewPerHour, c.Currency, c.NewPerHour-c.OldPerHour,
				c.OldPerMonth, c.NewPerMonth, c.Currency, c.NewPerMonth-c.OldPerMonth)
		}
	}

	if len(d.Resources) > 0 {
		tw.printf("\n")
	}
	for _, r := range d.Resources {
		tw.resource(r)
	}

	counts := d.Counts()
	tw.printf("\nResources:\n")
	total := 0
	for _, op := range []struct {
		op     Op
		marker string
	}{{OpCreate, "+ "}, {OpUpdate, "~ "}, {OpReplace, "+-"}, {OpDelete, "- "}} {
		if n := counts[op.op]; n > 0 {
			tw.printf("%s  %d to %s\n", op.marker, n, op.op)
			total += n
		}
	}
	unchanged := d.Unchanged + counts[OpSame]
	if total == 0 {
		tw.printf("    no changes. %d unchanged\n", unchanged)
	} else {
		tw.printf("    %d changes. %d unchanged\n", total, unchanged)
	}
	tw.printf("\nOffline diff of the declared inputs: replacement is marked only where the inputs tell " +
		"(an EC2 instance's userData with userDataReplaceOnChange); secrets are compared as equal; " +
		"`pulumi preview --diff` has the provider's full view.\n")
}

// Markdown writes the diff for a job summary or a pull request comment: a
// heading with the counts and the text form in a diff block.
func (d *PlanDiff) Markdown(w io.Writer) {
	counts := d.Counts()
	var parts []string
	for _, op := range []Op{OpCreate, OpUpdate, OpReplace, OpDelete} {
		if n := counts[op]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", n, op))
		}
	}
	if len(d.Decisions) > 0 {
		parts = append(parts, "sizing or cost changed")
	}
	summary := "no changes"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "### Stack `%s`: %s\n\n", d.Stack, summary)
	if !d.Changed() {
		fmt.Fprintf(w, "No change to resources, sizing or cost (%d resources unchanged).\n\n", d.Unchanged+counts[OpSame])
		return
	}
	var body bytes.Buffer
	d.WriteText(&body)
	// The fence must be longer than any run of backticks in the body, which
	// holds user data and other free text.
	fence := "```"
	for strings.Contains(body.String(), fence) {
		fence += "`"
	}
	// A long diff (a new stack, a region move) is folded, so that a comment
	// with several stacks stays readable; the heading above has the counts.
	lines := strings.Count(body.String(), "\n")
	if lines > foldLines {
		fmt.Fprintf(w, "<details><summary>Diff (%d lines)</summary>\n\n", lines)
	}
	fmt.Fprintf(w, "%sdiff\n%s%s\n\n", fence, body.String(), fence)
	if lines > foldLines {
		fmt.Fprintf(w, "</details>\n\n")
	}
}

// foldLines is the longest diff Markdown shows unfolded.
const foldLines = 150

// JSON is the diff as indented JSON, with the changed flag.
func (d *PlanDiff) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(struct {
		Changed bool `json:"changed"`
		*PlanDiff
	}{d.Changed(), d}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode plan diff: %w", err)
	}
	return append(b, '\n'), nil
}

type textWriter struct{ w io.Writer }

func (t *textWriter) printf(format string, a ...any) { fmt.Fprintf(t.w, format, a...) }

var opMarker = map[Op]string{OpCreate: "+ ", OpDelete: "- ", OpUpdate: "~ ", OpReplace: "+-", OpSame: "  "}

func (t *textWriter) resource(r ResourceDiff) {
	t.printf("%s%s  %s  (%s)", opMarker[r.Op], r.Type, r.Name, r.Op)
	if (r.Op == OpCreate || r.Op == OpDelete) && len(r.Options) > 0 {
		t.printf("  [%s]", strings.Join(r.Options, "; "))
	}
	t.printf("\n")
	for _, n := range r.Notes {
		t.printf("      # %s\n", n)
	}
	switch r.Op {
	case OpCreate, OpDelete:
		marker := opMarker[r.Op][:1]
		leaves("", r.Inputs, func(p string, v any) {
			if p == "" {
				return // no inputs at all
			}
			t.printf("%s     %s: %s\n", marker, p, shortValue(v))
		})
	default:
		for _, c := range r.OptionChanges {
			t.change(c, "     ")
		}
		for _, c := range r.Changes {
			t.change(c, "     ")
		}
	}
}

func (t *textWriter) change(c Change, indent string) {
	switch {
	case c.Ignored:
		t.printf(" %s%s: %s => %s (ignored: ignoreChanges)\n", indent, c.Path, shortValue(c.Old), shortValue(c.New))
	case c.Note != "":
		t.printf("~%s%s: %s (%s)\n", indent, c.Path, SecretMask, c.Note)
	case c.Kind == Added:
		t.printf("+%s%s: %s\n", indent, c.Path, value(c.New))
	case c.Kind == Removed:
		t.printf("-%s%s: %s\n", indent, c.Path, value(c.Old))
	default:
		oldS, oStr := c.Old.(string)
		newS, nStr := c.New.(string)
		if oStr && nStr && (strings.Contains(oldS, "\n") || strings.Contains(newS, "\n")) {
			t.lines(c.Path, oldS, newS, indent)
			return
		}
		t.printf("-%s%s: %s\n", indent, c.Path, value(c.Old))
		t.printf("+%s%s: %s\n", indent, c.Path, value(c.New))
	}
}

// lines shows a multi-line string change as a unified diff of the changed
// lines with two lines of context.
func (t *textWriter) lines(path, old, new, indent string) {
	ops := lineDiff(strings.Split(old, "\n"), strings.Split(new, "\n"))
	changed := 0
	for _, o := range ops {
		if o.kind != ' ' {
			changed++
		}
	}
	plural := "s"
	if changed == 1 {
		plural = ""
	}
	t.printf("~%s%s: (%d line%s changed)\n", indent, path, changed, plural)
	for _, h := range hunks(ops, 2) {
		t.printf(" %s    %s\n", indent, h.header())
		for _, o := range h.ops {
			t.printf("%c%s    %s\n", o.kind, indent, o.text)
		}
	}
}

// value is a value on one line: strings quoted, masks and unknowns as is.
func value(v any) string {
	if s, ok := v.(string); ok && (s == SecretMask || s == Unknown) {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// shortValue is value cut for resources shown whole (creates and deletes):
// the first line of a multi-line string, at most 200 characters.
func shortValue(v any) string {
	if s, ok := v.(string); ok {
		if n := strings.Count(s, "\n"); n > 0 {
			first, _, _ := strings.Cut(s, "\n")
			return fmt.Sprintf("%s … (%d lines)", value(first), n+1)
		}
	}
	s := value(v)
	const max = 200
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + fmt.Sprintf("… (%d characters)", len(r))
	}
	return s
}

// lineOp is one line of a line diff: ' ' kept, '-' removed, '+' added; a and
// b are its 0-based positions in the old and new text before it.
type lineOp struct {
	kind byte
	text string
	a, b int
}

// lineDiff is a longest-common-subsequence line diff. Common head and tail
// are trimmed first, so the table covers only the changed middle; a middle
// too large for the table is shown as all removed and all added.
func lineDiff(a, b []string) []lineOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []lineOp
	for i := 0; i < pre; i++ {
		ops = append(ops, lineOp{' ', a[i], i, i})
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(am), len(bm)
	ai, bi := pre, pre
	if n*m > 4_000_000 {
		for _, l := range am {
			ops = append(ops, lineOp{'-', l, ai, bi})
			ai++
		}
		for _, l := range bm {
			ops = append(ops, lineOp{'+', l, ai, bi})
			bi++
		}
	} else {
		// lcs[i][j] is the LCS length of am[i:] and bm[j:].
		lcs := make([][]int, n+1)
		for i := range lcs {
			lcs[i] = make([]int, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if am[i] == bm[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && am[i] == bm[j]:
				ops = append(ops, lineOp{' ', am[i], ai, bi})
				i, j, ai, bi = i+1, j+1, ai+1, bi+1
			case j < m && (i == n || lcs[i][j+1] > lcs[i+1][j]):
				ops = append(ops, lineOp{'+', bm[j], ai, bi})
				j, bi = j+1, bi+1
			default:
				ops = append(ops, lineOp{'-', am[i], ai, bi})
				i, ai = i+1, ai+1
			}
		}
	}
	for k := 0; k < suf; k++ {
		ops = append(ops, lineOp{' ', a[len(a)-suf+k], ai, bi})
		ai, bi = ai+1, bi+1
	}
	return ops
}

type hunk struct{ ops []lineOp }

// header is the unified diff hunk header, with 1-based line numbers.
func (h hunk) header() string {
	first := h.ops[0]
	var na, nb int
	for _, o := range h.ops {
		if o.kind != '+' {
			na++
		}
		if o.kind != '-' {
			nb++
		}
	}
	start := func(pos, n int) int {
		if n == 0 {
			return pos // unified diff convention: the line before an empty range
		}
		return pos + 1
	}
	return fmt.Sprintf("@@ -%d,%d +%d,%d @@", start(first.a, na), na, start(first.b, nb), nb)
}

// hunks groups the changed lines with up to ctx lines of context around
// them; changes closer than 2*ctx lines share a hunk.
func hunks(ops []lineOp, ctx int) []hunk {
	var out []hunk
	i := 0
	for i < len(ops) {
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(i-ctx, 0)
		end := i // one past the last changed line of this hunk
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j + 1
			} else if j-end >= 2*ctx {
				break
			}
		}
		stop := min(end+ctx, len(ops))
		out = append(out, hunk{ops: ops[start:stop]})
		i = stop
	}
	return out
}
