package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp/syntax"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
)

const examplePath = "../../policies/default/policy.yaml"

func TestLoadExample(t *testing.T) {
	p, err := Load(examplePath)
	require.NoError(t, err)

	assert.Equal(t, 1, p.Version)
	assert.Equal(t, "deepseek-r1-cn-example", p.Name)
	assert.Equal(t, filepath.Dir(examplePath), p.BaseDir)
	assert.Equal(t, FailClosed, p.FailMode)
	assert.Equal(t, StreamSync, p.Streaming.Mode)
	assert.Equal(t, Reasoning{ScanReasoning: true, StripReasoning: false}, p.Reasoning)
	assert.True(t, strings.HasPrefix(p.BlockedMessages.Input, "抱歉"))
	assert.True(t, strings.HasPrefix(p.BlockedMessages.For(guard.Output), "抱歉，模型无法提供此回答"))

	// Every built-in type, with the actions the example documents.
	assert.Equal(t, []PIIEntity{
		{PIIResidentID, Directions{ActionBlock, ActionAnonymize}},
		{PIIMobile, Directions{ActionAnonymize, ActionAnonymize}},
		{PIIBankCard, Directions{ActionBlock, ActionAnonymize}},
		{PIIEmail, Directions{ActionAnonymize, ActionAnonymize}},
		{PIIIPv4, Directions{ActionNone, ActionAnonymize}},
		{PIIAWSAccessKey, Directions{ActionBlock, ActionBlock}},
	}, p.SensitiveInformation.PIIEntities)

	require.Len(t, p.SensitiveInformation.Regexes, 1)
	re := p.SensitiveInformation.Regexes[0]
	assert.Equal(t, "EMPLOYEE_ID", re.Name)
	assert.Equal(t, 10, re.MaxLength)
	assert.Equal(t, Directions{ActionAnonymize, ActionAnonymize}, re.Actions)
	assert.True(t, re.Compiled.MatchString("id EMP-123456."))

	require.Len(t, p.Words.Lists, 2)
	assert.Equal(t, "PROFANITY", p.Words.Lists[0].Name)
	assert.Contains(t, p.Words.Lists[0].Words, "son of a bitch")
	fraud := p.Words.Lists[1]
	// Inline words first, then the file's, comments skipped.
	assert.Equal(t, []string{"刷单兼职", "赌博网站", "代开发票", "办理假证", "fake invoice", "money laundering service"}, fraud.Words)
	assert.Equal(t, []string{filepath.Join(filepath.Dir(examplePath), "blocked-words.txt")}, fraud.Files)
	assert.Equal(t, Directions{ActionBlock, ActionNone}, fraud.Actions)

	require.Len(t, p.Topics.Denied, 2)
	assert.Equal(t, "Investment advice", p.Topics.Denied[0].Name)
	assert.Equal(t, 2, p.Topics.Denied[0].MinKeywords)
	assert.Equal(t, 1, p.Topics.Denied[1].MinKeywords)
	assert.Equal(t, Directions{ActionBlock, ActionBlock}, p.Topics.Denied[1].Actions)

	assert.Equal(t, PromptAttack{Enabled: true, Strength: StrengthMedium, Actions: Directions{ActionBlock, ActionOff}}, p.PromptAttack)
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse([]byte("name: minimal\n"), "/etc/guardrail")
	require.NoError(t, err)
	assert.Equal(t, &Policy{
		Version:         1,
		Name:            "minimal",
		BaseDir:         "/etc/guardrail",
		FailMode:        FailClosed,
		Streaming:       Streaming{Mode: StreamSync},
		Reasoning:       Reasoning{ScanReasoning: true, StripReasoning: false},
		BlockedMessages: BlockedMessages{Input: "Sorry, the model cannot answer this question.", Output: "Sorry, the model cannot answer this question."},
		PromptAttack:    PromptAttack{Enabled: false, Strength: StrengthMedium, Actions: Directions{ActionOff, ActionOff}},
	}, p)
}

func TestParseActionDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Directions
	}{
		{"nothing given blocks both", "{type: EMAIL}", Directions{ActionBlock, ActionBlock}},
		{"action sets both", "{type: EMAIL, action: ANONYMIZE}", Directions{ActionAnonymize, ActionAnonymize}},
		{"input overrides action", "{type: EMAIL, action: NONE, input: BLOCK}", Directions{ActionBlock, ActionNone}},
		{"output alone, input defaults to BLOCK", "{type: EMAIL, output: OFF}", Directions{ActionBlock, ActionOff}},
		{"both given", "{type: EMAIL, input: ANONYMIZE, output: NONE}", Directions{ActionAnonymize, ActionNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte("sensitiveInformation:\n  piiEntities:\n    - "+tt.yaml+"\n"), "")
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.SensitiveInformation.PIIEntities[0].Actions)
		})
	}
}

func TestParseOtherSettings(t *testing.T) {
	p, err := Parse([]byte(`
failMode: open
streaming: {mode: async}
reasoning: {scanReasoning: false, stripReasoning: true}
blockedMessages: {input: "no", output: "不行"}
promptAttack: {strength: HIGH, output: NONE}
`), "")
	require.NoError(t, err)
	assert.Equal(t, FailOpen, p.FailMode)
	assert.Equal(t, StreamAsync, p.Streaming.Mode)
	assert.Equal(t, Reasoning{ScanReasoning: false, StripReasoning: true}, p.Reasoning)
	assert.Equal(t, "no", p.BlockedMessage(guard.Input))
	assert.Equal(t, "不行", p.BlockedMessage(guard.Output))
	assert.Equal(t, PromptAttack{Enabled: true, Strength: StrengthHigh, Actions: Directions{ActionBlock, ActionNone}}, p.PromptAttack)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "unknown top-level field",
			yaml: "failmode: open\n",
			want: `(top level): unknown field "failmode" (line 1); allowed: blockedMessages, description, failMode, guardModel, name, promptAttack, reasoning, sensitiveInformation, streaming, topics, version, words`,
		},
		{
			name: "unknown nested field",
			yaml: "sensitiveInformation:\n  piiEntities:\n    - type: EMAIL\n      ouput: NONE\n",
			want: `sensitiveInformation.piiEntities[0]: unknown field "ouput" (line 4); allowed: action, input, output, type`,
		},
		{
			name: "bad action",
			yaml: "sensitiveInformation:\n  piiEntities:\n    - {type: EMAIL}\n    - {type: IPV4}\n    - {type: CN_MOBILE, output: MASK}\n",
			want: `sensitiveInformation.piiEntities[2].output: "MASK" is not one of BLOCK, ANONYMIZE, NONE, OFF`,
		},
		{
			name: "ANONYMIZE is for sensitive information only",
			yaml: "words:\n  lists:\n    - {name: W, words: [x], input: ANONYMIZE}\n",
			want: `words.lists[0].input: "ANONYMIZE" is not one of BLOCK, NONE, OFF`,
		},
		{
			name: "lower-case action",
			yaml: "topics:\n  denied:\n    - {name: T, examples: [x], action: block}\n",
			want: `topics.denied[0].action: "block" is not one of BLOCK, NONE, OFF`,
		},
		{
			name: "unknown PII type",
			yaml: "sensitiveInformation:\n  piiEntities:\n    - type: PHONE\n",
			want: `sensitiveInformation.piiEntities[0].type: "PHONE" is not one of CN_RESIDENT_ID, CN_MOBILE, BANK_CARD, EMAIL, IPV4, AWS_ACCESS_KEY`,
		},
		{
			name: "duplicate PII type",
			yaml: "sensitiveInformation:\n  piiEntities:\n    - type: EMAIL\n    - type: EMAIL\n",
			want: `sensitiveInformation.piiEntities[1].type: "EMAIL" is already configured at sensitiveInformation.piiEntities[0]`,
		},
		{
			name: "bad regex",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: '([a-z]'}\n",
			want: "sensitiveInformation.regexes[0].pattern: \"([a-z]\" is not a valid RE2 regular expression: error parsing regexp: missing closing ): `([a-z]`",
		},
		{
			name: "lookahead is not RE2",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: 'a(?=b)'}\n",
			want: "sensitiveInformation.regexes[0].pattern: \"a(?=b)\" is not a valid RE2 regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
		},
		{
			name: "regex matching the empty string",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: '[0-9]*'}\n",
			want: `sensitiveInformation.regexes[0].pattern: "[0-9]*" can match the empty string; a pattern must match at least one character`,
		},
		{
			name: "regex matching only a boundary",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: '\\b|x'}\n",
			want: `sensitiveInformation.regexes[0].pattern: "\\b|x" can match the empty string; a pattern must match at least one character`,
		},
		{
			name: "regex missing",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R}\n",
			want: `sensitiveInformation.regexes[0].pattern: required`,
		},
		{
			name: "maxLength shorter than the pattern",
			// [A-Z]{2}-[0-9]{8}: 2 + 1 + 8 = 11 bytes.
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: '[A-Z]{2}-[0-9]{8}', maxLength: 10}\n",
			want: `sensitiveInformation.regexes[0].maxLength: 10 is less than the longest match of the pattern (11 bytes); raise maxLength to at least 11`,
		},
		{
			name: "default maxLength shorter than the pattern",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: 'x{200}'}\n",
			want: `sensitiveInformation.regexes[0].maxLength: 128 is less than the longest match of the pattern (200 bytes); raise maxLength to at least 200`,
		},
		{
			name: "maxLength out of range",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: 'x', maxLength: 0}\n",
			want: `sensitiveInformation.regexes[0].maxLength: 0 is out of range 1..4096`,
		},
		{
			name: "regex name with a space",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: my regex, pattern: 'x'}\n",
			want: `sensitiveInformation.regexes[0].name: "my regex" is not a valid name: use letters, digits, _ and -, start with a letter, at most 64 characters`,
		},
		{
			name: "regex named like a built-in type",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: EMAIL, pattern: 'x'}\n",
			want: `sensitiveInformation.regexes[0].name: "EMAIL" is reserved for a built-in type`,
		},
		{
			name: "word list named like a regex",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: SECRET, pattern: 'x'}\nwords:\n  lists:\n    - {name: SECRET, words: [y]}\n",
			want: `words.lists[0].name: "SECRET" is already used by sensitiveInformation.regexes[0].name`,
		},
		{
			name: "topic named PROMPT_ATTACK",
			yaml: "topics:\n  denied:\n    - {name: PROMPT_ATTACK, examples: [x]}\n",
			want: `topics.denied[0].name: "PROMPT_ATTACK" is reserved for the prompt attack policy`,
		},
		{
			name: "Chinese topic name",
			yaml: "topics:\n  denied:\n    - {name: 投资建议, examples: [x]}\n",
			want: `topics.denied[0].name: "投资建议" is not a valid topic name: use letters, digits, spaces and _-!?., at most 100 characters`,
		},
		{
			name: "empty word",
			yaml: "words:\n  lists:\n    - {name: W, words: [a, '  ']}\n",
			want: `words.lists[0].words[1]: empty word`,
		},
		{
			name: "word too long",
			yaml: "words:\n  lists:\n    - {name: W, words: [" + strings.Repeat("长", 86) + "]}\n",
			want: `words.lists[0].words[0]: word is 258 bytes long; at most 256 bytes are allowed`,
		},
		{
			name: "word list without words",
			yaml: "words:\n  lists:\n    - {name: W}\n",
			want: `words.lists[0]: has no words: set words, files or both`,
		},
		{
			name: "topic without examples or keywords",
			yaml: "topics:\n  denied:\n    - {name: T, definition: d}\n",
			want: `topics.denied[0]: needs at least one of examples or keywords`,
		},
		{
			name: "minKeywords above the keyword count",
			yaml: "topics:\n  denied:\n    - {name: T, keywords: [a, b], minKeywords: 3}\n",
			want: `topics.denied[0].minKeywords: 3 is more than the 2 keywords of the topic`,
		},
		{
			name: "bad fail mode",
			yaml: "failMode: OPEN\n",
			want: `failMode: "OPEN" is not one of closed, open`,
		},
		{
			name: "bad streaming mode",
			yaml: "streaming:\n  mode: buffered\n",
			want: `streaming.mode: "buffered" is not one of sync, async`,
		},
		{
			name: "bad strength",
			yaml: "promptAttack:\n  strength: EXTREME\n",
			want: `promptAttack.strength: "EXTREME" is not one of LOW, MEDIUM, HIGH`,
		},
		{
			name: "prompt attack ANONYMIZE",
			yaml: "promptAttack:\n  input: ANONYMIZE\n",
			want: `promptAttack.input: "ANONYMIZE" is not one of BLOCK, NONE, OFF`,
		},
		{
			name: "prompt attack has no action shorthand",
			yaml: "promptAttack:\n  action: BLOCK\n",
			want: `promptAttack: unknown field "action" (line 2); allowed: input, output, strength`,
		},
		{
			name: "unsupported version",
			yaml: "version: 2\n",
			want: `version: 2 is not supported; the only version is 1`,
		},
		{
			name: "yes is not a boolean here",
			yaml: "reasoning:\n  scanReasoning: yes\n",
			want: `reasoning.scanReasoning: expected true or false, got "yes" (line 2)`,
		},
		{
			name: "list where a mapping belongs",
			yaml: "words: [a, b]\n",
			want: `words: expected a mapping, got a list (line 1)`,
		},
		{
			name: "string where a list belongs",
			yaml: "words:\n  lists:\n    - {name: W, words: fuck}\n",
			want: `words.lists[0].words: expected a list, got "fuck" (line 3)`,
		},
		{
			name: "not an integer",
			yaml: "sensitiveInformation:\n  regexes:\n    - {name: R, pattern: x, maxLength: ten}\n",
			want: `sensitiveInformation.regexes[0].maxLength: expected an integer, got "ten" (line 3)`,
		},
		{
			name: "two unknown fields are two problems",
			yaml: "nme: x\nwords: {lsts: []}\n",
			want: `(top level): unknown field "nme" (line 1); allowed: blockedMessages, description, failMode, guardModel, name, promptAttack, reasoning, sensitiveInformation, streaming, topics, version, words` + "\n" +
				`words: unknown field "lsts" (line 2); allowed: lists`,
		},
		{
			name: "aliased content is still checked for unknown fields",
			yaml: "words:\n  lists:\n    - &l {name: W, wrds: [x]}\n",
			want: `words.lists[0]: unknown field "wrds" (line 3); allowed: action, exceptions, files, input, name, output, words`,
		},
		{
			// The shape walk does not follow aliases (exponential on a
			// hostile file); yaml.v3's KnownFields catches what they hide.
			name: "through an alias, yaml.v3 reports the unknown field",
			yaml: "words:\n  lists:\n    - &l {name: W, words: [x]}\ntopics:\n  denied:\n    - *l\n",
			want: "decoding YAML: yaml: unmarshal errors:\n  line 3: field words not found in type policy.rawTopic",
		},
		{
			name: "empty document",
			yaml: "# nothing but a comment\n",
			want: `the policy is empty`,
		},
		{
			name: "two documents",
			yaml: "name: a\n---\nname: b\n",
			want: `the file holds more than one YAML document; a policy is one document`,
		},
		{
			name: "several problems at once, in document order",
			yaml: "failMode: shut\nsensitiveInformation:\n  piiEntities:\n    - {type: EMAIL, input: MASK}\n",
			want: "failMode: \"shut\" is not one of closed, open\n" +
				`sensitiveInformation.piiEntities[0].input: "MASK" is not one of BLOCK, ANONYMIZE, NONE, OFF`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.yaml), t.TempDir())
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Equal(t, tt.want, err.Error())
			var perr *Error
			assert.True(t, errors.As(err, &perr), "Parse errors are *Error")
		})
	}
}

