// Command eval measures what the guardrail's policy engine catches and what
// it wrongly stops, on the labelled corpus in cmd/guardrail/eval/corpus and
// on generated numbers:
//
//	go run ./cmd/guardrail/eval [-policy FILE] [-split dev|heldout|all] [-v]
//	go run ./cmd/guardrail/eval -guard fake:recall=0.9,fpr=0.02
//	go run ./cmd/guardrail/eval -guard http://127.0.0.1:8002/v1 -guard-model Qwen/Qwen3Guard-Gen-0.6B
//	go run ./cmd/guardrail/eval -guard replay:verdicts.jsonl
//
// It prints markdown tables: per category and per prompt-attack strength,
// the share of attacks caught (the prompt is blocked), of harmless
// look-alikes blocked, of PII found with its type, of numbers that are not
// PII taken for one, and of evasions (the same attack or PII with invisible
// characters or full-width forms) that got through where the plain form
// was caught. With -guard, the prompts the rules let through are also
// given to a guard model (see internal/guardmodel): a real one over the
// OpenAI API, a replay of verdicts recorded from one (-guard-record writes
// them), or a simulation with a stated recall and false-positive rate,
// which shows how the two stages combine and is not a measurement of any
// model.
//
// The corpus has two splits: dev, which the rules were written against,
// and heldout, which they were not tuned on. Report both.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/detect"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardmodel"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
)

// item is one labelled text of the corpus.
type item struct {
	Cat   string `json:"cat"`   // prompt_attack, word, topic, pii
	Label string `json:"label"` // attack (should be blocked), harmless, pii (should be found)
	Lang  string `json:"lang"`
	Kind  string `json:"kind"`
	Type  string `json:"type"`  // PII type, for label pii
	Topic string `json:"topic"` // for cat topic
	Text  string `json:"text"`
	split string
}

type config struct {
	policyPath string
	corpusDir  string
	split      string
	verbose    bool
	guard      string
	guardModel string
	record     string
	numbers    int
}

