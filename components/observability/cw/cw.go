// Package cw holds CloudWatch alarms and dashboards as data: the metrics
// and math they use, the checks CloudWatch would make of them, and the
// dashboard body. It has no Pulumi dependency, so that what the program
// will ask CloudWatch for is tested without the AWS SDK; package
// observability turns it into resources.
//
// Dimension values may name values only known at deploy time as "${ref}"
// (a load balancer's ARN suffix, an endpoint's name); Resolve fills them in.
package cw

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Dim is one dimension of a metric, in the order CloudWatch shows them.
type Dim struct {
	Name, Value string
}

// Metric is one CloudWatch metric with the statistic to read it with.
type Metric struct {
	// ID names the metric in math expressions (lower-case first letter).
	ID         string
	Namespace  string
	Name       string
	Dimensions []Dim
	// Stat is a statistic (Sum, Average, Maximum, Minimum, SampleCount) or
	// a percentile such as p90.
	Stat  string
	Label string
	// Hidden metrics feed an expression and are not drawn or alarmed on.
	Hidden bool
}

// Expr is metric math over the metrics' ids.
type Expr struct {
	ID, Expression, Label string
	Hidden                bool
}

// Widget is one graph (or a text block) of a dashboard.
type Widget struct {
	Title   string
	Metrics []Metric
	Exprs   []Expr
	// Period in seconds; 60 unless set.
	Period int
	// Width and Height in dashboard grid units (24 wide); 12 x 6 unless set.
	Width, Height int
	// Markdown makes a text widget.
	Markdown string
	// YMin pins the left axis' minimum (0 for counts and percentages).
	YMin *float64
	// Threshold draws a horizontal line (an alarm's threshold).
	Threshold *float64
}

// Alarm is one CloudWatch alarm on a metric or on metric math.
type Alarm struct {
	// Key is short and unique in a stack (it names the resource).
	Key string
	// Description says what the alarm means and what to look at first.
	Description string
	Metrics     []Metric
	Exprs       []Expr
	Period      int
	// Comparison is GreaterThanThreshold, LessThanThreshold, ...
	Comparison        string
	Threshold         float64
	EvaluationPeriods int
	DatapointsToAlarm int
	// TreatMissingData is missing, notBreaching, breaching or ignore.
	TreatMissingData string
}

var (
	idPattern   = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)
	refPattern  = regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)\}`)
	statistics  = map[string]bool{"Sum": true, "Average": true, "Maximum": true, "Minimum": true, "SampleCount": true}
	percentile  = regexp.MustCompile(`^p(\d{1,2}(\.\d+)?|100)$`)
	comparisons = map[string]bool{"GreaterThanThreshold": true, "GreaterThanOrEqualToThreshold": true,
		"LessThanThreshold": true, "LessThanOrEqualToThreshold": true}
	treatments = map[string]bool{"missing": true, "notBreaching": true, "breaching": true, "ignore": true}
)

// Validate checks what the PutMetricAlarm API would refuse (ids,
// statistics, periods, one returned series, at most 10 metrics) and what
// would make the alarm useless (no description, datapoints over periods).
func (a Alarm) Validate() error {
	var errs []error
	fail := func(format string, v ...any) {
		errs = append(errs, fmt.Errorf("alarm %s: "+format, append([]any{a.Key}, v...)...))
	}
	if a.Key == "" || a.Description == "" {
		fail("needs a key and a description")
	}
	if err := validateSeries(a.Metrics, a.Exprs); err != nil {
		fail("%v", err)
	}
	returned := 0
	for _, m := range a.Metrics {
		if !m.Hidden {
			returned++
		}
	}
	for _, e := range a.Exprs {
		if !e.Hidden {
			returned++
		}
	}
	if returned != 1 {
		fail("must return exactly one series, returns %d", returned)
	}
	if len(a.Metrics) > 10 {
		fail("uses %d metrics; CloudWatch allows 10", len(a.Metrics))
	}
	if a.Period != 10 && a.Period != 30 && (a.Period < 60 || a.Period%60 != 0) {
		fail("period %d must be 10, 30 or a multiple of 60", a.Period)
	}
	if !comparisons[a.Comparison] {
		fail("comparison %q", a.Comparison)
	}
	if a.EvaluationPeriods < 1 || a.DatapointsToAlarm < 1 || a.DatapointsToAlarm > a.EvaluationPeriods {
		fail("needs 1 <= datapoints (%d) <= evaluation periods (%d)", a.DatapointsToAlarm, a.EvaluationPeriods)
	}
	if a.Period*a.EvaluationPeriods > 86400 {
		fail("evaluates %d s, more than a day", a.Period*a.EvaluationPeriods)
	}
	if !treatments[a.TreatMissingData] {
		fail("treat missing data %q", a.TreatMissingData)
	}
	return errors.Join(errs...)
}

func validateSeries(metrics []Metric, exprs []Expr) error {
	var errs []error
	ids := map[string]bool{}
	for _, m := range metrics {
		if !idPattern.MatchString(m.ID) || ids[m.ID] {
			errs = append(errs, fmt.Errorf("metric id %q is not a unique lower-case id", m.ID))
		}
		ids[m.ID] = true
		if m.Namespace == "" || m.Name == "" {
			errs = append(errs, fmt.Errorf("metric %s has no namespace or name", m.ID))
		}
		if !statistics[m.Stat] && !percentile.MatchString(m.Stat) {
			errs = append(errs, fmt.Errorf("metric %s: statistic %q", m.ID, m.Stat))
		}
		if len(m.Dimensions) > 30 {
			errs = append(errs, fmt.Errorf("metric %s has more than 30 dimensions", m.ID))
		}
	}
	for _, e := range exprs {
		if !idPattern.MatchString(e.ID) || ids[e.ID] {
			errs = append(errs, fmt.Errorf("expression id %q is not a unique lower-case id", e.ID))
		}
		ids[e.ID] = true
	}
	// Every id an expression names must exist (functions are upper-case;
	// quoted strings, such as a SEARCH's query, name no ids).
	word := regexp.MustCompile(`\b[a-z][a-zA-Z0-9_]*\b`)
	quoted := regexp.MustCompile(`'[^']*'|"[^"]*"`)
	for _, e := range exprs {
		if e.Expression == "" {
			errs = append(errs, fmt.Errorf("expression %s is empty", e.ID))
		}
		for _, w := range word.FindAllString(quoted.ReplaceAllString(e.Expression, ""), -1) {
			if !ids[w] {
				errs = append(errs, fmt.Errorf("expression %s names %q, which is no metric or expression id", e.ID, w))
			}
		}
	}
	return errors.Join(errs...)
}

