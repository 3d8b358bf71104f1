package telemetry

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// filterMatch evaluates the part of the CloudWatch Logs JSON filter syntax
// the catalog's patterns use: { a && (b || c) }, where a term is
// $.field OP value (=, !=, >, >=, <, <=; a number or a "string") or
// $.field IS TRUE / IS FALSE, && binding tighter than ||. It stands in for
// CloudWatch Logs, which the tests cannot reach, so that a pattern that
// counts the wrong records fails here.
func filterMatch(t *testing.T, pattern string, record map[string]any) bool {
	t.Helper()
	toks := regexp.MustCompile(`\s*(\{|\}|\(|\)|&&|\|\||>=|<=|!=|=|>|<|\$\.[a-z_]+(?:\.[a-z_]+)*|"[^"]*"|-?[0-9.]+|IS|TRUE|FALSE)`).FindAllStringSubmatch(pattern, -1)
	var tk []string
	for _, m := range toks {
		tk = append(tk, m[1])
	}
	require.Equal(t, strings.Join(strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(pattern)), ""),
		strings.Join(tk, ""), "pattern %q has syntax the evaluator does not know", pattern)
	require.True(t, len(tk) > 2 && tk[0] == "{" && tk[len(tk)-1] == "}", pattern)
	p := &parser{t: t, tk: tk[1 : len(tk)-1], rec: record}
	v := p.or()
	require.Empty(t, p.tk, "trailing tokens in %q", pattern)
	return v
}

type parser struct {
	t   *testing.T
	tk  []string
	rec map[string]any
}

func (p *parser) next() string { s := p.tk[0]; p.tk = p.tk[1:]; return s }

func (p *parser) or() bool {
	v := p.and()
	for len(p.tk) > 0 && p.tk[0] == "||" {
		p.next()
		r := p.and()
		v = v || r
	}
	return v
}

func (p *parser) and() bool {
	v := p.term()
	for len(p.tk) > 0 && p.tk[0] == "&&" {
		p.next()
		r := p.term()
		v = v && r
	}
	return v
}

func (p *parser) term() bool {
	if p.tk[0] == "(" {
		p.next()
		v := p.or()
		require.Equal(p.t, ")", p.next())
		return v
	}
	got, present := lookup(p.rec, strings.Split(strings.TrimPrefix(p.next(), "$."), "."))
	op := p.next()
	if op == "IS" {
		want := p.next() == "TRUE"
		b, ok := got.(bool)
		return present && ok && b == want
	}
	lit := p.next()
	if !present {
		return false
	}
	if strings.HasPrefix(lit, `"`) {
		s, ok := got.(string)
		eq := ok && s == strings.Trim(lit, `"`)
		return (op == "=" && eq) || (op == "!=" && !eq)
	}
	want, err := strconv.ParseFloat(lit, 64)
	require.NoError(p.t, err)
	n, ok := got.(float64)
	if !ok {
		return false
	}
	switch op {
	case "=":
		return n == want
	case "!=":
		return n != want
	case ">":
		return n > want
	case ">=":
		return n >= want
	case "<":
		return n < want
	case "<=":
		return n <= want
	}
	p.t.Fatalf("operator %q", op)
	return false
}

// lookup follows a $.a.b path through nested objects.
func lookup(rec map[string]any, path []string) (any, bool) {
	v, ok := rec[path[0]]
	if !ok || len(path) == 1 {
		return v, ok
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, false
	}
	return lookup(m, path[1:])
}

// record is an audit record as the gateway writes it (audit.go finish).
func record(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &m))
	return m
}

var (
	recOK = `{"request_id":"a","route":"/v1/chat/completions","method":"POST","model":"m","stream":false,"status":200,` +
		`"outcome":"passed","latency_ms":812.5}`
	recStream = `{"request_id":"b","route":"/v1/chat/completions","stream":true,"status":200,"outcome":"anonymized",` +
		`"latency_ms":9000,"stream_mode":"sync","ttfb_ms":350.25}`
	recBlocked  = `{"request_id":"c","route":"/v1/completions","stream":false,"status":200,"outcome":"blocked","latency_ms":3.1}`
	recUpstream = `{"request_id":"d","route":"/v1/chat/completions","stream":false,"status":502,"outcome":"error",` +
		`"latency_ms":12,"upstream_status":0,"error":"connect"}`
	recModels  = `{"request_id":"e","route":"/v1/models","stream":false,"status":200,"outcome":"proxied","latency_ms":1.2}`
	recUnauth  = `{"request_id":"f","route":"/v1/chat/completions","stream":false,"status":401,"outcome":"unauthorized","latency_ms":0.1}`
	recNoFirst = `{"request_id":"g","route":"/v1/chat/completions","stream":true,"status":502,"outcome":"error","latency_ms":30,"ttfb_ms":0}`
)