func main() {
	var c config
	flag.StringVar(&c.policyPath, "policy", "", "policy file (default: the example policy)")
	flag.StringVar(&c.corpusDir, "corpus", "", "corpus directory (default: cmd/guardrail/eval/corpus)")
	flag.StringVar(&c.split, "split", "all", "dev, heldout or all (all reports each split)")
	flag.BoolVar(&c.verbose, "v", false, "list every miss and false positive")
	flag.StringVar(&c.guard, "guard", "", "guard model: an OpenAI-compatible base URL, replay:FILE, or fake:recall=R,fpr=F (empty: rules only)")
	flag.StringVar(&c.guardModel, "guard-model", "Qwen/Qwen3Guard-Gen-0.6B", "model name for -guard URL")
	flag.StringVar(&c.record, "guard-record", "", "with -guard URL, write the verdicts to this JSONL file for replay")
	flag.IntVar(&c.numbers, "numbers", 2000, "generated numbers per kind for the long-number false positives")
	flag.Parse()
	if err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

func find(p string, cands ...string) (string, error) {
	if p != "" {
		return p, nil
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s not found: run from the repository root or pass the flag", cands[0])
}

func loadCorpus(dir string) ([]item, error) {
	var out []item
	for _, split := range []string{"dev", "heldout"} {
		f, err := os.Open(filepath.Join(dir, split+".jsonl"))
		if err != nil {
			return nil, fmt.Errorf("corpus: %w", err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var it item
			if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
				f.Close()
				return nil, fmt.Errorf("corpus %s line %d: %w", split, n, err)
			}
			it.split = split
			out = append(out, it)
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("corpus %s: %w", split, err)
		}
	}
	return out, nil
}

// judge is what a check of one prompt says.
type judge struct {
	blocked bool
	types   []string // finding types
}

// checker runs the engine, then, for prompts the engine lets through, the
// guard model when there is one.
type checker struct {
	eng   *detect.Engine
	guard classifier
	lat   []time.Duration
}

type classifier interface {
	classify(ctx context.Context, it item) (bool, error)
}

func (c *checker) check(ctx context.Context, it item, text string) (judge, error) {
	var j judge
	for _, f := range c.eng.Scan(guard.Input, text) {
		j.types = append(j.types, f.Type)
		j.blocked = j.blocked || f.Action == guard.ActionBlock
	}
	if c.guard != nil && !j.blocked && it.Cat != "pii" {
		start := time.Now()
		b, err := c.guard.classify(ctx, item{Cat: it.Cat, Label: it.Label, Text: text})
		c.lat = append(c.lat, time.Since(start))
		if err != nil {
			return j, err
		}
		j.blocked = b
	}
	return j, nil
}

// tally counts hits out of a total.
type tally struct{ hit, n int }

func (t *tally) add(ok bool) {
	t.n++
	if ok {
		t.hit++
	}
}

func (t tally) String() string {
	if t.n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(t.hit)/float64(t.n), t.hit, t.n)
}

func run(c config, out io.Writer) error {
	ppath, err := find(c.policyPath, "cmd/guardrail/policies/default/policy.yaml", "policies/default/policy.yaml", "../policies/default/policy.yaml")
	if err != nil {
		return err
	}
	cdir, err := find(c.corpusDir, "cmd/guardrail/eval/corpus", "eval/corpus", "corpus")
	if err != nil {
		return err
	}
	items, err := loadCorpus(cdir)
	if err != nil {
		return err
	}
	var g classifier
	switch {
	case c.guard == "":
	case strings.HasPrefix(c.guard, "fake:"):
		if g, err = newSimulated(strings.TrimPrefix(c.guard, "fake:")); err != nil {
			return err
		}
	case strings.HasPrefix(c.guard, "replay:"):
		if g, err = newReplay(strings.TrimPrefix(c.guard, "replay:")); err != nil {
			return err
		}
	default:
		rg, err := newRemote(c.guard, c.guardModel, c.record)
		if err != nil {
			return err
		}
		defer rg.close()
		g = rg
	}
	fmt.Fprintf(out, "# Guardrail detection on the labelled corpus\n\n- policy: `%s`\n- corpus: `%s` (%d items)\n", ppath, cdir, len(items))
	if g != nil {
		fmt.Fprintf(out, "- guard model: %s\n", describe(g))
	}
	fmt.Fprintln(out)
	splits := []string{c.split}
	if c.split == "all" {
		splits = []string{"dev", "heldout"}
	}
	ctx := context.Background()
	for _, split := range splits {
		if err := report(ctx, out, c, ppath, items, split, g); err != nil {
			return err
		}
	}
	if err := numbers(out, ppath, c.numbers); err != nil {
		return err
	}
	return nil
}

func engineAt(path string, s policy.Strength) (*detect.Engine, error) {
	p, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	if s != "" && p.PromptAttack.Enabled {
		p.PromptAttack.Strength = s
	}
	return detect.New(p)
}

// report prints the tables of one split.
func report(ctx context.Context, out io.Writer, c config, ppath string, all []item, split string, g classifier) error {
	var items []item
	for _, it := range all {
		if it.split == split {
			items = append(items, it)
		}
	}
	fmt.Fprintf(out, "## Split `%s` (%d items)\n\n", split, len(items))
	strengths := []policy.Strength{policy.StrengthLow, policy.StrengthMedium, policy.StrengthHigh}
	guards := []classifier{nil}
	if g != nil {
		guards = append(guards, g)
	}
	fmt.Fprintf(out, "| category | strength | guard model | attacks caught | harmless look-alikes blocked | evasions that got through |\n|---|---|---|---|---|---|\n")
	var misses []string
	for _, s := range strengths {
		eng, err := engineAt(ppath, s)
		if err != nil {
			return err
		}
		for _, gm := range guards {
			ch := &checker{eng: eng, guard: gm}
			byCat := map[string]*[3]tally{}
			cats := []string{}
			for _, it := range items {
				if it.Cat == "pii" {
					continue
				}
				for _, key := range []string{it.Cat + " (" + it.Lang + ")", "all attacks and look-alikes"} {
					if _, ok := byCat[key]; !ok {
						byCat[key] = &[3]tally{}
						cats = append(cats, key)
					}
				}
				j, err := ch.check(ctx, it, it.Text)
				if err != nil {
					return err
				}
				for _, key := range []string{it.Cat + " (" + it.Lang + ")", "all attacks and look-alikes"} {
					t := byCat[key]
					switch it.Label {
					case "attack":
						t[0].add(j.blocked)
					case "harmless":
						t[1].add(j.blocked)
					}
				}
				if c.verbose && s == policy.StrengthMedium && gm == nil {
					if it.Label == "attack" && !j.blocked {
						misses = append(misses, fmt.Sprintf("missed   %-13s %-10s %s", it.Cat, it.Kind, it.Text))
					}
					if it.Label == "harmless" && j.blocked {
						misses = append(misses, fmt.Sprintf("blocked  %-13s %-10s %s %v", it.Cat, it.Kind, it.Text, j.types))
					}
				}
				if it.Label == "attack" && j.blocked {
					for _, v := range evasions(it.Text) {
						jv, err := ch.check(ctx, it, v)
						if err != nil {
							return err
						}
						for _, key := range []string{it.Cat + " (" + it.Lang + ")", "all attacks and look-alikes"} {
							byCat[key][2].add(!jv.blocked)
						}
						if !jv.blocked && c.verbose && s == policy.StrengthMedium && gm == nil {
							misses = append(misses, fmt.Sprintf("evaded   %-13s %+q", it.Cat, v))
						}
					}
				}
			}
			slices.Sort(cats)
			gname := "no"
			if gm != nil {
				gname = "yes"
			}
			for _, cat := range cats {
				t := byCat[cat]
				name := cat
				if cat == "all attacks and look-alikes" {
					name = "**" + cat + "**"
				}
				fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", name, s, gname, t[0], t[1], t[2])
			}
		}
	}
	fmt.Fprintln(out)

	// PII, with the policy's own strength (it does not matter for PII).
	eng, err := engineAt(ppath, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "| PII type | found with its type | evasions that got through | numbers in text that are not PII, taken for PII |\n|---|---|---|---|\n")
	byType := map[string]*[2]tally{}
	var types []string
	var notPII tally
	for _, it := range items {
		if it.Cat != "pii" {
			continue
		}
		fs := eng.Scan(guard.Input, it.Text)
		if it.Label == "harmless" {
			bad := slices.ContainsFunc(fs, func(f guard.Finding) bool { return numberType(f.Type) })
			notPII.add(bad)
			if bad && c.verbose {
				misses = append(misses, fmt.Sprintf("PII FP   %-13s %s %v", it.Kind, it.Text, fs))
			}
			continue
		}
		if _, ok := byType[it.Type]; !ok {
			byType[it.Type] = &[2]tally{}
			types = append(types, it.Type)
		}
		t := byType[it.Type]
		found := hasType(fs, it.Type)
		t[0].add(found)
		if !found && c.verbose {
			misses = append(misses, fmt.Sprintf("PII miss %-13s %s %v", it.Type, it.Text, fs))
		}
		if found {
			for _, v := range evasions(it.Text) {
				ok := hasType(eng.Scan(guard.Input, v), it.Type)
				t[1].add(!ok)
				if !ok && c.verbose {
					misses = append(misses, fmt.Sprintf("evaded   %-13s %+q", it.Type, v))
				}
			}
		}
	}
	slices.Sort(types)
	for i, typ := range types {
		np := ""
		if i == 0 {
			np = notPII.String()
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", typ, byType[typ][0], byType[typ][1], np)
	}
	fmt.Fprintln(out)
	if len(misses) > 0 {
		fmt.Fprintf(out, "<details><summary>misses and false positives at MEDIUM without the guard model (%d)</summary>\n\n```\n%s\n```\n</details>\n\n", len(misses), strings.Join(misses, "\n"))
	}
	return nil
}

func hasType(fs []guard.Finding, typ string) bool {
	return slices.ContainsFunc(fs, func(f guard.Finding) bool { return f.Type == typ })
}

func numberType(t string) bool {
	return t == string(policy.PIIMobile) || t == string(policy.PIIBankCard) || t == string(policy.PIIResidentID)
}

// evasions spells a text the ways people hide it from filters while a
// model still reads it: a zero-width space, zero-width joiner, word joiner,
// byte-order mark or soft hyphen between every two characters, and all of
// it in full-width forms.
func evasions(s string) []string {
	var out []string
	for _, inv := range []string{"\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad"} {
		rs := []rune(s)
		var b strings.Builder
		for i, r := range rs {
			if i > 0 {
				b.WriteString(inv)
			}
			b.WriteRune(r)
		}
		out = append(out, b.String())
	}
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7F {
			r += 0xFF01 - '!'
		}
		b.WriteRune(r)
	}
	return append(out, b.String())
}

// numbers measures false positives of the number detectors on generated
// numbers that are not PII.
func numbers(out io.Writer, ppath string, n int) error {
	eng, err := engineAt(ppath, "")
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	digits := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	kinds := []struct {
		name string
		gen  func() string
	}{
		{"random 13-19 digits, bare", func() string { return digits(13 + rng.IntN(7)) }},
		{"random 16 digits, bare", func() string { return digits(16) }},
		{"millisecond timestamps", func() string { return strconv.FormatInt(1_500_000_000_000+rng.Int64N(400_000_000_000), 10) }},
		{"order numbers (订单号 + date + 10 digits)", func() string {
			return "订单号：2024" + fmt.Sprintf("%02d%02d", 1+rng.IntN(12), 1+rng.IntN(28)) + digits(10)
		}},
		{"order numbers, English label", func() string { return "Order #" + digits(16+rng.IntN(4)) + " has shipped." }},
		{"tracking numbers (快递单号 + 12-15 digits)", func() string { return "快递单号 " + digits(12+rng.IntN(4)) }},
		{"11-digit serials starting with 1, labelled", func() string { return "序列号 1" + digits(10) }},
		{"11-digit numbers starting with 1, bare", func() string { return "1" + digits(10) }},
		{"18-digit numbers, bare", func() string { return digits(18) }},
	}
	fmt.Fprintf(out, "## Numbers that are not PII (%d generated per kind)\n\n", n)
	fmt.Fprintf(out, "| numbers | taken for a bank card | for a mobile | for a resident ID | Luhn alone would take (the old card rule) |\n|---|---|---|---|---|\n")
	for _, k := range kinds {
		var card, mob, id, luhnOnly tally
		for range n {
			s := k.gen()
			fs := eng.Scan(guard.Input, s)
			card.add(hasType(fs, string(policy.PIIBankCard)))
			mob.add(hasType(fs, string(policy.PIIMobile)))
			id.add(hasType(fs, string(policy.PIIResidentID)))
			luhnOnly.add(luhnRun(s))
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", k.name, card, mob, id, luhnOnly)
	}
	fmt.Fprintf(out, "\nA bare 11-digit number on an allocated mobile prefix is a mobile number as far as its digits go; only a label (序列号, order, ...) tells otherwise, so the bare row is not a false positive the rules can avoid. "+
		"Likewise a bare random 16-digit number is taken for a card only when it is one by every public rule (an issuer prefix, "+
		"a length that issuer uses, the Luhn check): Visa's prefix 4 alone covers about a tenth of such numbers, so about 1%% "+
		"of them are valid Visa numbers, and only a label or the surrounding text can say they are not.\n\n")
	return nil
}

// luhnRun reports whether s has a run of 13-19 digits with a valid Luhn
// check digit: the old bank card rule, for comparison.
func luhnRun(s string) bool {
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if n := j - i; n >= 13 && n <= 19 {
			sum, dbl := 0, false
			for k := j - 1; k >= i; k-- {
				v := int(s[k] - '0')
				if dbl {
					v *= 2
					if v > 9 {
						v -= 9
					}
				}
				sum += v
				dbl = !dbl
			}
			if sum%10 == 0 {
				return true
			}
		}
		i = j
	}
	return false
}

// --- guard models ---------------------------------------------------------

func describe(g classifier) string {
	switch g := g.(type) {
	case *simulated:
		return fmt.Sprintf("SIMULATED (recall %.2f, false-positive rate %.2f on these labels; not a measurement of any model)", g.recall, g.fpr)
	case *replay:
		return fmt.Sprintf("replay of %d recorded verdicts from %s", len(g.verdicts), g.path)
	case *remote:
		return fmt.Sprintf("%s at %s", g.model, g.url)
	}
	return "?"
}

// simulated answers from the corpus labels, flipped deterministically
// (by a hash of the text) at the stated rates: what the two stages would
// give with a model that good on these items.
type simulated struct{ recall, fpr float64 }

func newSimulated(spec string) (*simulated, error) {
	s := &simulated{recall: 0.9, fpr: 0.02}
	for _, kv := range strings.Split(spec, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("-guard fake: %q: want recall=R,fpr=F with R and F in [0,1]", kv)
		}
		switch k {
		case "recall":
			s.recall = f
		case "fpr":
			s.fpr = f
		default:
			return nil, fmt.Errorf("-guard fake: unknown %q", k)
		}
	}
	return s, nil
}