// Refs are the values "${ref}" placeholders stand for.
type Refs map[string]string

// Resolve fills the placeholders of s; an unknown one is an error.
func (r Refs) Resolve(s string) (string, error) {
	var err error
	out := refPattern.ReplaceAllStringFunc(s, func(m string) string {
		name := refPattern.FindStringSubmatch(m)[1]
		v, ok := r[name]
		if !ok {
			err = fmt.Errorf("no value for ${%s}", name)
		}
		return v
	})
	return out, err
}

// RefNames lists the placeholders the widgets and alarms use.
func RefNames(widgets []Widget, alarms []Alarm) []string {
	set := map[string]bool{}
	add := func(ms []Metric) {
		for _, m := range ms {
			for _, d := range m.Dimensions {
				for _, g := range refPattern.FindAllStringSubmatch(d.Value, -1) {
					set[g[1]] = true
				}
			}
		}
	}
	for _, w := range widgets {
		add(w.Metrics)
	}
	for _, a := range alarms {
		add(a.Metrics)
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DashboardBody renders the dashboard JSON (the CloudWatch dashboard body
// structure: widgets of type metric or text, laid out left to right).
func DashboardBody(region string, widgets []Widget, refs Refs) (string, error) {
	type props map[string]any
	var out []map[string]any
	x, y, rowHeight := 0, 0, 0
	for _, w := range widgets {
		width, height := w.Width, w.Height
		if width == 0 {
			width = 12
		}
		if height == 0 {
			height = 6
		}
		if x+width > 24 {
			x, y, rowHeight = 0, y+rowHeight, 0
		}
		widget := map[string]any{"x": x, "y": y, "width": width, "height": height}
		x += width
		rowHeight = max(rowHeight, height)
		if w.Markdown != "" {
			widget["type"] = "text"
			widget["properties"] = props{"markdown": w.Markdown}
			out = append(out, widget)
			continue
		}
		if err := validateSeries(w.Metrics, w.Exprs); err != nil {
			return "", fmt.Errorf("widget %q: %w", w.Title, err)
		}
		var metrics []any
		for _, e := range w.Exprs {
			opts := map[string]any{"expression": e.Expression, "id": e.ID, "label": e.Label}
			if e.Hidden {
				opts["visible"] = false
			}
			metrics = append(metrics, []any{opts})
		}
		for _, m := range w.Metrics {
			row := []any{m.Namespace, m.Name}
			for _, d := range m.Dimensions {
				v, err := refs.Resolve(d.Value)
				if err != nil {
					return "", fmt.Errorf("widget %q: %w", w.Title, err)
				}
				row = append(row, d.Name, v)
			}
			opts := map[string]any{"id": m.ID, "stat": m.Stat}
			if m.Label != "" {
				opts["label"] = m.Label
			}
			if m.Hidden {
				opts["visible"] = false
			}
			metrics = append(metrics, append(row, opts))
		}
		period := w.Period
		if period == 0 {
			period = 60
		}
		p := props{"title": w.Title, "region": region, "view": "timeSeries", "stacked": false, "period": period,
			"metrics": metrics}
		if w.YMin != nil {
			p["yAxis"] = map[string]any{"left": map[string]any{"min": *w.YMin}}
		}
		if w.Threshold != nil {
			p["annotations"] = map[string]any{"horizontal": []any{map[string]any{"value": *w.Threshold, "label": "alarm"}}}
		}
		widget["type"] = "metric"
		widget["properties"] = p
		out = append(out, widget)
	}
	b, err := json.Marshal(map[string]any{"widgets": out})
	if err != nil {
		return "", fmt.Errorf("dashboard body: %w", err)
	}
	return string(b), nil
}

// DashboardURL is where the console shows a dashboard: the China console
// (console.amazonaws.cn) in aws-cn, the global one elsewhere.
func DashboardURL(consoleHost, region, name string) string {
	return fmt.Sprintf("https://%s/cloudwatch/home?region=%s#dashboards:name=%s", consoleHost, region, name)
}

// Zero is a pointer to 0, for YMin.
func Zero() *float64 { z := 0.0; return &z }

// Ptr is a pointer to v, for Threshold.
func Ptr(v float64) *float64 { return &v }

// Join is strings.Join, for building expressions over ids.
func Join(ids []string, sep string) string { return strings.Join(ids, sep) }