func TestParseYAMLSyntaxError(t *testing.T) {
	_, err := Parse([]byte("words: [a, b\n"), "")
	require.Error(t, err)
	// The rest of the message is yaml.v3's; it names the line.
	assert.True(t, strings.HasPrefix(err.Error(), "parsing YAML: yaml: line "), err.Error())
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("failMode: maybe\n"), 0o600))
	_, err := Load(path)
	require.Error(t, err)
	assert.Equal(t, "policy "+path+`: failMode: "maybe" is not one of closed, open`, err.Error())

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Equal(t, "reading policy: open "+filepath.Join(dir, "missing.yaml")+": no such file or directory", err.Error())
}

func TestWordFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lists"), 0o755))
	// BOM, CRLF line ends, comments, blank lines, surrounding spaces and
	// a duplicate of an inline word.
	content := "\ufeff# comment\r\n  赌博  \r\n\r\nbad word\r\n#not a word\r\nfoo\r\nc#\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lists", "a.txt"), []byte(content), 0o600))
	policyYAML := "words:\n  lists:\n    - name: W\n      words: [foo]\n      files: [lists/a.txt]\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policyYAML), 0o600))

	p, err := Load(filepath.Join(dir, "policy.yaml"))
	require.NoError(t, err)
	assert.Equal(t, []string{"foo", "赌博", "bad word", "c#"}, p.Words.Lists[0].Words)
	assert.Equal(t, []string{filepath.Join(dir, "lists", "a.txt")}, p.Words.Lists[0].Files)
}

func TestWordFileErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad-utf8.txt"), []byte("ok\n\xff\xfe\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "long.txt"), []byte(strings.Repeat("a", 257)+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "comments.txt"), []byte("# only comments\n\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))

	tests := []struct {
		file     string
		want     string
		notExist bool
	}{
		{"missing.txt", "words.lists[0].files[0]: reading word list: stat " + filepath.Join(dir, "missing.txt") + ": no such file or directory", true},
		{"bad-utf8.txt", "words.lists[0].files[0]: word list " + filepath.Join(dir, "bad-utf8.txt") + " line 2: not valid UTF-8", false},
		{"long.txt", "words.lists[0].files[0]: word list " + filepath.Join(dir, "long.txt") + " line 1: word is 257 bytes long; at most 256 bytes are allowed", false},
		{"sub", "words.lists[0].files[0]: reading word list " + filepath.Join(dir, "sub") + ": not a regular file", false},
		{"comments.txt", "words.lists[0]: has no words: set words, files or both", false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Parse([]byte("words:\n  lists:\n    - {name: W, files: ["+tt.file+"]}\n"), dir)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.Equal(t, tt.notExist, errors.Is(err, fs.ErrNotExist))
		})
	}
}

func TestAbsoluteWordFile(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "w.txt")
	require.NoError(t, os.WriteFile(abs, []byte("x\n"), 0o600))
	// baseDir points elsewhere: an absolute path must not be joined to it.
	p, err := Parse([]byte("words:\n  lists:\n    - {name: W, files: ['"+abs+"']}\n"), "/nonexistent")
	require.NoError(t, err)
	assert.Equal(t, []string{"x"}, p.Words.Lists[0].Words)
}

