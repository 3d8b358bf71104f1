// Command bench measures what the guardrail gateway costs, in one run:
//
//	go run ./cmd/guardrail/bench [-policy cmd/guardrail/policies/default/policy.yaml] [-tokens 300] [-token-delay 1ms]
//
// It starts, in this process, a fake vLLM (fakevllm: configurable token
// count and per-token delay) and gateways in front of it with the policy
// (sync and async streaming), then compares direct-to-upstream requests
// with requests through the gateway:
//
//   - added latency (p50, p99) of non-streamed chat completions;
//   - time to first token and total time of streamed answers, sync and
//     async;
//   - throughput with 64 concurrent clients;
//   - memory per open stream (heap and stack growth with N streams open
//     through the gateway, minus the same N streams open directly, / N).
//
// It prints markdown tables. Everything shares the machine's cores, so the
// numbers are an upper bound on what the gateway adds on its own host.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/detect"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardmodel"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/proxy"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/sse"
)

type config struct {
	policyPath    string
	tokens        int
	tokenDelay    time.Duration
	requests      int
	streamSamples int
	streamPar     int
	concurrency   int
	duration      time.Duration
	openStreams   int
	guardDelay    time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.policyPath, "policy", "", "policy file (default: the example policy, looked up from the repository root or cmd/guardrail)")
	flag.IntVar(&c.tokens, "tokens", 300, "tokens per answer (half reasoning, half answer; 3 runes per token)")
	flag.DurationVar(&c.tokenDelay, "token-delay", time.Millisecond, "per-token delay of the fake vLLM for the streaming measurements")
	flag.IntVar(&c.requests, "requests", 2000, "non-streamed requests per side for the latency percentiles")
	flag.IntVar(&c.streamSamples, "stream-samples", 24, "streamed requests per mode")
	flag.IntVar(&c.streamPar, "stream-parallel", 4, "streamed requests in flight at once (each side)")
	flag.IntVar(&c.concurrency, "concurrency", 64, "concurrent clients for the throughput measurement")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of each throughput measurement")
	flag.IntVar(&c.openStreams, "open-streams", 500, "streams held open for the memory measurement")
	flag.DurationVar(&c.guardDelay, "guard-delay", 0, "simulated time the fake guard model takes per call (0: the step's own overhead only)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(c, os.Stdout); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func findPolicy(p string) (string, error) {
	if p != "" {
		return p, nil
	}
	for _, cand := range []string{"cmd/guardrail/policies/default/policy.yaml", "policies/default/policy.yaml", "../policies/default/policy.yaml"} {
		if _, err := os.Stat(cand); err == nil {
			return cand, nil
		}
	}
	return "", errors.New("example policy not found: run from the repository root or pass -policy")
}

// bench holds the servers and clients.
type bench struct {
	c       config
	up      *fakevllm.Server
	direct  string // base URLs
	sync    string
	guarded string // sync, with the guard model step against a fake guard endpoint
	async   string
	client  *http.Client
	holdbk  int
	servers []*httptest.Server
}

const clientKey = "sk-bench"

