package region

import "sort"

// Price is a dated, sourced on-demand price of one instance type.
type Price struct {
	InstanceType string
	// PerHour is the Linux on-demand price per instance-hour.
	PerHour float64
	// Currency is "CNY" in the China regions and "USD" elsewhere.
	Currency string
	// Region is the region the price was published for. It differs from the
	// region being planned when no price for that region could be sourced
	// (cn-northwest-1 is priced with cn-north-1's table; see PriceBasisNote).
	Region string
	// AsOf and Source say where the number comes from.
	AsOf   string
	Source string
}

const (
	sourceKarpenterCN = "aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws_cn.go " +
		"(AWS Pricing API, generated 2024-11-06T01:00:11Z for cn-north-1, commit 655d4733d635)"
	sourceKarpenterAWS = "aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go " +
		"(AWS Pricing API, generated 2026-07-20T13:44:30Z for us-east-1, commit 6fc13b5236fd)"
)

// cnNorth1CNY are the cn-north-1 Linux on-demand prices, CNY per hour,
// copied unrounded from the Karpenter table (sourceKarpenterCN).
var cnNorth1CNY = map[string]float64{
	"g4dn.xlarge": 5.223, "g4dn.2xlarge": 7.468, "g4dn.4xlarge": 11.956, "g4dn.8xlarge": 21.609,
	"g4dn.12xlarge": 38.849, "g4dn.16xlarge": 43.218,
	"g5.xlarge": 9.51389, "g5.2xlarge": 11.46206, "g5.4xlarge": 15.3584, "g5.8xlarge": 23.15109,
	"g5.12xlarge": 53.64092, "g5.16xlarge": 38.73646, "g5.24xlarge": 77.01898, "g5.48xlarge": 154.03795,
	"p3.2xlarge": 36.078, "p3.8xlarge": 144.314, "p3.16xlarge": 288.627,
}

// usEast1USD are the us-east-1 Linux on-demand prices, USD per hour
// (sourceKarpenterAWS). They price every global region: this project plans
// global regions only to prove the program is partition-neutral.
var usEast1USD = map[string]float64{
	"g4dn.xlarge": 0.526, "g4dn.2xlarge": 0.752, "g4dn.4xlarge": 1.204, "g4dn.8xlarge": 2.176,
	"g4dn.12xlarge": 3.912, "g4dn.16xlarge": 4.352,
	"g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g5.4xlarge": 1.624, "g5.8xlarge": 2.448,
	"g5.12xlarge": 5.672, "g5.16xlarge": 4.096, "g5.24xlarge": 8.144, "g5.48xlarge": 16.288,
	"p3.2xlarge": 3.06, "p3.8xlarge": 12.24, "p3.16xlarge": 24.48,
}

// OnDemandPrice is the sourced on-demand price of an EC2 instance type in
// this region, if one is known. Config (deepseek-r1-cn:pricePerHour)
// overrides it.
func (i Info) OnDemandPrice(instanceType string) (Price, bool) {
	if i.IsChina() {
		p, ok := cnNorth1CNY[instanceType]
		if !ok {
			return Price{}, false
		}
		return Price{InstanceType: instanceType, PerHour: p, Currency: "CNY", Region: "cn-north-1",
			AsOf: "2024-11-06", Source: sourceKarpenterCN}, true
	}
	p, ok := usEast1USD[instanceType]
	if !ok {
		return Price{}, false
	}
	return Price{InstanceType: instanceType, PerHour: p, Currency: "USD", Region: "us-east-1",
		AsOf: "2026-07-20", Source: sourceKarpenterAWS}, true
}

// PriceBasisNote explains a price published for another region than the one
// being planned, or "" when the price is the region's own.
func (i Info) PriceBasisNote(p Price) string {
	if p.Region == "" || p.Region == i.Name {
		return ""
	}
	return "no sourced on-demand price for " + i.Name + ": this is the " + p.Region +
		" price; set deepseek-r1-cn:pricePerHour to your own"
}

// offeredGPUTypes are the GPU instance families offered per partition that
// this project can size. cn-north-1: Karpenter's cn-north-1 price table lists
// g3, g3s, g4dn, g5, p2 and p3 (g3 and p2 are too old for vLLM).
// cn-northwest-1: UNCONFIRMED; the seed report found P3, G4dn and G5 there
// and no Trn1 or Inf2. Override with deepseek-r1-cn:offeredInstanceTypes.
var offeredGPUTypes = map[string][]string{
	"cn-north-1":     keys(cnNorth1CNY),
	"cn-northwest-1": keys(cnNorth1CNY),
}

// OfferedGPUInstanceTypes lists the sizable GPU instance types this region
// offers, sorted by name. Global regions offer the whole catalog.
func (i Info) OfferedGPUInstanceTypes() []string {
	if types, ok := offeredGPUTypes[i.Name]; ok {
		return append([]string(nil), types...)
	}
	return keys(usEast1USD)
}

// OfferedSageMakerInstanceTypes lists the SageMaker hosting types (ml.*) of
// the same GPU families. UNCONFIRMED for both China regions: SageMaker's
// hosting instance list there is not in any source this project has; override
// with deepseek-r1-cn:offeredInstanceTypes.
func (i Info) OfferedSageMakerInstanceTypes() []string {
	ec2 := i.OfferedGPUInstanceTypes()
	out := make([]string, len(ec2))
	for n, t := range ec2 {
		out[n] = "ml." + t
	}
	return out
}

// OfferingConfirmed says whether the instance list of this region comes from
// a published source rather than the seed report's observation.
func (i Info) OfferingConfirmed() bool { return i.Name != "cn-northwest-1" }

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
