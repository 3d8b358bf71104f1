package sizing

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Why price alone is not the cheapest fit: a T4 costs about half an A10G in
// the China regions but decodes at about half its speed, and DeepSeek-R1
// models reason for thousands of tokens before they answer, so tokens per
// second is what a user waits on. vLLM's decode step reads every weight once
// per generated token (plus the KV cache), so at the batch sizes of one
// server it is bound by GPU memory bandwidth ("most model inference is memory
// bound": Baseten, "NVIDIA A10 vs A10G for ML model inference"). The expected
// throughput of a GPU is therefore taken as its memory bandwidth relative to
// the A10G's.
//
// Not modelled, and UNCONFIRMED in size, so overridable with
// ThroughputFactors: pre-Ampere GPUs (T4, V100) have no FlashAttention 2, and
// vLLM's V1 engine serves them with Triton kernels (FlexAttention by default,
// much slower: vLLM issue #25528), which makes them slower still than their
// bandwidth says; tensor parallelism over PCIe (g4dn, g5) costs some of the
// added bandwidth. Both only make pre-Ampere GPUs look better than they are.

// referenceGPU is the GPU whose throughput is 1.
var referenceGPU = gpuA10G

// ThroughputFactors overrides the expected decode throughput of a GPU,
// relative to one A10G, by GPU name ("NVIDIA T4": 0.4).
type ThroughputFactors map[string]float64

// Validate refuses factors that are not positive, finite numbers, and names
// of GPUs the catalog does not have.
func (f ThroughputFactors) Validate() error {
	known := map[string]bool{}
	for _, t := range instanceTypes {
		known[t.GPU.Name] = true
	}
	var errs []error
	for name, v := range f {
		if !known[name] {
			errs = append(errs, fmt.Errorf("throughput factor for %q: no such GPU in the catalog", name))
		}
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("throughput factor for %q is %v: it must be a positive number", name, v))
		}
	}
	return errors.Join(errs...)
}

// For is the expected decode throughput of one GPU relative to one A10G: the
// override if there is one, else the ratio of memory bandwidths.
func (f ThroughputFactors) For(g GPU) float64 {
	if v, ok := f[g.Name]; ok {
		return v
	}
	if g.MemoryBandwidthGBps <= 0 {
		return 1
	}
	return float64(g.MemoryBandwidthGBps) / float64(referenceGPU.MemoryBandwidthGBps)
}

// Offer is an instance type at its on-demand price.
type Offer struct {
	Type InstanceType
	// PricePerHour is the on-demand price; Priced is false when none is known.
	PricePerHour float64
	Priced       bool
}

// Ranked is an offer the model fits, with how it is served there and what a
// unit of throughput costs on it.
type Ranked struct {
	Offer
	Decision Decision
	// Throughput is the expected decode throughput relative to one A10G: the
	// GPUs the decision uses (tensor x pipeline parallel) times each one's
	// factor. Pipeline stages add throughput only across concurrent
	// requests, which is how a shared server runs.
	Throughput float64
	// PricePerThroughput is PricePerHour / Throughput; 0 when not priced.
	PricePerThroughput float64
}

// Summary is a one-line description for plans: the sizing, the relative
// throughput, and the price of a unit of it when priced.
func (r Ranked) Summary() string {
	s := fmt.Sprintf("%s: %s; throughput %.2f x A10G", r.Decision.InstanceType, r.Decision.Summary(), r.Throughput)
	if r.Priced {
		s += fmt.Sprintf("; %.3f/h, %.3f/h per A10G of throughput", r.PricePerHour, r.PricePerThroughput)
	} else {
		s += "; no price"
	}
	return s
}

// RankByValue sizes the model on each offer and returns those it fits, best
// value first: priced offers by price per unit of expected throughput (ties
// by price, then in the given order), then unpriced offers in the given
// order. It is FirstFit's replacement where price alone would pick a slower
// GPU that is not the better buy.
func RankByValue(m Model, offers []Offer, opts Options, f ThroughputFactors) []Ranked {
	out := make([]Ranked, 0, len(offers))
	for _, o := range offers {
		d, err := Decide(m, o.Type, opts)
		if err != nil {
			continue
		}
		r := Ranked{Offer: o, Decision: d}
		r.Throughput = float64(d.TensorParallel*d.PipelineParallel) * f.For(o.Type.GPU)
		if o.Priced {
			r.PricePerThroughput = o.PricePerHour / r.Throughput
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Priced != b.Priced {
			return a.Priced
		}
		if !a.Priced {
			return false
		}
		if a.PricePerThroughput != b.PricePerThroughput {
			return a.PricePerThroughput < b.PricePerThroughput
		}
		return a.PricePerHour < b.PricePerHour
	})
	return out
}

// BestValue is the first of RankByValue.
func BestValue(m Model, offers []Offer, opts Options, f ThroughputFactors) (Ranked, bool) {
	r := RankByValue(m, offers, opts, f)
	if len(r) == 0 {
		return Ranked{}, false
	}
	return r[0], true
}

// ValueNote explains, for a plan, why the chosen type was picked over a
// cheaper one the model also fits; "" when the choice is also the cheapest.
func ValueNote(ranked []Ranked) string {
	if len(ranked) < 2 || !ranked[0].Priced {
		return ""
	}
	best := ranked[0]
	var cheaper []string
	for _, r := range ranked[1:] {
		if r.Priced && r.PricePerHour < best.PricePerHour {
			cheaper = append(cheaper, fmt.Sprintf("%s (%.3f/h, throughput %.2f)", r.Decision.InstanceType, r.PricePerHour, r.Throughput))
		}
	}
	if len(cheaper) == 0 {
		return ""
	}
	return fmt.Sprintf("%s (%.3f/h, throughput %.2f x A10G) is chosen over the cheaper %s: it costs less per unit "+
		"of expected decode throughput, which is GPU memory bandwidth relative to an A10G (override with throughput factors)",
		best.Decision.InstanceType, best.PricePerHour, best.Throughput, strings.Join(cheaper, ", "))
}