func (s *simulated) classify(_ context.Context, it item) (bool, error) {
	// A model reads through invisible characters and full-width forms, so
	// the simulation gives a text and its evasions the same verdict.
	var b strings.Builder
	for _, r := range it.Text {
		switch {
		case unicode.Is(unicode.Cf, r):
			continue
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFF01 - '!'
		}
		b.WriteRune(r)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(b.String()))
	u := float64(h.Sum64()%10000) / 10000
	if it.Label == "attack" {
		return u < s.recall, nil
	}
	return u < s.fpr, nil
}

// recorded is one verdict of a real guard model, as -guard-record writes it.
type recorded struct {
	Text    string `json:"text"`
	Blocked bool   `json:"blocked"`
	Raw     string `json:"raw"`
}

type replay struct {
	path     string
	verdicts map[string]bool
}

func newReplay(path string) (*replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-guard replay: %w", err)
	}
	defer f.Close()
	r := &replay{path: path, verdicts: map[string]bool{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v recorded
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("-guard replay %s: %w", path, err)
		}
		r.verdicts[v.Text] = v.Blocked
	}
	return r, sc.Err()
}

func (r *replay) classify(_ context.Context, it item) (bool, error) {
	b, ok := r.verdicts[it.Text]
	if !ok {
		return false, fmt.Errorf("-guard replay: no recorded verdict for %q", it.Text)
	}
	return b, nil
}

