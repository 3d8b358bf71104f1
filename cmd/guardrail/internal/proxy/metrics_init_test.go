package proxy

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guardrail_fail_open_total exists at 0 from the start for every route
// that checks text and both directions: the CloudWatch agent publishes a
// counter as the delta since its previous scrape and sends nothing for a
// series it sees for the first time, so without the zero the first text
// passed unchecked would never reach the checks-skipped alarm.
func TestFailOpenSeriesStartAtZero(t *testing.T) {
	e := newEnvWith(t, http.NotFoundHandler(), nil, nil)
	families, err := e.reg.Gather()
	require.NoError(t, err)
	seen := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "guardrail_fail_open_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			seen[l["route"]+" "+l["source"]] = m.GetCounter().GetValue()
		}
	}
	for _, route := range []string{routeChat, routeCompletions, routeApply} {
		for _, src := range []string{"INPUT", "OUTPUT"} {
			v, ok := seen[route+" "+src]
			assert.True(t, ok, "no series for %s %s", route, src)
			assert.Zero(t, v)
		}
	}
}