func TestMatchBounds(t *testing.T) {
	tests := []struct {
		pattern  string
		min, max int
	}{
		{`abc`, 3, 3},
		{`EMP-[0-9]{6}`, 10, 10},
		{`\bEMP-[0-9]{6}\b`, 10, 10}, // boundaries are zero-width
		{`[0-9]{6,8}`, 6, 8},
		{`a|bcd`, 1, 3},
		{`a?b`, 1, 2},
		{`x+`, 1, unbounded},
		{`x*y`, 1, unbounded},
		{`x{2,}`, 2, unbounded},
		{`中文`, 6, 6},                        // 3 bytes per rune
		{`[a-z中]`, 1, 3},                    // the class's widest rune is 3 bytes
		{`.`, 1, 4},                         // any rune, up to 4 bytes
		{`(?i)k`, 1, 3},                     // also matches the Kelvin sign U+212A, 3 bytes
		{`(?:ab){3}`, 6, 6},                 // repeat of a concatenation
		{`(a|)`, 0, 1},                      // can match nothing
		{`^`, 0, 0},                         // anchors only
		{`(?:\b)+`, 0, 0},                   // repeated zero-width
		{`[^\x00-\x{10FFFF}]`, saturate, 0}, // matches nothing at all
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			re, err := syntax.Parse(tt.pattern, syntax.Perl)
			require.NoError(t, err)
			min, max := matchBounds(re)
			assert.Equal(t, tt.min, min, "min")
			assert.Equal(t, tt.max, max, "max")
		})
	}
}

