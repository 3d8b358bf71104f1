package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error lists everything wrong with a policy, one problem per line, so that
// an operator can fix a file in one go rather than one error per restart.
// Each problem names the YAML path, the bad value and what is allowed.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is see through to, for example, fs.ErrNotExist of a
// missing word list file.
func (e *Error) Unwrap() []error { return e.Problems }

// Load reads and validates the policy file at path. Relative word list
// paths are resolved against the file's directory.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	p, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Parse validates a policy document. baseDir is the directory relative word
// list paths are resolved against. Unknown fields are errors: a typo such
// as "ouput" must not silently turn a check off. The error, if any, is an
// *Error.
func Parse(data []byte, baseDir string) (*Policy, error) {
	raw, problems := decode(data)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	v := &validator{baseDir: baseDir, names: map[string]string{}}
	p := v.policy(raw)
	if len(v.problems) > 0 {
		return nil, &Error{Problems: v.problems}
	}
	return p, nil
}

// decode parses the YAML twice: into a node tree, which checkShape walks to
// report unknown fields and wrong kinds with their YAML path, and then into
// the raw structs with yaml.v3's own KnownFields check as the final word.
func decode(data []byte) (*rawPolicy, []error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []error{fmt.Errorf("parsing YAML: %w", err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, []error{errors.New("the policy is empty")}
	}
	var shape []error
	checkShape(root.Content[0], rawPolicyType, "", &shape)
	if len(shape) > 0 {
		return nil, shape
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var raw rawPolicy
	if err := dec.Decode(&raw); err != nil {
		return nil, []error{fmt.Errorf("decoding YAML: %w", err)}
	}
	// A second document would be ignored by Decode; refuse it rather than
	// let someone believe it takes effect.
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, []error{errors.New("the file holds more than one YAML document; a policy is one document")}
	}
	return &raw, nil
}

// The raw types mirror the YAML. Pointers mark fields whose zero value is a
// legitimate setting different from the default.
type rawPolicy struct {
	Version              *int             `yaml:"version"`
	Name                 string           `yaml:"name"`
	Description          string           `yaml:"description"`
	FailMode             string           `yaml:"failMode"`
	Streaming            rawStreaming     `yaml:"streaming"`
	Reasoning            rawReasoning     `yaml:"reasoning"`
	BlockedMessages      rawBlocked       `yaml:"blockedMessages"`
	SensitiveInformation rawSensitive     `yaml:"sensitiveInformation"`
	Words                rawWords         `yaml:"words"`
	Topics               rawTopics        `yaml:"topics"`
	PromptAttack         *rawPromptAttack `yaml:"promptAttack"`
	GuardModel           *rawGuardModel   `yaml:"guardModel"`
}

type rawGuardModel struct {
	Endpoint      string                `yaml:"endpoint"`
	Model         string                `yaml:"model"`
	APIKeyEnv     string                `yaml:"apiKeyEnv"`
	Timeout       string                `yaml:"timeout"`
	FailMode      string                `yaml:"failMode"`
	Input         *bool                 `yaml:"input"`
	Output        *bool                 `yaml:"output"`
	Streaming     string                `yaml:"streaming"`
	MaxChars      *int                  `yaml:"maxChars"`
	Controversial string                `yaml:"controversial"`
	Categories    map[string]rawActions `yaml:"categories"`
	Default       *rawActions           `yaml:"default"`
}

type rawStreaming struct {
	Mode string `yaml:"mode"`
}

type rawReasoning struct {
	ScanReasoning  *bool `yaml:"scanReasoning"`
	StripReasoning *bool `yaml:"stripReasoning"`
}

type rawBlocked struct {
	Input  string `yaml:"input"`
	Output string `yaml:"output"`
}

// rawActions is inlined into every entry: action sets both directions,
// input and output override it.
type rawActions struct {
	Action string `yaml:"action"`
	Input  string `yaml:"input"`
	Output string `yaml:"output"`
}

type rawSensitive struct {
	PIIEntities []rawPII   `yaml:"piiEntities"`
	Regexes     []rawRegex `yaml:"regexes"`
}

type rawPII struct {
	Type       string `yaml:"type"`
	rawActions `yaml:",inline"`
}

type rawRegex struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Pattern     string `yaml:"pattern"`
	MaxLength   *int   `yaml:"maxLength"`
	rawActions  `yaml:",inline"`
}

type rawWords struct {
	Lists []rawWordList `yaml:"lists"`
}

type rawWordList struct {
	Name       string   `yaml:"name"`
	Words      []string `yaml:"words"`
	Files      []string `yaml:"files"`
	Exceptions []string `yaml:"exceptions"`
	rawActions `yaml:",inline"`
}

