package policydigest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDigest(t *testing.T) {
	base := map[string][]byte{"policy.yaml": []byte("name: p\n"), "words.txt": []byte("a\nb\n")}
	d := Files(base)
	// Worked by hand: sha256sum of the two lines "policy.yaml <sha>\nwords.txt <sha>\n".
	want := SHA256([]byte("policy.yaml " + SHA256([]byte("name: p\n")) + "\nwords.txt " + SHA256([]byte("a\nb\n")) + "\n"))
	assert.Equal(t, want, d)

	cases := map[string]map[string][]byte{
		"a word changed": {"policy.yaml": []byte("name: p\n"), "words.txt": []byte("a\nc\n")},
		"a file added":   {"policy.yaml": []byte("name: p\n"), "words.txt": []byte("a\nb\n"), "x.txt": nil},
		"a file removed": {"policy.yaml": []byte("name: p\n")},
		"a file renamed": {"policy.yaml": []byte("name: p\n"), "word.txt": []byte("a\nb\n")},
	}
	for name, files := range cases {
		assert.NotEqual(t, d, Files(files), name)
	}

	dir := t.TempDir()
	for n, b := range base {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), b, 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	got, err := Dir(dir)
	require.NoError(t, err)
	assert.Equal(t, d, got, "directories inside are not part of the policy")
	_, err = Dir(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}