func TestActionHelpers(t *testing.T) {
	d := Directions{Input: ActionAnonymize, Output: ActionOff}
	assert.Equal(t, ActionAnonymize, d.For(guard.Input))
	assert.Equal(t, ActionOff, d.For(guard.Output))
	assert.Equal(t, ActionOff, d.For("SIDEWAYS"))
	assert.True(t, ActionNone.Enabled())
	assert.False(t, ActionOff.Enabled())
	assert.Equal(t, guard.ActionAnonymize, ActionAnonymize.Guard())
	assert.Equal(t, guard.ActionNone, ActionOff.Guard())

	assert.True(t, StrengthMedium.Includes(StrengthLow))
	assert.True(t, StrengthMedium.Includes(StrengthMedium))
	assert.False(t, StrengthMedium.Includes(StrengthHigh))
	assert.False(t, StrengthLow.Includes(Strength("BOGUS")))
}

func TestGuardModelSection(t *testing.T) {
	p, err := Parse([]byte(`
failMode: open
guardModel:
  endpoint: http://127.0.0.1:8002/v1
  model: Qwen/Qwen3Guard-Gen-0.6B
  timeout: 750ms
  categories:
    PII: {action: OFF}
    Unethical Acts: {input: NONE}
`), "")
	require.NoError(t, err)
	g := p.GuardModel
	require.NotNil(t, g)
	assert.Equal(t, "http://127.0.0.1:8002/v1", g.Endpoint)
	assert.Equal(t, 750*time.Millisecond, g.Timeout)
	assert.Equal(t, FailOpen, g.FailMode, "defaults to the policy's fail mode")
	assert.True(t, g.Input)
	assert.True(t, g.Output)
	assert.Equal(t, GuardStreamEnd, g.Streaming)
	assert.Equal(t, GuardLoose, g.Controversial)
	assert.Equal(t, DefaultGuardMaxChars, g.MaxChars)
	assert.Equal(t, Directions{Input: ActionOff, Output: ActionOff}, g.Categories["PII"])
	assert.Equal(t, Directions{Input: ActionNone, Output: ActionBlock}, g.Categories["Unethical Acts"])
	assert.Equal(t, Directions{Input: ActionBlock, Output: ActionOff}, g.Categories["Jailbreak"], "defaults kept")

	none, err := Parse([]byte("name: x\n"), "")
	require.NoError(t, err)
	assert.Nil(t, none.GuardModel)

	_, err = Parse([]byte(`
guardModel:
  endpoint: 127.0.0.1:8002
  timeout: soon
  streaming: later
  controversial: maybe
  categories:
    Violent: {action: ANONYMIZE}
`), "")
	require.Error(t, err)
	for _, want := range []string{"guardModel.model: required", "guardModel.endpoint", "guardModel.timeout", "guardModel.streaming", "guardModel.controversial", "guardModel.categories.Violent.action"} {
		assert.Contains(t, err.Error(), want)
	}
}
