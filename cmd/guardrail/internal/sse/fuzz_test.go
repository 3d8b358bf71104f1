package sse

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// refEvent is what the reference parser yields.
type refEvent struct {
	typ  string
	data string
}

// refParse is a deliberately naive parser of a complete stream: normalise
// the line terminators, split into lines, apply the specification's field
// rules. It cannot stream, which is exactly why it is a good oracle for the
// incremental Reader.
func refParse(in string) []refEvent {
	in = strings.TrimPrefix(in, "\xEF\xBB\xBF")
	in = strings.ReplaceAll(in, "\r\n", "\n")
	in = strings.ReplaceAll(in, "\r", "\n")
	lines := strings.Split(in, "\n")
	var (
		out     []refEvent
		buf     strings.Builder
		hasData bool
		typ     string
	)
	dispatch := func() {
		if hasData {
			out = append(out, refEvent{typ: typ, data: strings.TrimSuffix(buf.String(), "\n")})
		}
		buf.Reset()
		hasData = false
		typ = ""
	}
	for _, line := range lines {
		switch {
		case line == "":
			dispatch()
		case line[0] == ':':
		default:
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "data":
				buf.WriteString(value)
				buf.WriteByte('\n')
				hasData = true
			case "event":
				typ = value
			}
		}
	}
	dispatch() // the Reader also yields an unterminated last event
	return out
}

// splitReader returns its input in pieces whose sizes come from the fuzzer,
// so that events are split across reads at every possible byte.
type splitReader struct {
	data  []byte
	sizes []byte
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(s.sizes) > 0 {
		n = int(s.sizes[0])%16 + 1
		s.sizes = s.sizes[1:]
	} else {
		n = len(s.data)
	}
	n = min(n, len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

func FuzzReader(f *testing.F) {
	seeds := []string{
		"data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
		"data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"思考\"}}]}\n\ndata: [DONE]\n\n",
		"data: a\r\ndata: b\r\n\r\n: keep-alive\r\n\r\n",
		"data: a\r\rdata: b\r\r",
		"event: x\ndata\n\ndata:\n\n",
		"\xEF\xBB\xBFdata: bom\n\n",
		"data: unterminated",
		"\r\n\r\n\n\r",
		": only a comment",
		"data:  two spaces\nid: 7\nretry: 100\n\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), []byte{byte(i), 3, 1, 7, 2})
	}
	f.Fuzz(func(t *testing.T, in []byte, sizes []byte) {
		want := refParse(string(in))
		r := NewReader(&splitReader{data: in, sizes: sizes})
		r.SetMaxEventSize(len(in) + 16) // the limit is tested elsewhere
		var got []refEvent
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got = append(got, refEvent{typ: ev.Type, data: string(ev.Data)})
		}
		require.Equal(t, want, got)
	})
}
