package policy

import (
	"os"
	"testing"
)

// FuzzParse: Parse must never panic, whatever the bytes, and a policy it
// accepts must be complete (every default applied).
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("name: x\n"))
	f.Add([]byte("sensitiveInformation:\n  piiEntities:\n    - {type: EMAIL, output: MASK}\n"))
	f.Add([]byte("sensitiveInformation:\n  regexes:\n    - {name: R, pattern: '(a|b)*c{2,5}', maxLength: 9}\n"))
	f.Add([]byte("words:\n  lists:\n    - {name: W, words: [a, 中文], files: [examples/blocked-words.txt]}\n"))
	f.Add([]byte("topics:\n  denied:\n    - {name: T, keywords: [a, b], minKeywords: 2}\n"))
	f.Add([]byte("a: &x [1]\nwords: *x\n"))
	f.Add([]byte("promptAttack: {strength: HIGH}\n---\nx: 1\n"))
	f.Add([]byte("{"))
	baseDir := "../.." // so that the example's relative word file resolves
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, baseDir)
		if err != nil {
			if p != nil {
				t.Fatalf("policy and error both returned")
			}
			if err.Error() == "" {
				t.Fatalf("empty error message")
			}
			return
		}
		if p.Version != 1 || p.FailMode == "" || p.Streaming.Mode == "" || p.BlockedMessages.Input == "" || p.BlockedMessages.Output == "" || p.PromptAttack.Strength == "" {
			t.Fatalf("defaults not applied: %+v", p)
		}
		for _, r := range p.SensitiveInformation.Regexes {
			if r.Compiled == nil || r.MaxLength < 1 || r.Compiled.MatchString("") {
				t.Fatalf("accepted regex %q is unusable", r.Pattern)
			}
		}
	})
}
