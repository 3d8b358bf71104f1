package proxy

// The gateway's metric names and labels, and the audit record's fields, are
// what CloudWatch alarms, dashboards and metric filters name
// (components/telemetry: GatewayPrometheusMetrics, AuditFields). These
// tests hold the code to that catalog, so that a rename breaks a test, not
// a dashboard. This file stands alone (its helpers are its own).

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardtest"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// catalogRecorder is a prometheus.Registerer that keeps the descriptions
// of what is registered: unlike a registry's Gather, it sees a vector
// that has no child yet, and so every metric, used or not.
type catalogRecorder struct{ got []telemetry.PromMetric }

func (r *catalogRecorder) Register(c prometheus.Collector) error {
	typ := telemetry.PromType("unknown")
	// Gauge first: a Gauge has every method of a Counter too.
	switch c.(type) {
	case *prometheus.GaugeVec, prometheus.Gauge:
		typ = telemetry.Gauge
	case *prometheus.CounterVec, prometheus.Counter:
		typ = telemetry.Counter
	case *prometheus.HistogramVec, prometheus.Histogram:
		typ = telemetry.Histogram
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		name, labels, err := parseDesc(d)
		if err != nil {
			return err
		}
		r.got = append(r.got, telemetry.PromMetric{Name: name, Type: typ, Labels: labels})
	}
	return nil
}

func (r *catalogRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *catalogRecorder) Unregister(prometheus.Collector) bool { return false }

var (
	descName   = regexp.MustCompile(`fqName: "([^"]*)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// parseDesc reads a Desc's name and variable labels from its String(),
// the only public view of them (client_golang prometheus/desc.go).
func parseDesc(d *prometheus.Desc) (string, []string, error) {
	s := d.String()
	name, labels := descName.FindStringSubmatch(s), descLabels.FindStringSubmatch(s)
	if name == nil || labels == nil {
		return "", nil, &descError{s}
	}
	var out []string
	if labels[1] != "" {
		out = strings.Split(labels[1], ",")
	}
	return name[1], out, nil
}

type descError struct{ desc string }

func (e *descError) Error() string { return "cannot read the metric description " + e.desc }

// The description format parseDesc relies on is still the library's.
func TestParseDesc(t *testing.T) {
	name, labels, err := parseDesc(prometheus.NewDesc("x_total", "help with {braces} and \"quotes\"", []string{"a", "b"}, prometheus.Labels{"c": "d"}))
	require.NoError(t, err)
	assert.Equal(t, "x_total", name)
	assert.Equal(t, []string{"a", "b"}, labels)
	name, labels, err = parseDesc(prometheus.NewDesc("g", "h", nil, nil))
	require.NoError(t, err)
	assert.Equal(t, "g", name)
	assert.Empty(t, labels)
}

func promKey(m telemetry.PromMetric) string {
	return m.Name + " " + string(m.Type) + " {" + strings.Join(m.Labels, ",") + "}"
}

// sortedKeys are the metrics as "name type {labels}", sorted.
func sortedKeys(ms []telemetry.PromMetric) []string {
	var out []string
	for _, m := range ms {
		out = append(out, promKey(m))
	}
	sort.Strings(out)
	return out
}

// Every metric the gateway registers is in the telemetry catalog with its
// type and labels in order, and the catalog has no other.
func TestGatewayMetricsMatchTheCatalog(t *testing.T) {
	rec := &catalogRecorder{}
	_, err := newMetrics(rec)
	require.NoError(t, err)
	assert.Equal(t, sortedKeys(telemetry.GatewayPrometheusMetrics()), sortedKeys(rec.got))
}

// The comparison above is not blind: a renamed metric, a label more or a
// changed type shows.
func TestGatewayMetricsComparisonCatches(t *testing.T) {
	rec := &catalogRecorder{}
	_, err := newMetrics(rec)
	require.NoError(t, err)
	want := sortedKeys(telemetry.GatewayPrometheusMetrics())
	for name, change := range map[string]func(*telemetry.PromMetric){
		"renamed":    func(m *telemetry.PromMetric) { m.Name = "guardrail_request_total" },
		"label more": func(m *telemetry.PromMetric) { m.Labels = append(m.Labels, "model") },
		"type":       func(m *telemetry.PromMetric) { m.Type = telemetry.Gauge },
	} {
		t.Run(name, func(t *testing.T) {
			got := append([]telemetry.PromMetric(nil), rec.got...)
			change(&got[0])
			assert.NotEqual(t, want, sortedKeys(got))
		})
	}
}

// catalogBuffer collects audit lines from the handler goroutines.
type catalogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *catalogBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *catalogBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.b.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// The audit record of a plain and of a streamed completion has every field
// the CloudWatch metric filters and the operators' request tracing read,
// with the JSON type the filters compare it as; and what the gateway
// exposes on /metrics after a request carries the catalog's names.
func TestAuditRecordHasTheCatalogFields(t *testing.T) {
	up := httptest.NewServer(&fakevllm.Server{APIKey: "up-key"})
	t.Cleanup(up.Close)
	u, err := url.Parse(up.URL)
	require.NoError(t, err)
	audit := &catalogBuffer{}
	reg := prometheus.NewRegistry()
	gw, err := New(guardtest.New(), Options{Upstream: u, UpstreamAPIKey: "up-key", APIKeys: []string{"client-key"}},
		reg, slog.New(slog.NewJSONHandler(audit, nil)))
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)

	for _, stream := range []bool{false, true} {
		body, err := json.Marshal(map[string]any{"model": "m", "stream": stream,
			"messages": []map[string]string{{"role": "user", "content": "hello"}}})
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer client-key")
		req.Header.Set("X-Request-Id", "trace-me-1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Eventually(t, func() bool { return strings.Count(audit.b.String(), "\n") >= 2 }, 5e9, 1e7)
	recs := audit.records(t)
	require.Len(t, recs, 2)
	types := map[string]string{"request_id": "string", "route": "string", "status": "number", "outcome": "string",
		"stream": "bool", "latency_ms": "number", "ttfb_ms": "number"}
	require.ElementsMatch(t, telemetry.AuditFields(), fieldNames(types), "a field the catalog reads needs its type here")
	for _, r := range recs {
		for _, f := range telemetry.AuditFields() {
			if f == "ttfb_ms" && r["stream"] == false {
				assert.NotContains(t, r, f, "only streamed requests have a first byte")
				continue
			}
			require.Contains(t, r, f)
			switch types[f] {
			case "string":
				assert.IsType(t, "", r[f], f)
			case "number":
				assert.IsType(t, 0.0, r[f], f)
			case "bool":
				assert.IsType(t, false, r[f], f)
			}
		}
		assert.Equal(t, "trace-me-1", r["request_id"], "the client's X-Request-Id is kept for tracing")
		assert.Equal(t, "/v1/chat/completions", r["route"])
	}

	families, err := reg.Gather()
	require.NoError(t, err)
	exposed := map[string][]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			exposed[f.GetName()] = labels
		}
	}
	for _, m := range telemetry.GatewayPrometheusMetrics() {
		if labels, ok := exposed[m.Name]; ok {
			assert.ElementsMatch(t, m.Labels, labels, m.Name)
		}
	}
	assert.Contains(t, exposed, "guardrail_requests_total")
	assert.Contains(t, exposed, "guardrail_open_streams")
}

func fieldNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
