package sizing

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cnNorth1 are on-demand CNY/h prices of cn-north-1 (Karpenter's generated
// price table of 2024-11-06, ../shared/reference/aws-cn.md).
var cnNorth1 = map[string]float64{
	"g4dn.xlarge": 5.223, "g4dn.2xlarge": 7.468, "g4dn.12xlarge": 38.849,
	"g5.xlarge": 9.514, "g5.2xlarge": 11.462, "g5.12xlarge": 53.641, "g5.48xlarge": 154.038,
	"p3.2xlarge": 36.078, "p3.8xlarge": 144.314,
}

func offers(t *testing.T, names ...string) []Offer {
	t.Helper()
	out := make([]Offer, len(names))
	for i, n := range names {
		p, ok := cnNorth1[n]
		out[i] = Offer{Type: mustType(t, n), PricePerHour: p, Priced: ok}
	}
	return out
}

func rankedTypes(r []Ranked) []string {
	out := make([]string, len(r))
	for i, x := range r {
		out[i] = x.Decision.InstanceType
	}
	return out
}

func TestThroughputFactorFor(t *testing.T) {
	tests := []struct {
		name string
		f    ThroughputFactors
		gpu  GPU
		want float64
	}{
		{"A10G is the reference", nil, gpuA10G, 1},
		{"T4 by bandwidth 320/600", nil, gpuT4, 320.0 / 600},
		{"V100 by bandwidth 900/600", nil, gpuV100, 1.5},
		{"override", ThroughputFactors{"NVIDIA T4": 0.4}, gpuT4, 0.4},
		{"override of another GPU leaves this one", ThroughputFactors{"NVIDIA T4": 0.4}, gpuA10G, 1},
		{"unknown bandwidth counts as the reference", nil, GPU{Name: "X"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, tc.f.For(tc.gpu), 1e-9)
		})
	}
}

func TestThroughputFactorsValidate(t *testing.T) {
	assert.NoError(t, ThroughputFactors(nil).Validate())
	assert.NoError(t, ThroughputFactors{"NVIDIA T4": 0.4, "NVIDIA V100": 1.2}.Validate())
	for name, f := range map[string]ThroughputFactors{
		"zero":        {"NVIDIA T4": 0},
		"negative":    {"NVIDIA T4": -1},
		"NaN":         {"NVIDIA T4": math.NaN()},
		"infinite":    {"NVIDIA T4": math.Inf(1)},
		"unknown GPU": {"NVIDIA H100": 3},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, f.Validate())
		})
	}
}

func TestRankByValue(t *testing.T) {
	tests := []struct {
		name    string
		model   string
		offers  []string
		factors ThroughputFactors
		want    []string
	}{
		// By price alone the T4 wins (FirstFit picks g4dn.xlarge at 5.223);
		// per unit of throughput it costs 5.223/0.533 = 9.79 against 9.514.
		{"1.5B: the A10G is the better buy than the cheaper T4", qwen1_5b,
			[]string{"g4dn.xlarge", "g5.xlarge", "g4dn.2xlarge"}, nil,
			[]string{"g5.xlarge", "g4dn.xlarge", "g4dn.2xlarge"}},
		// 38.849 / (4 x 0.533) = 18.2 against 53.641 / 4 = 13.4.
		{"14B: four A10G before four T4", qwen14b,
			[]string{"g4dn.12xlarge", "g5.12xlarge", "g5.xlarge"}, nil,
			[]string{"g5.12xlarge", "g4dn.12xlarge"}},
		{"a measured T4 factor can make the T4 the better buy again", qwen1_5b,
			[]string{"g5.xlarge", "g4dn.xlarge"}, ThroughputFactors{"NVIDIA T4": 0.6},
			[]string{"g4dn.xlarge", "g5.xlarge"}},
		{"same GPU and throughput: cheaper first", qwen7b,
			[]string{"g5.2xlarge", "g5.xlarge"}, nil,
			[]string{"g5.xlarge", "g5.2xlarge"}},
		{"what does not fit is left out", qwen32b,
			[]string{"g4dn.xlarge", "g5.xlarge", "g5.12xlarge"}, nil,
			[]string{"g5.12xlarge"}},
		{"unpriced types last, in the given order", qwen7b,
			[]string{"g5.4xlarge", "g5.8xlarge", "g5.2xlarge"}, nil,
			[]string{"g5.2xlarge", "g5.4xlarge", "g5.8xlarge"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := RankByValue(mustModel(t, tc.model), offers(t, tc.offers...), Options{}, tc.factors)
			assert.Equal(t, tc.want, rankedTypes(r))
		})
	}
}

