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
	toks := regexp.MustCompile(`\s*(\{|\}|\(|\)|&&|\|\||>=|<=|!=|=|>|<|\$\.[a-z_]+|"[^"]*"|-?[0-9.]+|IS|TRUE|FALSE)`).FindAllStringSubmatch(pattern, -1)
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
	field := strings.TrimPrefix(p.next(), "$.")
	got, present := p.rec[field]
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