// Each filter counts, or measures, exactly the records it says it does.
func TestGatewayAuditFiltersSelect(t *testing.T) {
	filters, err := GatewayAuditFilters("prod")
	require.NoError(t, err)
	byName := map[string]MetricFilter{}
	for _, f := range filters {
		byName[f.Name] = f
	}
	all := map[string]string{"ok": recOK, "stream": recStream, "blocked": recBlocked, "upstream": recUpstream,
		"models": recModels, "unauthorized": recUnauth, "no first byte": recNoFirst}
	tests := []struct {
		filter string
		want   []string
	}{
		{MetricGatewayRequests, []string{"ok", "stream", "blocked", "upstream", "models", "unauthorized", "no first byte"}},
		{MetricGatewayServerErrors, []string{"upstream", "no first byte"}},
		{MetricGatewayBlocked, []string{"blocked"}},
		{MetricGatewayLatency, []string{"ok", "blocked"}},
		{MetricGatewayFirstByte, []string{"stream"}},
	}
	require.Len(t, filters, len(tests))
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			f, ok := byName[tc.filter]
			require.True(t, ok)
			var got []string
			for name, js := range all {
				if filterMatch(t, f.Pattern, record(t, js)) {
					got = append(got, name)
				}
			}
			assert.ElementsMatch(t, tc.want, got)
		})
	}
}

// The evaluator is not a rubber stamp.
func TestFilterMatchCatches(t *testing.T) {
	r := record(t, recStream)
	assert.True(t, filterMatch(t, `{ $.stream IS TRUE }`, r))
	assert.False(t, filterMatch(t, `{ $.stream IS FALSE }`, r))
	assert.False(t, filterMatch(t, `{ $.status >= 500 }`, r))
	assert.True(t, filterMatch(t, `{ $.status = 200 && ($.outcome = "x" || $.ttfb_ms > 300) }`, r))
	assert.False(t, filterMatch(t, `{ $.missing = 1 }`, r))
	nested := map[string]any{"k": map[string]any{"c": "guardrail"}, "log_processed": r}
	assert.True(t, filterMatch(t, `{ $.k.c = "guardrail" && $.log_processed.stream IS TRUE }`, nested))
	assert.False(t, filterMatch(t, `{ $.k.c = "vllm" }`, nested))
	assert.False(t, filterMatch(t, `{ $.k.c.d = "guardrail" }`, nested))
}

// fluentBitRecord is a container line as the CloudWatch Observability
// add-on's Fluent Bit sends it to the application log group: the raw line,
// its CRI stream, the pod's metadata and, for a JSON line, the line parsed
// under log_processed (Merge_Log On, Merge_Log_Key log_processed).
func fluentBitRecord(t *testing.T, namespace, container, line string) map[string]any {
	t.Helper()
	r := map[string]any{"log": line, "stream": "stdout", "time": "2026-11-30T08:00:00.000000000Z",
		"kubernetes": map[string]any{"namespace_name": namespace, "container_name": container, "pod_name": "vllm-abc",
			"host": "ip-10-0-1-2.cn-northwest-1.compute.internal"}}
	var parsed map[string]any
	if json.Unmarshal([]byte(line), &parsed) == nil {
		r[FluentBitParsedKey] = parsed
	}
	return r
}