type rawTopics struct {
	Denied []rawTopic `yaml:"denied"`
}

type rawTopic struct {
	Name        string   `yaml:"name"`
	Definition  string   `yaml:"definition"`
	Examples    []string `yaml:"examples"`
	Keywords    []string `yaml:"keywords"`
	MinKeywords *int     `yaml:"minKeywords"`
	Exceptions  []string `yaml:"exceptions"`
	rawActions  `yaml:",inline"`
}

// rawPromptAttack has no "action": a shorthand for both directions would
// make it too easy to turn on output checks, which make no sense for
// prompt attacks (the model's answer is not a prompt).
type rawPromptAttack struct {
	Strength string `yaml:"strength"`
	Input    string `yaml:"input"`
	Output   string `yaml:"output"`
}

var (
	sensitiveActions = []Action{ActionBlock, ActionAnonymize, ActionNone, ActionOff}
	blockActions     = []Action{ActionBlock, ActionNone, ActionOff}

	// Names become finding types, placeholders ({NAME}), metric labels and
	// the X-Guardrail-Policy header, so they stay ASCII.
	nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
	// Topic names follow Bedrock's character set, which allows spaces.
	topicNameRE = regexp.MustCompile(`^[0-9A-Za-z_ !?.-]{1,100}$`)
)

// validator turns the raw document into a Policy, collecting problems
// rather than stopping at the first one.
type validator struct {
	baseDir  string
	problems []error
	// names maps every finding type in use to the YAML path that defined
	// it: types must be unique, or an audit record could not say which
	// entry matched.
	names map[string]string
}

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) add(path string, err error) {
	v.problems = append(v.problems, fmt.Errorf("%s: %w", path, err))
}

func (v *validator) policy(raw *rawPolicy) *Policy {
	p := &Policy{
		Version:     1,
		Name:        raw.Name,
		Description: raw.Description,
		BaseDir:     v.baseDir,
	}
	if raw.Version != nil && *raw.Version != 1 {
		v.addf("version", "%d is not supported; the only version is 1", *raw.Version)
	}
	p.FailMode = FailMode(oneOf(v, "failMode", raw.FailMode, string(FailClosed), string(FailClosed), string(FailOpen)))
	p.Streaming.Mode = StreamingMode(oneOf(v, "streaming.mode", raw.Streaming.Mode, string(StreamSync), string(StreamSync), string(StreamAsync)))
	p.Reasoning = Reasoning{ScanReasoning: true}
	if raw.Reasoning.ScanReasoning != nil {
		p.Reasoning.ScanReasoning = *raw.Reasoning.ScanReasoning
	}
	if raw.Reasoning.StripReasoning != nil {
		p.Reasoning.StripReasoning = *raw.Reasoning.StripReasoning
	}
	p.BlockedMessages = BlockedMessages{Input: DefaultBlockedMessage, Output: DefaultBlockedMessage}
	if strings.TrimSpace(raw.BlockedMessages.Input) != "" {
		p.BlockedMessages.Input = raw.BlockedMessages.Input
	}
	if strings.TrimSpace(raw.BlockedMessages.Output) != "" {
		p.BlockedMessages.Output = raw.BlockedMessages.Output
	}

	// Built-in type names and PROMPT_ATTACK are reserved even when unused,
	// so that enabling one later cannot clash with a custom name.
	for _, t := range PIITypes {
		v.names[string(t)] = "a built-in type"
	}
	v.names[PromptAttackType] = "the prompt attack policy"

	p.SensitiveInformation = v.sensitive(raw.SensitiveInformation)
	p.Words = v.words(raw.Words)
	p.Topics = v.topics(raw.Topics)
	p.PromptAttack = v.promptAttack(raw.PromptAttack)
	p.GuardModel = v.guardModel(raw.GuardModel, p.FailMode)
	return p
}