func TestRankByValueNumbers(t *testing.T) {
	r := RankByValue(mustModel(t, qwen14b), offers(t, "g4dn.12xlarge", "g5.12xlarge"), Options{}, nil)
	require.Len(t, r, 2)
	assert.Equal(t, "g5.12xlarge", r[0].Decision.InstanceType)
	assert.InDelta(t, 4.0, r[0].Throughput, 1e-9)
	assert.InDelta(t, 53.641/4, r[0].PricePerThroughput, 1e-9)
	assert.InDelta(t, 4*320.0/600, r[1].Throughput, 1e-9)
	assert.InDelta(t, 38.849/(4*320.0/600), r[1].PricePerThroughput, 1e-9)
	assert.Equal(t, "8.6", r[0].Decision.ComputeCapability)
	assert.Equal(t, "7.5", r[1].Decision.ComputeCapability)

	// Pipeline stages count: qwen-7b on g5.48xlarge is TP 4 x PP 2.
	r = RankByValue(mustModel(t, qwen7b), offers(t, "g5.48xlarge"), Options{}, nil)
	require.Len(t, r, 1)
	assert.InDelta(t, 8.0, r[0].Throughput, 1e-9)
}

func TestRankByValueOptionsApply(t *testing.T) {
	r := RankByValue(mustModel(t, qwen7b), offers(t, "g5.xlarge", "g5.12xlarge"), Options{MinContextLength: 131072}, nil)
	assert.Equal(t, []string{"g5.12xlarge"}, rankedTypes(r))
}

func TestBestValue(t *testing.T) {
	best, ok := BestValue(mustModel(t, qwen1_5b), offers(t, "g4dn.xlarge", "g5.xlarge"), Options{}, nil)
	require.True(t, ok)
	assert.Equal(t, "g5.xlarge", best.Decision.InstanceType)

	_, ok = BestValue(mustModel(t, qwen32b), offers(t, "g4dn.xlarge"), Options{}, nil)
	assert.False(t, ok)
	_, ok = BestValue(mustModel(t, r1), offers(t, "g5.48xlarge"), Options{}, nil)
	assert.False(t, ok)
}

func TestValueNote(t *testing.T) {
	r := RankByValue(mustModel(t, qwen1_5b), offers(t, "g4dn.xlarge", "g5.xlarge"), Options{}, nil)
	note := ValueNote(r)
	assert.Contains(t, note, "g5.xlarge (9.514/h, throughput 1.00 x A10G) is chosen over the cheaper g4dn.xlarge (5.223/h, throughput 0.53)")
	assert.Contains(t, note, "memory bandwidth")

	cheapest := RankByValue(mustModel(t, qwen7b), offers(t, "g5.xlarge", "g5.2xlarge"), Options{}, nil)
	assert.Empty(t, ValueNote(cheapest), "no note when the best value is also the cheapest")
	assert.Empty(t, ValueNote(nil))
}

func TestRankedSummary(t *testing.T) {
	r := RankByValue(mustModel(t, qwen14b), offers(t, "g5.12xlarge", "g5.24xlarge"), Options{}, nil)
	require.Len(t, r, 2)
	assert.Equal(t, "g5.12xlarge: "+r[0].Decision.Summary()+"; throughput 4.00 x A10G; 53.641/h, 13.410/h per A10G of throughput",
		r[0].Summary())
	assert.Equal(t, "g5.24xlarge: "+r[1].Decision.Summary()+"; throughput 4.00 x A10G; no price", r[1].Summary())
}

func TestDecideRecordsComputeCapability(t *testing.T) {
	for name, want := range map[string]string{"g4dn.xlarge": "7.5", "g5.xlarge": "8.6", "p3.2xlarge": "7.0"} {
		d, err := Decide(mustModel(t, qwen1_5b), mustType(t, name), Options{})
		require.NoError(t, err)
		assert.Equal(t, want, d.ComputeCapability, name)
	}
}