// On EKS the filters count the gateway container's records exactly as the
// EC2 ones count the audit log, and nothing else in the shared group: not
// another container's JSON line with the same fields, not the gateway's
// records of another namespace, not vLLM's text lines.
func TestEKSGatewayAuditFiltersSelect(t *testing.T) {
	filters, err := EKSGatewayAuditFilters("prod", "deepseek-r1", "guardrail")
	require.NoError(t, err)
	base, err := GatewayAuditFilters("prod")
	require.NoError(t, err)
	require.Len(t, filters, len(base))
	gw := func(js string) map[string]any { return fluentBitRecord(t, "deepseek-r1", "guardrail", js) }
	records := map[string]map[string]any{
		"ok": gw(recOK), "stream": gw(recStream), "blocked": gw(recBlocked), "upstream": gw(recUpstream),
		"models": gw(recModels), "unauthorized": gw(recUnauth), "no first byte": gw(recNoFirst),
		"other container":   fluentBitRecord(t, "deepseek-r1", "vllm", recUpstream),
		"other namespace":   fluentBitRecord(t, "default", "guardrail", recUpstream),
		"vllm text":         fluentBitRecord(t, "deepseek-r1", "vllm", "INFO 11-30 08:00:00 Received request chatcmpl-a"),
		"gateway plain log": fluentBitRecord(t, "deepseek-r1", "guardrail", "listening on 0.0.0.0:8000"),
	}
	want := map[string][]string{
		MetricGatewayRequests:     {"ok", "stream", "blocked", "upstream", "models", "unauthorized", "no first byte"},
		MetricGatewayServerErrors: {"upstream", "no first byte"},
		MetricGatewayBlocked:      {"blocked"},
		MetricGatewayLatency:      {"ok", "blocked"},
		MetricGatewayFirstByte:    {"stream"},
	}
	for i, f := range filters {
		t.Run(f.Name, func(t *testing.T) {
			assert.Equal(t, LogEKSApplication, f.LogGroupKey)
			assert.Equal(t, base[i].Metric, f.Metric, "the same metric as on ec2 and sagemaker")
			require.NoError(t, f.Validate())
			var got []string
			for name, r := range records {
				if filterMatch(t, f.Pattern, r) {
					got = append(got, name)
				}
			}
			assert.ElementsMatch(t, want[f.Name], got)
			if strings.HasPrefix(f.Value, "$.") {
				assert.Contains(t, f.Pattern, f.Value, "the value's field is in the pattern")
				v, ok := lookup(records["ok"], strings.Split(strings.TrimPrefix(f.Value, "$."), "."))
				if f.Name == MetricGatewayLatency {
					assert.True(t, ok)
					assert.InDelta(t, 812.5, v, 0)
				}
			}
		})
	}
}

// A value filter takes the value from a field its pattern matches (the
// CloudWatch Logs rule for $.field values), the fields exist in the audit
// record, and each filter's metric is the catalog's.
func TestGatewayAuditFiltersAreConsistent(t *testing.T) {
	filters, err := GatewayAuditFilters("prod")
	require.NoError(t, err)
	catalog, err := EC2Metrics(EC2Options{Stack: "prod", Gateway: true})
	require.NoError(t, err)
	var fromFilters []string
	for _, f := range filters {
		require.NoError(t, f.Validate(), f.Name)
		assert.Equal(t, LogGatewayAudit, f.LogGroupKey)
		for _, field := range f.FilterFields() {
			assert.Contains(t, AuditFields(), field, "%s reads %s", f.Name, field)
		}
		if strings.HasPrefix(f.Value, "$.") {
			assert.Contains(t, f.Pattern, f.Value, "%s: the value's field must be in the pattern", f.Name)
			assert.Nil(t, f.DefaultValue, "%s: a latency has no default", f.Name)
		} else {
			assert.Equal(t, "1", f.Value)
			require.NotNil(t, f.DefaultValue, "%s: a count reads 0, not missing", f.Name)
		}
		c, ok := Find(catalog, f.Metric.Name)
		require.True(t, ok, f.Metric.Name)
		assert.Equal(t, c, f.Metric)
		fromFilters = append(fromFilters, f.Metric.Key())
	}
	var inCatalog []string
	for _, m := range catalog {
		if m.Origin == OriginLogFilter {
			inCatalog = append(inCatalog, m.Key())
		}
	}
	assert.ElementsMatch(t, inCatalog, fromFilters)
	bad := filters[0]
	bad.Name = "a:b"
	assert.Error(t, bad.Validate())
}

func TestFilterFields(t *testing.T) {
	f := MetricFilter{Pattern: `{ $.stream IS TRUE && $.ttfb_ms > 0 }`, Value: "$.ttfb_ms"}
	assert.Equal(t, []string{"stream", "ttfb_ms"}, f.FilterFields())
	assert.Equal(t, fmt.Sprint([]string{}), fmt.Sprint(MetricFilter{Pattern: "{ }"}.FilterFields()))
}
