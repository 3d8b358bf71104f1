package stacks

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sizing"
)

// HoursPerMonth is the month the monthly estimate uses (365 x 24 / 12).
const HoursPerMonth = 730

// Deployment is every decision the program makes before it registers a
// resource: where, what, on which hardware, how vLLM runs there, and what it
// costs. The offline plan prints it.
type Deployment struct {
	Config   *Config
	Region   region.Info
	Model    sizing.Model
	Instance sizing.InstanceType
	Decision sizing.Decision
	Cost     Cost
	// WeightsPrefix is where the weights are in the bucket ("" when they
	// come from ModelScope).
	WeightsPrefix string
	// EC2, SageMaker and EKS hold what only that target needs; the others
	// are nil.
	EC2       *EC2Settings
	SageMaker *SageMakerSettings
	EKS       *EKSSettings

	// accountID is the deploying account, once asked (accountID).
	accountID string

	// Exports are the stack outputs the program exported, so that the
	// offline plan can show them (the mock engine does not hand them back).
	Exports map[string]pulumi.Input
}

// export is ctx.Export that also records the output on the Deployment.
func (d *Deployment) export(ctx *pulumi.Context, name string, value pulumi.Input) {
	if d.Exports == nil {
		d.Exports = map[string]pulumi.Input{}
	}
	d.Exports[name] = value
	ctx.Export(name, value)
}