// guardModel validates the guardModel section.
func (v *validator) guardModel(raw *rawGuardModel, failMode FailMode) *GuardModel {
	if raw == nil {
		return nil
	}
	g := &GuardModel{
		Endpoint:      strings.TrimSpace(raw.Endpoint),
		Model:         strings.TrimSpace(raw.Model),
		APIKeyEnv:     strings.TrimSpace(raw.APIKeyEnv),
		Timeout:       DefaultGuardTimeout,
		FailMode:      FailMode(oneOf(v, "guardModel.failMode", raw.FailMode, string(failMode), string(FailClosed), string(FailOpen))),
		Input:         raw.Input == nil || *raw.Input,
		Output:        raw.Output == nil || *raw.Output,
		Streaming:     oneOf(v, "guardModel.streaming", raw.Streaming, GuardStreamEnd, GuardStreamEnd, GuardStreamHold),
		MaxChars:      DefaultGuardMaxChars,
		Controversial: oneOf(v, "guardModel.controversial", raw.Controversial, GuardLoose, GuardLoose, GuardStrict),
		Categories:    DefaultGuardCategories(),
		Default:       Directions{Input: ActionBlock, Output: ActionBlock},
	}
	if g.Model == "" {
		v.addf("guardModel.model", "required, e.g. Qwen/Qwen3Guard-Gen-0.6B")
	}
	// The endpoint may come from the -guard-endpoint flag instead; when
	// given here it must be an absolute http(s) URL.
	if g.Endpoint != "" {
		if u, err := url.Parse(g.Endpoint); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			v.addf("guardModel.endpoint", "%q is not an absolute http(s) URL such as http://127.0.0.1:8002/v1", g.Endpoint)
		}
	}
	if raw.Timeout != "" {
		d, err := time.ParseDuration(raw.Timeout)
		if err != nil || d <= 0 || d > 5*time.Minute {
			v.addf("guardModel.timeout", "%q is not a duration between 0 and 5m, such as 2s or 500ms", raw.Timeout)
		} else {
			g.Timeout = d
		}
	}
	if raw.MaxChars != nil {
		if *raw.MaxChars < 100 || *raw.MaxChars > 1<<20 {
			v.addf("guardModel.maxChars", "%d is out of range 100..%d", *raw.MaxChars, 1<<20)
		} else {
			g.MaxChars = *raw.MaxChars
		}
	}
	for name, a := range raw.Categories {
		g.Categories[name] = v.actions("guardModel.categories."+name, a, ActionBlock, blockActions)
	}
	if raw.Default != nil {
		g.Default = v.actions("guardModel.default", *raw.Default, ActionBlock, blockActions)
	}
	return g
}

// oneOf validates an enumerated string; empty means the default.
func oneOf(v *validator, path, value, def string, allowed ...string) string {
	if value == "" {
		return def
	}
	for _, a := range allowed {
		if value == a {
			return value
		}
	}
	v.addf(path, "%q is not one of %s", value, strings.Join(allowed, ", "))
	return def
}