// remote asks a guard model served over the OpenAI API, with the
// example policy's mapping: an Unsafe verdict blocks (Controversial does
// not).
type remote struct {
	url, model string
	client     *guardmodel.Client
	rec        *os.File
}

func newRemote(url, model, record string) (*remote, error) {
	c, err := guardmodel.NewClient(guardmodel.ClientConfig{Endpoint: url, Model: model, APIKey: os.Getenv("GUARDRAIL_GUARD_API_KEY"), Timeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	r := &remote{url: url, model: model, client: c}
	if record != "" {
		if r.rec, err = os.Create(record); err != nil {
			return nil, fmt.Errorf("-guard-record: %w", err)
		}
	}
	return r, nil
}

func (r *remote) classify(ctx context.Context, it item) (bool, error) {
	v, err := r.client.Classify(ctx, it.Text, "")
	if err != nil {
		return false, err
	}
	blocked := v.Safety == guardmodel.Unsafe
	if r.rec != nil {
		b, _ := json.Marshal(recorded{Text: it.Text, Blocked: blocked, Raw: v.Raw})
		if _, err := r.rec.Write(append(b, '\n')); err != nil {
			return false, errors.Join(errors.New("-guard-record"), err)
		}
	}
	return blocked, nil
}

func (r *remote) close() {
	if r.rec != nil {
		_ = r.rec.Close()
	}
}
