package telemetry

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Origin is how a metric reaches CloudWatch; it says who must be configured
// for the metric to exist.
type Origin string

const (
	// OriginPrometheus: the CloudWatch agent scrapes a Prometheus endpoint
	// on the instance and publishes the metric as Embedded Metric Format
	// log events (AgentConfig's emf_processor declarations).
	OriginPrometheus Origin = "prometheus-emf"
	// OriginNvidiaGPU: the CloudWatch agent's nvidia_gpu plugin (nvidia-smi).
	OriginNvidiaGPU Origin = "nvidia-gpu"
	// OriginLogFilter: a CloudWatch Logs metric filter on a log group
	// (MetricFilter); the program creates it.
	OriginLogFilter Origin = "log-metric-filter"
	// OriginAWS: an AWS service publishes it; nothing to configure.
	OriginAWS Origin = "aws-service"
)

// Metric is one CloudWatch metric as alarms and dashboards must name it.
type Metric struct {
	// Namespace and Name are what GetMetricData and alarms take.
	Namespace string
	Name      string
	// Dimensions are the dimension names, all of which an alarm must give
	// (a CloudWatch metric is the name plus its exact set of dimensions).
	Dimensions []string
	// Statistic is the one that makes sense for an alarm on it.
	Statistic string
	// Unit is the unit the datapoints carry ("None" when published without
	// one). An alarm that sets a different unit sees no data, so alarms are
	// best left without one: the units of AWS/AutoScaling group metrics and
	// of Container Insights' GPU metrics are UNCONFIRMED (no document read
	// states them).
	Unit string
	// Meaning says what the metric tells an operator.
	Meaning string
	// Source is where the name and its behaviour come from.
	Source string
	// Origin is how it reaches CloudWatch.
	Origin Origin
	// Job is the Prometheus scrape job for OriginPrometheus metrics.
	Job string
}

// Key identifies the metric: namespace, name and dimension names.
func (m Metric) Key() string {
	return m.Namespace + " " + m.Name + " [" + strings.Join(m.Dimensions, ",") + "]"
}

// units are the values CloudWatch accepts for StandardUnit
// (API_MetricDatum, Unit).
var units = []string{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
	"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
	"Count/Second", "None",
}

var percentile = regexp.MustCompile(`^p(\d{1,2}(\.\d+)?|100)$`)

// dimensionName: 1-255 characters, at least one not whitespace
// (API_Dimension); the project keeps to letters, digits and _ so that
// dimension names are also valid Prometheus labels and JSON filter fields.
var dimensionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,254}$`)

// Validate checks the metric against CloudWatch's rules.
func (m Metric) Validate() error {
	var errs []error
	// AWS services publish into their reserved AWS/ namespaces.
	if m.Origin == OriginAWS {
		if m.Namespace == "" {
			errs = append(errs, fmt.Errorf("%s: no namespace", m.Name))
		}
	} else if err := ValidateNamespace(m.Namespace); err != nil {
		errs = append(errs, err)
	}
	// MetricName: 1-255 characters (API_MetricDatum); colons, as in vLLM's
	// names, are allowed.
	if m.Name == "" || len(m.Name) > 255 || strings.TrimSpace(m.Name) != m.Name {
		errs = append(errs, fmt.Errorf("metric name %q: want 1-255 characters without surrounding spaces", m.Name))
	}
	if len(m.Dimensions) > 30 {
		errs = append(errs, fmt.Errorf("%s: %d dimensions, CloudWatch allows 30", m.Name, len(m.Dimensions)))
	}
	for _, d := range m.Dimensions {
		if !dimensionName.MatchString(d) {
			errs = append(errs, fmt.Errorf("%s: dimension %q is not a plain name", m.Name, d))
		}
	}
	if !slices.Contains(units, m.Unit) {
		errs = append(errs, fmt.Errorf("%s: unit %q is not a CloudWatch unit", m.Name, m.Unit))
	}
	switch m.Statistic {
	case "SampleCount", "Average", "Sum", "Minimum", "Maximum":
	default:
		if !percentile.MatchString(m.Statistic) {
			errs = append(errs, fmt.Errorf("%s: statistic %q is not a CloudWatch statistic", m.Name, m.Statistic))
		}
	}
	if m.Meaning == "" || m.Source == "" {
		errs = append(errs, fmt.Errorf("%s: meaning and source are required", m.Name))
	}
	switch m.Origin {
	case OriginPrometheus:
		if m.Job == "" {
			errs = append(errs, fmt.Errorf("%s: a Prometheus metric needs its scrape job", m.Name))
		}
	case OriginNvidiaGPU, OriginLogFilter, OriginAWS:
	default:
		errs = append(errs, fmt.Errorf("%s: unknown origin %q", m.Name, m.Origin))
	}
	return errors.Join(errs...)
}

// Find returns the metric of the catalog with that name and exactly those
// dimensions (in any order).
func Find(catalog []Metric, name string, dims ...string) (Metric, bool) {
	want := slices.Sorted(slices.Values(dims))
	for _, m := range catalog {
		if m.Name == name && slices.Equal(slices.Sorted(slices.Values(m.Dimensions)), want) {
			return m, true
		}
	}
	return Metric{}, false
}