func (v *validator) action(path, value string, def Action, allowed []Action) Action {
	if value == "" {
		return def
	}
	for _, a := range allowed {
		if Action(value) == a {
			return a
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	v.addf(path, "%q is not one of %s", value, strings.Join(names, ", "))
	return def
}

// actions resolves an entry's directions: input and output default to
// action, and action defaults to def (BLOCK everywhere: an entry somebody
// wrote down but forgot to give an action should protect, not be ignored).
func (v *validator) actions(path string, a rawActions, def Action, allowed []Action) Directions {
	base := v.action(path+".action", a.Action, def, allowed)
	return Directions{
		Input:  v.action(path+".input", a.Input, base, allowed),
		Output: v.action(path+".output", a.Output, base, allowed),
	}
}

// claim registers a finding type name, reporting a clash.
func (v *validator) claim(path, name string) {
	if prev, ok := v.names[name]; ok {
		if prev == "a built-in type" || prev == "the prompt attack policy" {
			v.addf(path, "%q is reserved for %s", name, prev)
		} else {
			v.addf(path, "%q is already used by %s", name, prev)
		}
		return
	}
	v.names[name] = path
}

func (v *validator) sensitive(raw rawSensitive) SensitiveInformation {
	var s SensitiveInformation
	seen := map[PIIType]string{}
	for i, e := range raw.PIIEntities {
		path := fmt.Sprintf("sensitiveInformation.piiEntities[%d]", i)
		t := PIIType(e.Type)
		switch {
		case e.Type == "":
			v.addf(path+".type", "required; one of %s", piiTypeList())
			continue
		case !isPIIType(t):
			v.addf(path+".type", "%q is not one of %s", e.Type, piiTypeList())
			continue
		case seen[t] != "":
			v.addf(path+".type", "%q is already configured at %s", e.Type, seen[t])
			continue
		}
		seen[t] = path
		s.PIIEntities = append(s.PIIEntities, PIIEntity{Type: t, Actions: v.actions(path, e.rawActions, ActionBlock, sensitiveActions)})
	}
	for i, r := range raw.Regexes {
		path := fmt.Sprintf("sensitiveInformation.regexes[%d]", i)
		if v.name(path+".name", r.Name) {
			v.claim(path+".name", r.Name)
		}
		re := Regex{
			Name:        r.Name,
			Description: r.Description,
			Pattern:     r.Pattern,
			MaxLength:   DefaultRegexMaxLength,
			Actions:     v.actions(path, r.rawActions, ActionBlock, sensitiveActions),
		}
		if r.MaxLength != nil {
			re.MaxLength = *r.MaxLength
			if re.MaxLength < 1 || re.MaxLength > MaxRegexMaxLength {
				v.addf(path+".maxLength", "%d is out of range 1..%d", re.MaxLength, MaxRegexMaxLength)
				re.MaxLength = DefaultRegexMaxLength
			}
		}
		re.Compiled = v.pattern(path, r.Pattern, re.MaxLength)
		s.Regexes = append(s.Regexes, re)
	}
	return s
}

// pattern compiles a custom regex and checks what can be checked about its
// match lengths.
func (v *validator) pattern(path, pattern string, maxLength int) *regexp.Regexp {
	if pattern == "" {
		v.addf(path+".pattern", "required")
		return nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		v.add(path+".pattern", fmt.Errorf("%q is not a valid RE2 regular expression: %w", pattern, err))
		return nil
	}
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil { // cannot happen once Compile succeeded; be explicit anyway
		v.add(path+".pattern", fmt.Errorf("%q: %w", pattern, err))
		return nil
	}
	minLen, maxLen := matchBounds(parsed)
	if minLen == 0 {
		// An empty match would be reported at every position (or
		// anonymized into a placeholder between every character).
		v.addf(path+".pattern", "%q can match the empty string; a pattern must match at least one character", pattern)
		return nil
	}
	// Only a provably too small maxLength is an error. For unbounded
	// patterns (*, +, {n,}) maxLength is the operator's promise.
	if maxLen != unbounded && maxLen <= MaxRegexMaxLength && maxLen > maxLength {
		v.addf(path+".maxLength", "%d is less than the longest match of the pattern (%d bytes); raise maxLength to at least %d", maxLength, maxLen, maxLen)
	}
	return re
}

// name validates an entry name, reporting whether it is usable.
func (v *validator) name(path, name string) bool {
	if name == "" {
		v.addf(path, "required")
		return false
	}
	if !nameRE.MatchString(name) {
		v.addf(path, "%q is not a valid name: use letters, digits, _ and -, start with a letter, at most 64 characters", name)
		return false
	}
	return true
}

func (v *validator) words(raw rawWords) Words {
	var w Words
	for i, l := range raw.Lists {
		path := fmt.Sprintf("words.lists[%d]", i)
		if v.name(path+".name", l.Name) {
			v.claim(path+".name", l.Name)
		}
		list := WordList{Name: l.Name, Actions: v.actions(path, l.rawActions, ActionBlock, blockActions)}
		before := len(v.problems)
		seen := map[string]bool{}
		addWord := func(word string) {
			if !seen[word] {
				seen[word] = true
				list.Words = append(list.Words, word)
			}
		}
		for j, word := range l.Words {
			if word = v.phrase(fmt.Sprintf("%s.words[%d]", path, j), "word", word); word != "" {
				addWord(word)
			}
		}
		for j, f := range l.Files {
			fpath := fmt.Sprintf("%s.files[%d]", path, j)
			if strings.TrimSpace(f) == "" {
				v.addf(fpath, "empty path")
				continue
			}
			resolved := f
			if !filepath.IsAbs(f) {
				resolved = filepath.Join(v.baseDir, f)
			}
			list.Files = append(list.Files, resolved)
			words, err := readWordFile(resolved)
			if err != nil {
				v.add(fpath, err)
				continue
			}
			for _, word := range words {
				addWord(word)
			}
		}
		list.Exceptions = v.phrases(path+".exceptions", "exception", l.Exceptions)
		if len(list.Words) == 0 && len(v.problems) == before {
			// Also catches files holding nothing but comments.
			v.addf(path, "has no words: set words, files or both")
		}
		w.Lists = append(w.Lists, list)
	}
	return w
}

// phrase validates one word, example or keyword and returns it trimmed, or
// "" after reporting a problem.
func (v *validator) phrase(path, what, s string) string {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		v.addf(path, "empty %s", what)
		return ""
	case len(t) > MaxPhraseBytes:
		v.addf(path, "%s is %d bytes long; at most %d bytes are allowed", what, len(t), MaxPhraseBytes)
		return ""
	case !utf8.ValidString(t):
		v.addf(path, "%s is not valid UTF-8", what)
		return ""
	}
	return t
}

// phrases validates a list of phrases (exceptions), dropping bad ones.
func (v *validator) phrases(path, what string, in []string) []string {
	var out []string
	for j, x := range in {
		if x = v.phrase(fmt.Sprintf("%s[%d]", path, j), what, x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// readWordFile reads a word list: one word or phrase per line, UTF-8,
// surrounding spaces trimmed, blank lines and lines starting with # skipped.
// Inline comments are not supported: a word may contain '#'.
func readWordFile(path string) ([]string, error) {
	// Stat before Open: opening a FIFO would block start-up until some
	// writer appears.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading word list: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading word list %s: not a regular file", path)
	}
	if fi.Size() > MaxWordFileBytes {
		return nil, fmt.Errorf("reading word list %s: %d bytes; at most %d bytes are allowed", path, fi.Size(), MaxWordFileBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading word list: %w", err)
	}
	defer f.Close()
	// The limit also covers a file that grows between Stat and Read.
	data, err := io.ReadAll(io.LimitReader(f, MaxWordFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading word list: %w", err)
	}
	if len(data) > MaxWordFileBytes {
		return nil, fmt.Errorf("reading word list %s: more than %d bytes", path, MaxWordFileBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // editors on Windows add a BOM
	var words []string
	for n, line := range strings.Split(string(data), "\n") {
		w := strings.TrimSpace(line)
		if w == "" || strings.HasPrefix(w, "#") {
			continue
		}
		if !utf8.ValidString(w) {
			return nil, fmt.Errorf("word list %s line %d: not valid UTF-8", path, n+1)
		}
		if len(w) > MaxPhraseBytes {
			return nil, fmt.Errorf("word list %s line %d: word is %d bytes long; at most %d bytes are allowed", path, n+1, len(w), MaxPhraseBytes)
		}
		words = append(words, w)
	}
	return words, nil
}

func (v *validator) topics(raw rawTopics) Topics {
	var t Topics
	for i, r := range raw.Denied {
		path := fmt.Sprintf("topics.denied[%d]", i)
		switch {
		case r.Name == "":
			v.addf(path+".name", "required")
		case !topicNameRE.MatchString(r.Name):
			v.addf(path+".name", "%q is not a valid topic name: use letters, digits, spaces and _-!?., at most 100 characters", r.Name)
		default:
			v.claim(path+".name", r.Name)
		}
		topic := Topic{
			Name:        r.Name,
			Definition:  r.Definition,
			MinKeywords: 1,
			Actions:     v.actions(path, r.rawActions, ActionBlock, blockActions),
		}
		for j, e := range r.Examples {
			if e = v.phrase(fmt.Sprintf("%s.examples[%d]", path, j), "example", e); e != "" {
				topic.Examples = append(topic.Examples, e)
			}
		}
		for j, k := range r.Keywords {
			if k = v.phrase(fmt.Sprintf("%s.keywords[%d]", path, j), "keyword", k); k != "" {
				topic.Keywords = append(topic.Keywords, k)
			}
		}
		topic.Exceptions = v.phrases(path+".exceptions", "exception", r.Exceptions)
		if len(r.Examples) == 0 && len(r.Keywords) == 0 {
			v.addf(path, "needs at least one of examples or keywords")
		}
		if len(r.Keywords) > MaxTopicKeywords {
			v.addf(path+".keywords", "%d keywords; at most %d are allowed (use a word list for more)", len(r.Keywords), MaxTopicKeywords)
		}
		if r.MinKeywords != nil {
			m := *r.MinKeywords
			switch {
			case m < 1:
				v.addf(path+".minKeywords", "%d is less than 1", m)
			case m > len(r.Keywords):
				v.addf(path+".minKeywords", "%d is more than the %d keywords of the topic", m, len(r.Keywords))
			default:
				topic.MinKeywords = m
			}
		}
		t.Denied = append(t.Denied, topic)
	}
	return t
}

func (v *validator) promptAttack(raw *rawPromptAttack) PromptAttack {
	if raw == nil {
		return PromptAttack{Strength: StrengthMedium, Actions: Directions{Input: ActionOff, Output: ActionOff}}
	}
	return PromptAttack{
		Enabled:  true,
		Strength: Strength(oneOf(v, "promptAttack.strength", raw.Strength, string(StrengthMedium), string(StrengthLow), string(StrengthMedium), string(StrengthHigh))),
		Actions: Directions{
			Input:  v.action("promptAttack.input", raw.Input, ActionBlock, blockActions),
			Output: v.action("promptAttack.output", raw.Output, ActionOff, blockActions),
		},
	}
}

func isPIIType(t PIIType) bool {
	for _, b := range PIITypes {
		if t == b {
			return true
		}
	}
	return false
}

func piiTypeList() string {
	names := make([]string, len(PIITypes))
	for i, t := range PIITypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}
