package policy

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

var rawPolicyType = reflect.TypeOf(rawPolicy{})

// checkShape walks the YAML node tree alongside the raw Go type and reports
// unknown fields and wrong kinds with their YAML path. yaml.v3's
// KnownFields check (which decode still runs afterwards) only says "line 12:
// field wrods not found in type policy.rawWordList", which names a Go type
// the operator has never seen.
//
// Aliases (*name) are not followed: one anchor used many times would make
// this walk exponential on a hostile file ("billion laughs"), while the
// yaml.v3 decoder that runs next checks aliased content with KnownFields
// and limits excessive aliasing itself.
func checkShape(n *yaml.Node, t reflect.Type, path string, out *[]error) {
	if n == nil || n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return // null: the field keeps its default
	}
	fail := func(format string, args ...any) {
		*out = append(*out, fmt.Errorf("%s: %s (line %d)", displayPath(path), fmt.Sprintf(format, args...), n.Line))
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkShape(n, t.Elem(), path, out)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("expected a mapping, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				*out = append(*out, fmt.Errorf("%s: unknown field %q (line %d); allowed: %s",
					displayPath(path), k.Value, k.Line, strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			checkShape(val, ft, joinPath(path, k.Value), out)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			fail("expected a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkShape(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), out)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			fail("expected a list, got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			checkShape(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			fail("expected a string, got %s", describe(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			fail("expected an integer, got %s", describe(n))
		}
	case reflect.Bool:
		// Only true and false: yaml.v3 would also decode "yes" or "on"
		// into a bool, which is exactly the kind of surprise a security
		// policy must not have.
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			fail("expected true or false, got %s", describe(n))
		}
	}
}

// yamlFields maps the YAML keys of a struct type to their field types,
// flattening ",inline" embedded structs.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
	}
	return fields
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	default:
		return "something else"
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
