package cw

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func alarm() Alarm {
	return Alarm{
		Key: "errors", Description: "5xx rate; look at the vLLM log first",
		Metrics: []Metric{
			{ID: "errs", Namespace: "AWS/SageMaker", Name: "Invocation5XXErrors", Stat: "Sum", Hidden: true,
				Dimensions: []Dim{{"EndpointName", "${endpoint}"}, {"VariantName", "AllTraffic"}}},
			{ID: "calls", Namespace: "AWS/SageMaker", Name: "Invocations", Stat: "Sum", Hidden: true,
				Dimensions: []Dim{{"EndpointName", "${endpoint}"}, {"VariantName", "AllTraffic"}}},
		},
		Exprs:      []Expr{{ID: "rate", Expression: "100 * errs / MAX([calls, 1])", Label: "5xx %"}},
		Period:     300,
		Comparison: "GreaterThanThreshold", Threshold: 5, EvaluationPeriods: 3, DatapointsToAlarm: 2,
		TreatMissingData: "notBreaching",
	}
}

func TestAlarmValidate(t *testing.T) {
	require.NoError(t, alarm().Validate())
	cases := map[string]struct {
		edit func(*Alarm)
		want string
	}{
		"two series returned":     {func(a *Alarm) { a.Metrics[0].Hidden = false }, "exactly one series"},
		"none returned":           {func(a *Alarm) { a.Exprs[0].Hidden = true }, "exactly one series"},
		"unknown id in math":      {func(a *Alarm) { a.Exprs[0].Expression = "errs / total" }, `names "total"`},
		"upper-case id":           {func(a *Alarm) { a.Metrics[0].ID = "Errs"; a.Exprs[0].Expression = "Errs" }, "not a unique lower-case id"},
		"duplicate id":            {func(a *Alarm) { a.Metrics[1].ID = "errs" }, "not a unique"},
		"bad statistic":           {func(a *Alarm) { a.Metrics[0].Stat = "avg" }, `statistic "avg"`},
		"bad period":              {func(a *Alarm) { a.Period = 90 }, "period 90"},
		"datapoints over periods": {func(a *Alarm) { a.DatapointsToAlarm = 4 }, "datapoints"},
		"no description":          {func(a *Alarm) { a.Description = "" }, "description"},
		"bad comparison":          {func(a *Alarm) { a.Comparison = ">" }, "comparison"},
		"bad missing data":        {func(a *Alarm) { a.TreatMissingData = "zero" }, "treat missing"},
		"longer than a day":       {func(a *Alarm) { a.Period = 3600; a.EvaluationPeriods = 25; a.DatapointsToAlarm = 1 }, "more than a day"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			a := alarm()
			a.Metrics = append([]Metric(nil), a.Metrics...)
			a.Exprs = append([]Expr(nil), a.Exprs...)
			c.edit(&a)
			err := a.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	assert.NoError(t, Alarm{Key: "p", Description: "d", Metrics: []Metric{{ID: "m", Namespace: "n", Name: "x", Stat: "p99"}},
		Period: 60, Comparison: "LessThanThreshold", EvaluationPeriods: 1, DatapointsToAlarm: 1, TreatMissingData: "breaching"}.Validate())
}

func TestDashboardBody(t *testing.T) {
	a := alarm()
	widgets := []Widget{
		{Markdown: "# deepseek-r1-cn", Width: 24, Height: 2},
		{Title: "Errors", Metrics: a.Metrics, Exprs: a.Exprs, YMin: Zero(), Threshold: Ptr(5)},
		{Title: "Calls", Metrics: []Metric{{ID: "c", Namespace: "AWS/SageMaker", Name: "Invocations", Stat: "Sum",
			Dimensions: []Dim{{"EndpointName", "${endpoint}"}}}}, Period: 300},
	}
	body, err := DashboardBody("cn-northwest-1", widgets, Refs{"endpoint": "dsr1-prod"})
	require.NoError(t, err)
	var doc struct {
		Widgets []struct {
			Type          string
			X, Y          int
			Width, Height int
			Properties    map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	require.Len(t, doc.Widgets, 3)
	assert.Equal(t, "text", doc.Widgets[0].Type)
	assert.Equal(t, 2, doc.Widgets[1].Y, "the next row starts under the 24-wide text")
	assert.Equal(t, 12, doc.Widgets[2].X)
	p := doc.Widgets[1].Properties
	assert.Equal(t, "cn-northwest-1", p["region"])
	metrics := p["metrics"].([]any)
	require.Len(t, metrics, 3)
	assert.Equal(t, []any{map[string]any{"expression": "100 * errs / MAX([calls, 1])", "id": "rate", "label": "5xx %"}}, metrics[0])
	assert.Equal(t, []any{"AWS/SageMaker", "Invocation5XXErrors", "EndpointName", "dsr1-prod", "VariantName", "AllTraffic",
		map[string]any{"id": "errs", "stat": "Sum", "visible": false}}, metrics[1])
	assert.EqualValues(t, 300, doc.Widgets[2].Properties["period"])

	_, err = DashboardBody("cn-northwest-1", widgets, Refs{})
	assert.ErrorContains(t, err, "no value for ${endpoint}")
	assert.Equal(t, []string{"endpoint"}, RefNames(widgets, []Alarm{a}))
}

func TestDashboardURL(t *testing.T) {
	assert.Equal(t, "https://console.amazonaws.cn/cloudwatch/home?region=cn-north-1#dashboards:name=dsr1-prod",
		DashboardURL("console.amazonaws.cn", "cn-north-1", "dsr1-prod"))
}
