package telemetry

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// NamespacePrefix starts every namespace the project publishes to; the
// stack name follows, one namespace per stack.
const NamespacePrefix = "DeepSeekR1CN/"

// StackDimension is the dimension every metric the CloudWatch agent
// publishes carries, with the stack name as its value. It is constant for
// the life of a stack, unlike InstanceId or host, so an alarm on it
// survives the Auto Scaling group replacing the instance. It is needed at
// all because a metric declaration with an empty dimension set drops the
// metric in older agents: the awsemf exporter's ExtractDimensions skipped
// empty sets (open-telemetry/opentelemetry-collector-contrib
// exporter/awsemfexporter/metric_declaration.go at 06b864e; later versions
// keep them), and the Deep Learning AMI's agent version varies.
const StackDimension = "Stack"

// Namespace is the stack's namespace for the metrics the program and the
// CloudWatch agent publish.
func Namespace(stack string) (string, error) {
	if stack == "" {
		return "", fmt.Errorf("namespace: the stack name is empty")
	}
	ns := NamespacePrefix + stack
	if err := ValidateNamespace(ns); err != nil {
		return "", err
	}
	return ns, nil
}

// ValidateNamespace applies CloudWatch's rules for a custom namespace:
// 1-255 characters (API_MetricDatum, PutMetricData), not starting with a
// colon (pattern [^:].*), not starting with the reserved "AWS/", and only
// letters, digits, period, hyphen, underscore, slash, hash, colon and space
// (CloudWatch concepts, "Namespaces").
func ValidateNamespace(ns string) error {
	if ns == "" || len(ns) > 255 {
		return fmt.Errorf("namespace %q: want 1-255 characters", ns)
	}
	if strings.HasPrefix(ns, ":") || strings.HasPrefix(ns, "AWS/") {
		return fmt.Errorf("namespace %q: may not start with %q or \"AWS/\"", ns, ":")
	}
	if strings.TrimSpace(ns) == "" {
		return fmt.Errorf("namespace %q: needs a character that is not a space", ns)
	}
	for _, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/#: ", c)) {
			return fmt.Errorf("namespace %q: %q is not allowed (letters, digits and . _ - / # : space)", ns, c)
		}
	}
	return nil
}

// DashboardURL is the console address of a CloudWatch dashboard. The China
// regions have their own console, console.amazonaws.cn (the Elastic
// Beanstalk CLI builds https://console.amazonaws.cn/cloudwatch/home?region=
// {region}#logs:... for them: aws/aws-elastic-beanstalk-cli ebcli strings);
// the #dashboards:name= fragment is the one AWS solutions use in both
// partitions (UNCONFIRMED by an AWS document for China).
func DashboardURL(r region.Info, name string) string {
	host := "console.aws.amazon.com"
	if r.IsChina() {
		host = "console.amazonaws.cn"
	}
	return fmt.Sprintf("https://%s/cloudwatch/home?region=%s#dashboards:name=%s", host, r.Name, url.PathEscape(name))
}