// Cost is the on-demand estimate of the GPU instance.
type Cost struct {
	// Known is false when no price could be sourced for the instance type
	// in this region and none is configured.
	Known    bool    `json:"known"`
	PerHour  float64 `json:"perHour,omitempty"`
	PerMonth float64 `json:"perMonth,omitempty"`
	Currency string  `json:"currency,omitempty"`
	// Basis says where the price comes from.
	Basis string   `json:"basis,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Resolve applies the rules that need the catalog, the region and sizing.
func Resolve(c *Config) (*Deployment, error) {
	reg, err := region.Lookup(c.Region)
	if err != nil {
		return nil, &ConfigError{Key: "aws:region", Value: c.Region, Msg: err.Error()}
	}
	d := &Deployment{Config: c, Region: reg}
	var errs []error
	fail := func(k, v, format string, a ...any) {
		errs = append(errs, &ConfigError{Key: key(k), Value: v, Msg: fmt.Sprintf(format, a...)})
	}

	d.Model, err = sizing.LookupModel(c.Model)
	if err != nil {
		fail("model", c.Model, "%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("unknown model %q: ", c.Model)))
	} else if d.Model.Unservable != "" {
		fail("model", c.Model, "cannot be served in %s: %s", reg.Name, d.Model.Unservable)
	}
	if c.KMSKeyARN != "" && !strings.HasPrefix(c.KMSKeyARN, reg.ARNPrefix()+"kms:"+reg.Name+":") {
		fail("kmsKeyArn", c.KMSKeyARN, "must be a KMS key ARN in partition %s, such as %s", reg.Partition,
			reg.ARN("kms", reg.Name, "123456789012", "key/<key-id>"))
	}
	for svc, name := range c.VpcEndpointServiceNames {
		if !strings.HasSuffix(name, "."+reg.Name+"."+svc) {
			fail("vpcEndpointServiceNames", svc+"="+name, "must end in .%s.%s", reg.Name, svc)
		}
	}
	for _, az := range c.AvailabilityZones {
		if !strings.HasPrefix(az, reg.Name) {
			fail("availabilityZones", az, "is not a zone of %s", reg.Name)
		}
	}
	offered, err := offeredTypes(c, reg)
	if err != nil {
		errs = append(errs, err)
	}
	switch c.Target {
	case "ec2":
		errs = append(errs, checkEC2(c, reg)...)
	case "sagemaker":
		errs = append(errs, checkSageMaker(c, reg)...)
	case "eks":
		errs = append(errs, checkEKS(c, reg)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	opts := sizing.Options{
		GPUMemoryUtilization: c.GPUMemoryUtilization,
		MinContextLength:     c.MinContextLength,
		MaxModelLen:          c.MaxModelLen,
	}
	if c.GuardModel == GuardModelColocated {
		opts.Colocated = sizing.GuardColocated()
	}
	if c.Target == "sagemaker" && c.SageMakerContainer == ContainerLMI {
		opts.NoPipelineParallel, opts.Server = true, "the LMI container's vLLM rolling batch"
	}
	factors := sizing.ThroughputFactors(c.ThroughputFactors)
	offers := offersOf(reg, byPrice(reg, offered))
	ranked := sizing.RankByValue(d.Model, offers, opts, factors)
	if c.InstanceType == "" {
		if len(ranked) == 0 {
			return nil, &ConfigError{Key: key("model"), Value: c.Model, Msg: fmt.Sprintf(
				"fits no GPU instance type offered in %s (%s) with minContextLength %d%s",
				reg.Name, strings.Join(offered, ", "), opts.MinContextLength, maxLenHint(c))}
		}
		d.Decision = ranked[0].Decision
		if note := sizing.ValueNote(ranked); note != "" {
			d.Decision.Notes = append(d.Decision.Notes, note)
		}
	} else {
		t, err := sizing.LookupInstanceType(c.InstanceType)
		if err != nil {
			return nil, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: strings.TrimPrefix(err.Error(), fmt.Sprintf("%q is ", c.InstanceType))}
		}
		if !slices.Contains(offered, c.InstanceType) {
			return nil, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: fmt.Sprintf(
				"is not offered in %s, which has %s (override the list with offeredInstanceTypes if AWS added it)",
				reg.Name, strings.Join(offered, ", "))}
		}
		dec, err := sizing.Decide(d.Model, t, opts)
		if err != nil {
			msg := err.Error()
			var fe *sizing.FitError
			if errors.As(err, &fe) {
				msg = "cannot serve " + c.Model + ": " + fe.Reason
			}
			if len(ranked) > 0 {
				msg += fmt.Sprintf("; the best-value instance type offered in %s that fits is %s (%s)",
					reg.Name, ranked[0].Decision.InstanceType, ranked[0].Decision.Summary())
			} else {
				msg += fmt.Sprintf("; no instance type offered in %s fits it", reg.Name)
			}
			return nil, &ConfigError{Key: key("instanceType"), Value: c.InstanceType, Msg: msg}
		}
		d.Decision = dec
	}
	d.Instance, _ = sizing.LookupInstanceType(d.Decision.InstanceType)

	d.WeightsPrefix = c.WeightsPrefix
	if d.WeightsPrefix == "" && c.WeightsSource == "s3" {
		d.WeightsPrefix = "models/" + d.Model.ModelScopeID + "/"
	}
	d.Cost = estimate(reg, d.Decision.InstanceType, c.PricePerHour)
	switch c.Target {
	case "ec2":
		err = resolveEC2(d, ranked, opts)
	case "sagemaker":
		err = resolveSageMaker(d)
	case "eks":
		err = resolveEKS(d)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func maxLenHint(c *Config) string {
	if c.MaxModelLen > 0 {
		return fmt.Sprintf(" and maxModelLen %d", c.MaxModelLen)
	}
	return ""
}

// offeredTypes is the region's sizable GPU instance types for the target,
// or the configured override, checked against the catalog.
func offeredTypes(c *Config, reg region.Info) ([]string, error) {
	if len(c.OfferedInstanceTypes) == 0 {
		if c.Target == "sagemaker" {
			return reg.OfferedSageMakerInstanceTypes(), nil
		}
		return reg.OfferedGPUInstanceTypes(), nil
	}
	var errs []error
	for _, t := range c.OfferedInstanceTypes {
		if _, err := sizing.LookupInstanceType(t); err != nil {
			errs = append(errs, &ConfigError{Key: key("offeredInstanceTypes"), Value: t, Msg: "is not in the sizing catalog: " +
				strings.Join(sizing.InstanceTypeNames(), ", ")})
		}
	}
	out := append([]string(nil), c.OfferedInstanceTypes...)
	sort.Strings(out)
	return out, errors.Join(errs...)
}

// byPrice orders instance types cheapest first; types without a price go
// last, smallest GPU memory first.
func byPrice(reg region.Info, names []string) []sizing.InstanceType {
	out := make([]sizing.InstanceType, 0, len(names))
	for _, n := range names {
		if t, err := sizing.LookupInstanceType(n); err == nil {
			out = append(out, t)
		}
	}
	price := func(t sizing.InstanceType) float64 {
		// SageMaker ml.* types are ordered by the EC2 price of the same
		// hardware: their own prices are not sourced, and they follow it.
		if p, ok := reg.OnDemandPrice(strings.TrimPrefix(t.Name, "ml.")); ok {
			return p.PerHour
		}
		return math.Inf(1)
	}
	sort.SliceStable(out, func(i, j int) bool {
		pi, pj := price(out[i]), price(out[j])
		if pi != pj {
			return pi < pj
		}
		return out[i].GPUMemoryMiB() < out[j].GPUMemoryMiB()
	})
	return out
}

// offersOf prices the candidates for the value ranking; SageMaker ml.* types
// by the EC2 price of the same hardware, as byPrice orders them.
func offersOf(reg region.Info, types []sizing.InstanceType) []sizing.Offer {
	out := make([]sizing.Offer, len(types))
	for i, t := range types {
		p, ok := reg.OnDemandPrice(strings.TrimPrefix(t.Name, "ml."))
		out[i] = sizing.Offer{Type: t, PricePerHour: p.PerHour, Priced: ok}
	}
	return out
}

func estimate(reg region.Info, instanceType string, override float64) Cost {
	c := Cost{Notes: []string{"GPU instance on-demand only: EBS, S3, NAT gateway, VPC endpoints and data transfer are not included"}}
	if override > 0 {
		c.Known, c.PerHour, c.Basis = true, override, "deepseek-r1-cn:pricePerHour"
		c.Currency = "CNY"
		if !reg.IsChina() {
			c.Currency = "USD"
		}
	} else if p, ok := reg.OnDemandPrice(instanceType); ok {
		c.Known, c.PerHour, c.Currency = true, p.PerHour, p.Currency
		c.Basis = fmt.Sprintf("%s on-demand price of %s, %s", p.Region, p.AsOf, p.Source)
		if note := reg.PriceBasisNote(p); note != "" {
			c.Notes = append(c.Notes, note)
		}
	} else {
		c.Notes = append(c.Notes, fmt.Sprintf("no sourced price for %s in %s: set deepseek-r1-cn:pricePerHour", instanceType, reg.Name))
		return c
	}
	c.PerMonth = math.Round(c.PerHour*HoursPerMonth*100) / 100
	return c
}