func run(c config, out io.Writer) error {
	path, err := findPolicy(c.policyPath)
	if err != nil {
		return err
	}
	pol, err := policy.Load(path)
	if err != nil {
		return err
	}
	eng, err := detect.New(pol)
	if err != nil {
		return fmt.Errorf("building the engine: %w", err)
	}
	half := c.tokens / 2
	b := &bench{c: c, holdbk: eng.Holdback(guard.Output)}
	b.up = &fakevllm.Server{
		APIKey:     "sk-upstream",
		TokenRunes: 3,
		Default: fakevllm.Reply{
			Reasoning: fakevllm.Lorem(half, 3),
			Content:   fakevllm.Lorem(c.tokens-half, 3),
			Style:     fakevllm.ReasoningContent,
		},
	}
	upSrv := httptest.NewServer(b.up)
	b.servers = append(b.servers, upSrv)
	defer b.close()
	b.direct = upSrv.URL
	upURL, _ := url.Parse(upSrv.URL)
	for _, mode := range []proxy.StreamMode{proxy.StreamSync, proxy.StreamAsync} {
		opts := proxy.Options{Upstream: upURL, UpstreamAPIKey: "sk-upstream", APIKeys: []string{clientKey}, StreamMode: mode,
			SkipReasoningScan: !pol.Reasoning.ScanReasoning, StripReasoning: pol.Reasoning.StripReasoning}
		if pol.FailMode == policy.FailOpen {
			opts.FailMode = proxy.FailOpen
		}
		// The audit log is formatted as in production, then discarded.
		gw, err := proxy.New(eng, opts, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		srv := httptest.NewServer(gw)
		b.servers = append(b.servers, srv)
		if mode == proxy.StreamSync {
			b.sync = srv.URL
		} else {
			b.async = srv.URL
		}
	}
	// A gateway with the guard model step, against an endpoint that
	// answers like Qwen3Guard-Gen ("Safety: Safe") after -guard-delay.
	guardSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if c.guardDelay > 0 {
			time.Sleep(c.guardDelay)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"Safety: Safe\nCategories: None"},"finish_reason":"stop"}]}`)
	}))
	b.servers = append(b.servers, guardSrv)
	gp, err := policy.Parse([]byte("guardModel: {model: Qwen/Qwen3Guard-Gen-0.6B}\n"), "")
	if err != nil {
		return err
	}
	gclient, err := guardmodel.NewClient(guardmodel.ClientConfig{Endpoint: guardSrv.URL + "/v1", Model: gp.GuardModel.Model, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	gopts := proxy.Options{Upstream: upURL, UpstreamAPIKey: "sk-upstream", APIKeys: []string{clientKey}, StreamMode: proxy.StreamSync,
		SkipReasoningScan: !pol.Reasoning.ScanReasoning, StripReasoning: pol.Reasoning.StripReasoning,
		Classifier: guardmodel.NewClassifier(gclient, gp.GuardModel)}
	ggw, err := proxy.New(eng, gopts, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	gsrv := httptest.NewServer(ggw)
	b.servers = append(b.servers, gsrv)
	b.guarded = gsrv.URL
	b.client = &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}

	fmt.Fprintf(out, "# Guardrail gateway benchmark\n\n")
	fmt.Fprintf(out, "- policy: `%s` (%s), output holdback %d bytes\n", path, pol.Name, b.holdbk)
	fmt.Fprintf(out, "- answer: %d tokens of 3 runes (half `reasoning_content`, half `content`), prompt %d bytes\n", c.tokens, len(prompt))
	fmt.Fprintf(out, "- machine: %s/%s, %d CPUs (GOMAXPROCS %d), %s; client, gateway and fake vLLM share them\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())

	if err := b.latency(out); err != nil {
		return err
	}
	if err := b.streaming(out); err != nil {
		return err
	}
	if err := b.ttftTokens(out, eng); err != nil {
		return err
	}
	if err := b.throughput(out); err != nil {
		return err
	}
	return b.memory(out)
}

func (b *bench) close() {
	for _, s := range b.servers {
		s.Close()
	}
}

// prompt is a realistic prompt: mixed Chinese and English, no finding.
var prompt = strings.Repeat("请帮我比较 cn-north-1 和 cn-northwest-1 两个区域的 GPU 实例价格，并给出部署 DeepSeek-R1 的建议。Compare g5 and p3 instances for serving. ", 3)

func body(stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":          "deepseek-r1",
		"messages":       []map[string]string{{"role": "user", "content": prompt}},
		"stream":         stream,
		"stream_options": map[string]bool{"include_usage": stream},
		"temperature":    0.6,
	})
	return b
}

func (b *bench) post(ctx context.Context, base string, stream bool) (*http.Response, error) {
	return b.postID(ctx, base, stream, "")
}

func (b *bench) postID(ctx context.Context, base string, stream bool, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body(stream)))
	if err != nil {
		return nil, err
	}
	if id != "" {
		req.Header.Set("X-Request-Id", id) // the gateway passes it on to vLLM
	}
	key := clientKey
	if base == b.direct {
		key = "sk-upstream"
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("%s: status %d: %s", base, resp.StatusCode, msg)
	}
	return resp, nil
}

// complete does one non-streamed request and returns its duration.
func (b *bench) complete(base string) (time.Duration, error) {
	start := time.Now()
	resp, err := b.post(context.Background(), base, false)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), err
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

// latency: sequential non-streamed requests, direct and through the
// gateway alternately so that drift (GC, frequency scaling) hits both.
func (b *bench) latency(out io.Writer) error {
	b.up.SetTokenDelay(0)
	for range 200 { // warm up connections and caches
		if _, err := b.complete(b.direct); err != nil {
			return err
		}
		if _, err := b.complete(b.sync); err != nil {
			return err
		}
	}
	var direct, gw []time.Duration
	for range b.c.requests {
		d, err := b.complete(b.direct)
		if err != nil {
			return err
		}
		g, err := b.complete(b.sync)
		if err != nil {
			return err
		}
		direct, gw = append(direct, d), append(gw, g)
	}
	fmt.Fprintf(out, "## Non-streamed chat completion, %d sequential requests each (fake vLLM answers at once)\n\n", b.c.requests)
	fmt.Fprintf(out, "| | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n")
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", name, ms(pct(d, .5)), ms(pct(d, .9)), ms(pct(d, .99)), ms(pct(d, 1)))
	}
	row("direct to vLLM", direct)
	row("through the gateway", gw)
	fmt.Fprintf(out, "| **added by the gateway** | **%s** | %s | **%s** | |\n\n",
		ms(pct(gw, .5)-pct(direct, .5)), ms(pct(gw, .9)-pct(direct, .9)), ms(pct(gw, .99)-pct(direct, .99)))

	// The guard model step, measured apart: the same requests through a
	// gateway that also asks a guard model (twice: the prompt, then the
	// answer), against the rules-only gateway.
	var guarded []time.Duration
	gw = gw[:0]
	for range b.c.requests {
		g, err := b.complete(b.sync)
		if err != nil {
			return err
		}
		m, err := b.complete(b.guarded)
		if err != nil {
			return err
		}
		gw, guarded = append(gw, g), append(guarded, m)
	}
	fmt.Fprintf(out, "### The guard model step (fake endpoint answering in %s; prompt and answer each classified once)\n\n", b.c.guardDelay)
	fmt.Fprintf(out, "| | p50 | p90 | p99 | max |\n|---|---|---|---|---|\n")
	row("gateway, rules only", gw)
	row("gateway, rules and guard model", guarded)
	fmt.Fprintf(out, "| **added by the guard model step** | **%s** | %s | **%s** | |\n\n",
		ms(pct(guarded, .5)-pct(gw, .5)), ms(pct(guarded, .9)-pct(gw, .9)), ms(pct(guarded, .99)-pct(gw, .99)))
	fmt.Fprintf(out, "This is the step's own cost (two HTTP calls to a local endpoint, JSON, parsing the verdict) plus -guard-delay per call; a real Qwen3Guard-Gen adds its generation time for a few output tokens on top (not measured here: no GPU).\n\n")
	return nil
}

type streamTiming struct {
	ttft, total time.Duration
	// relay is how long the last event ([DONE]) took from the fake vLLM's
	// write to the client's read: the per-chunk latency of the path,
	// without the generation time (and its timer noise) in it.
	relay time.Duration
}

var requestSeq atomic.Int64

// stream does one streamed request: time to the first text (content or
// reasoning) and to the end.
func (b *bench) stream(base string) (streamTiming, error) {
	id := fmt.Sprintf("bench-%d", requestSeq.Add(1))
	start := time.Now()
	resp, err := b.postID(context.Background(), base, true, id)
	if err != nil {
		return streamTiming{}, err
	}
	defer resp.Body.Close()
	var t streamTiming
	var doneRead time.Time
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return t, err
		}
		if bytes.Equal(ev.Data, sse.Done) {
			doneRead = time.Now()
		}
		if t.ttft == 0 && hasText(ev.Data) {
			t.ttft = time.Since(start)
		}
	}
	t.total = time.Since(start)
	if doneWritten, ok := b.up.DoneAt(id); ok && !doneRead.IsZero() {
		t.relay = doneRead.Sub(doneWritten)
	}
	if t.ttft == 0 {
		return t, errors.New("stream without text")
	}
	return t, nil
}

func hasText(data []byte) bool {
	var c struct {
		Choices []struct {
			Delta map[string]any `json:"delta"`
		} `json:"choices"`
	}
	if json.Unmarshal(data, &c) != nil {
		return false
	}
	for _, ch := range c.Choices {
		for _, k := range []string{"content", "reasoning_content", "reasoning"} {
			if s, _ := ch.Delta[k].(string); s != "" {
				return true
			}
		}
	}
	return false
}

// streaming: streamed answers at the configured per-token delay, a few at
// a time, direct and through the sync and async gateways.
func (b *bench) streaming(out io.Writer) error {
	b.up.SetTokenDelay(b.c.tokenDelay)
	sides := []struct{ name, base string }{{"direct to vLLM", b.direct}, {"gateway, sync", b.sync}, {"gateway, async", b.async}}
	results := make([][]streamTiming, len(sides))
	for i, s := range sides {
		var mu sync.Mutex
		var firstErr error
		sem := make(chan struct{}, max(1, b.c.streamPar))
		var wg sync.WaitGroup
		for range b.c.streamSamples {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				t, err := b.stream(s.base)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				results[i] = append(results[i], t)
			})
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
	}
	fmt.Fprintf(out, "## Streamed chat completion, %d tokens at %s per token, %d streams per side (%d at a time)\n\n", b.c.tokens, b.c.tokenDelay, b.c.streamSamples, b.c.streamPar)
	fmt.Fprintf(out, "| | TTFT p50 | TTFT p99 | added TTFT p50 | total p50 | total p99 | last-chunk relay p50 | last-chunk relay p99 |\n|---|---|---|---|---|---|---|---|\n")
	get := func(ts []streamTiming, f func(streamTiming) time.Duration) []time.Duration {
		d := make([]time.Duration, len(ts))
		for i, t := range ts {
			d[i] = f(t)
		}
		return d
	}
	ttft := func(t streamTiming) time.Duration { return t.ttft }
	total := func(t streamTiming) time.Duration { return t.total }
	relay := func(t streamTiming) time.Duration { return t.relay }
	base := results[0]
	for i, s := range sides {
		r := results[i]
		addT := ""
		if i > 0 {
			addT = ms(pct(get(r, ttft), .5) - pct(get(base, ttft), .5))
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.name,
			ms(pct(get(r, ttft), .5)), ms(pct(get(r, ttft), .99)), addT,
			ms(pct(get(r, total), .5)), ms(pct(get(r, total), .99)),
			ms(pct(get(r, relay), .5)), ms(pct(get(r, relay), .99)))
	}
	fmt.Fprintf(out, "\nTotal time is the generation time (%d tokens x %s, plus timer overshoot) plus the relay; differences between the rows of a few tens of ms are timer noise under CPU contention, not pipeline delay: the last-chunk relay is the per-chunk latency of each path.\n\n", b.c.tokens, b.c.tokenDelay)
	fmt.Fprintf(out, "Sync mode releases a text as soon as nothing that could still become a match is in it (the engine's ScanPartial): ordinary prose goes out with its last word held, so the added TTFT is about one token time, whatever the policy's longest phrase; the next table counts it in tokens. Async mode holds nothing.\n\n")
	return nil
}

// ttftTokens measures the added time to first token of sync mode in
// tokens, without timers: ordinary English and Chinese answers are cut
// into tokens as a tokenizer would (answers.go) and fed one token at a
// time to the engine's streaming scan, as the gateway's window does; the
// first text goes out after token k, where the direct path shows it after
// token 1, so sync mode adds k-1 tokens. It also reports how many tokens
// are held back on average over the whole answer, and what the old
// holdback (the policy's longest match) would have held.
func (b *bench) ttftTokens(out io.Writer, eng *detect.Engine) error {
	rng := rand.New(rand.NewPCG(1, 2))
	fmt.Fprintf(out, "## Added time to first token in sync mode, in tokens (ordinary answers, every token a separate delta)\n\n")
	fmt.Fprintf(out, "| answers | samples | added TTFT p50 | p90 | max | tokens held back, mean over the answer | old holdback (%d bytes) in tokens |\n|---|---|---|---|---|---|---|\n", b.holdbk)
	for _, set := range []struct {
		name    string
		answers []string
	}{{"English", englishAnswers}, {"Chinese", chineseAnswers}} {
		var added []time.Duration // in tokens, as Durations for pct
		var heldSum, heldN, bytesSum, tokSum int
		for rep := 0; rep < 10; rep++ {
			for _, a := range set.answers {
				toks := tokenize(rng, a)
				first := -1
				var buf strings.Builder
				ends := make([]int, 0, len(toks))
				for j, tk := range toks {
					buf.WriteString(tk)
					ends = append(ends, buf.Len())
					p := eng.ScanPartial(guard.Output, buf.String())
					if first < 0 && p.Release > 0 {
						first = j
					}
					held := 0
					for _, e := range ends {
						if e > p.Release {
							held++
						}
					}
					heldSum += held
					heldN++
				}
				if first < 0 {
					first = len(toks) - 1 // released at the end of the answer
				}
				added = append(added, time.Duration(first))
				bytesSum += len(a)
				tokSum += len(toks)
			}
		}
		perTok := float64(bytesSum) / float64(tokSum)
		fmt.Fprintf(out, "| %s | %d | **%d** | %d | %d | %.2f | %.0f |\n", set.name, len(added),
			int(pct(added, .5)), int(pct(added, .9)), int(pct(added, 1)), float64(heldSum)/float64(heldN), float64(b.holdbk)/perTok)
	}
	fmt.Fprintln(out)
	return nil
}

// throughput: concurrent clients doing non-streamed requests (the fake
// vLLM answers at once) and streamed ones (no token delay) for a fixed
// time.
func (b *bench) throughput(out io.Writer) error {
	b.up.SetTokenDelay(0)
	measure := func(base string, stream bool) (float64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), b.c.duration)
		defer cancel()
		var n atomic.Int64
		var firstErr atomic.Pointer[error]
		var wg sync.WaitGroup
		for range b.c.concurrency {
			wg.Go(func() {
				for ctx.Err() == nil {
					var err error
					if stream {
						_, err = b.stream(base)
					} else {
						_, err = b.complete(base)
					}
					if err != nil {
						if ctx.Err() == nil {
							firstErr.CompareAndSwap(nil, &err)
						}
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		if p := firstErr.Load(); p != nil {
			return 0, *p
		}
		return float64(n.Load()) / b.c.duration.Seconds(), nil
	}
	fmt.Fprintf(out, "## Throughput, %d concurrent clients, %s per measurement\n\n", b.c.concurrency, b.c.duration)
	fmt.Fprintf(out, "| | direct (req/s) | gateway sync (req/s) | gateway async (req/s) | gateway sync / direct |\n|---|---|---|---|---|\n")
	for _, stream := range []bool{false, true} {
		d, err := measure(b.direct, stream)
		if err != nil {
			return err
		}
		s, err := measure(b.sync, stream)
		if err != nil {
			return err
		}
		a, err := measure(b.async, stream)
		if err != nil {
			return err
		}
		name := "non-streamed"
		if stream {
			name = "streamed"
		}
		fmt.Fprintf(out, "| %s | %.0f | %.0f | %.0f | %.0f%% |\n", name, d, s, a, 100*s/d)
	}
	fmt.Fprintln(out)
	return nil
}

// memory: open N streams that stay open (the fake vLLM pauses an hour per
// token after the first few), directly and through the gateway, and
// compare heap and stack in use. The direct run accounts for the client
// and the fake vLLM, which live in this process too.
func (b *bench) memory(out io.Writer) error {
	b.up.SetTokenDelay(time.Hour)
	open := func(base string) (uint64, error) {
		ctx, cancel := context.WithCancel(context.Background())
		before := inUse()
		var wg sync.WaitGroup
		errs := make(chan error, b.c.openStreams)
		var bodies []io.Closer
		var mu sync.Mutex
		for range b.c.openStreams {
			wg.Go(func() {
				resp, err := b.post(ctx, base, true)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				bodies = append(bodies, resp.Body)
				mu.Unlock()
				// Headers (and, through the gateway, the role chunk) are
				// here: the stream is open and waiting for tokens.
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			cancel()
			return 0, err
		}
		time.Sleep(200 * time.Millisecond) // let every handler reach its wait
		after := inUse()
		cancel()
		for _, c := range bodies {
			c.Close()
		}
		time.Sleep(200 * time.Millisecond)
		if after < before {
			return 0, nil
		}
		return after - before, nil
	}
	direct, err := open(b.direct)
	if err != nil {
		return err
	}
	viaSync, err := open(b.sync)
	if err != nil {
		return err
	}
	viaAsync, err := open(b.async)
	if err != nil {
		return err
	}
	n := uint64(b.c.openStreams)
	per := func(v uint64) string {
		if v < direct {
			return "~0 KiB"
		}
		return fmt.Sprintf("%.1f KiB", float64(v-direct)/float64(n)/1024)
	}
	fmt.Fprintf(out, "## Memory per open stream, %d streams held open\n\n", b.c.openStreams)
	fmt.Fprintf(out, "| | heap+stack growth | per stream | gateway's share per stream |\n|---|---|---|---|\n")
	fmt.Fprintf(out, "| direct to vLLM (client + fake vLLM) | %.1f MiB | %.1f KiB | |\n", mib(direct), float64(direct)/float64(n)/1024)
	fmt.Fprintf(out, "| through the gateway, sync | %.1f MiB | %.1f KiB | **%s** |\n", mib(viaSync), float64(viaSync)/float64(n)/1024, per(viaSync))
	fmt.Fprintf(out, "| through the gateway, async | %.1f MiB | %.1f KiB | **%s** |\n\n", mib(viaAsync), float64(viaAsync)/float64(n)/1024, per(viaAsync))
	return nil
}

func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func mib(v uint64) float64 { return float64(v) / (1 << 20) }
