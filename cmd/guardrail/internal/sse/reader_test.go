package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readAll drains r and returns the events and the terminal error (nil for
// a clean io.EOF).
func readAll(r *Reader) ([]Event, error) {
	var evs []Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func data(evs []Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, string(ev.Data))
	}
	return out
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string
		types []string
	}{
		{name: "vllm chunks", in: "data: {\"a\":1}\n\ndata: [DONE]\n\n", want: []string{`{"a":1}`, "[DONE]"}},
		{name: "no space after colon", in: "data:x\n\n", want: []string{"x"}},
		{name: "only the first space is removed", in: "data:  x\n\n", want: []string{" x"}},
		{name: "multi-line data", in: "data: a\ndata: b\ndata:\n\n", want: []string{"a\nb\n"}},
		{name: "CRLF", in: "data: a\r\n\r\ndata: b\r\n\r\n", want: []string{"a", "b"}},
		{name: "CR only", in: "data: a\r\rdata: b\r\r", want: []string{"a", "b"}},
		{name: "mixed terminators", in: "data: a\r\ndata: b\n\r\ndata: c\r\n\n", want: []string{"a\nb", "c"}},
		{name: "comments and keep-alives", in: ": ping\n\n: another\ndata: x\n: inside\n\n", want: []string{"x"}},
		{name: "event type", in: "event: delta\ndata: x\n\n", want: []string{"x"}, types: []string{"delta"}},
		{name: "event without data is not dispatched", in: "event: ping\n\ndata: x\n\n", want: []string{"x"}},
		{name: "empty data line is an event", in: "data:\n\n", want: []string{""}},
		{name: "field without colon", in: "data\n\n", want: []string{""}},
		{name: "unknown fields ignored", in: "retry: 10\nfoo: bar\ndata: x\n\n", want: []string{"x"}},
		{name: "missing final blank line", in: "data: [DONE]\n", want: []string{"[DONE]"}},
		{name: "missing final newline", in: "data: [DONE]", want: []string{"[DONE]"}},
		{name: "byte order mark", in: "\xEF\xBB\xBFdata: x\n\n", want: []string{"x"}},
		{name: "empty input", in: "", want: []string{}},
		{name: "blank lines only", in: "\n\n\r\n", want: []string{}},
		{name: "colon inside value", in: "data: {\"k\": \"v:w\"}\n\n", want: []string{`{"k": "v:w"}`}},
	}
	readers := map[string]func(string) io.Reader{
		"whole":   func(s string) io.Reader { return strings.NewReader(s) },
		"onebyte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"halfway": func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"dataerr": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
	for _, tt := range tests {
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				evs, err := readAll(NewReader(mk(tt.in)))
				require.NoError(t, err)
				assert.Equal(t, tt.want, data(evs))
				if tt.types != nil {
					for i, ev := range evs {
						assert.Equal(t, tt.types[i], ev.Type)
					}
				}
			})
		}
	}
}

// TestReaderYieldsWithoutWaiting checks that an event is returned as soon
// as its blank line is read, even when the line ends in a lone CR whose
// possible LF has not arrived: a streaming proxy must not wait for the next
// token to pass on this one.
func TestReaderYieldsWithoutWaiting(t *testing.T) {
	for _, term := range []string{"\n\n", "\r\r", "\r\n\r\n"} {
		t.Run(strings.NewReplacer("\r", "CR", "\n", "LF").Replace(term), func(t *testing.T) {
			pr, pw := io.Pipe()
			r := NewReader(pr)
			go func() { _, _ = pw.Write([]byte("data: first" + term)) }()
			ev, err := r.Next() // would deadlock if Next read ahead
			require.NoError(t, err)
			assert.Equal(t, "first", string(ev.Data))

			go func() {
				_, _ = pw.Write([]byte("\ndata: second" + term))
				_ = pw.Close()
			}()
			evs, err := readAll(r)
			require.NoError(t, err)
			assert.Equal(t, []string{"second"}, data(evs))
		})
	}
}

func TestReaderTooLarge(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "one long line", in: "data: " + strings.Repeat("x", 200)},
		{name: "many lines", in: strings.Repeat("data: "+strings.Repeat("x", 30)+"\n", 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in + "\n\n"))
			r.SetMaxEventSize(100)
			_, err := readAll(r)
			assert.ErrorIs(t, err, ErrEventTooLarge)
		})
	}
}

func TestReaderPropagatesReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)))
	evs, err := readAll(r)
	assert.Equal(t, []string{"a", "b"}, data(evs), "complete and pending events come first")
	assert.ErrorIs(t, err, boom)
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{name: "json", data: `{"a":1}`, want: "data: {\"a\":1}\n\n"},
		{name: "done", data: "[DONE]", want: "data: [DONE]\n\n"},
		{name: "multi-line", data: "a\nb\r\nc\rd", want: "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{name: "empty", data: "", want: "data: \n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, NewWriter(&b).WriteData([]byte(tt.data)))
			assert.Equal(t, tt.want, b.String())
			// Round trip: what the writer writes, the reader reads back.
			evs, err := readAll(NewReader(&b))
			require.NoError(t, err)
			assert.Equal(t, []string{strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(tt.data)}, data(evs))
		})
	}
}

type flushRecorder struct {
	bytes.Buffer
	flushes int
}

func (f *flushRecorder) Flush() { f.flushes++ }

func TestWriterFlushesEachEvent(t *testing.T) {
	var f flushRecorder
	w := NewWriter(&f)
	require.NoError(t, w.WriteData([]byte("x")))
	require.NoError(t, w.WriteComment("keep\nalive"))
	require.NoError(t, w.WriteDone())
	assert.Equal(t, 3, f.flushes)
	assert.Equal(t, "data: x\n\n: keep alive\n\ndata: [DONE]\n\n", f.String())
}

// An event cut by the end of the stream is returned, marked Incomplete, so
// that the caller can tell a stream that broke inside an event from one
// that sent something unreadable.
func TestIncompleteLastEvent(t *testing.T) {
	rd := NewReader(strings.NewReader("data: one\n\ndata: {\"cut"))
	ev, err := rd.Next()
	require.NoError(t, err)
	assert.Equal(t, "one", string(ev.Data))
	assert.False(t, ev.Incomplete)
	ev, err = rd.Next()
	require.NoError(t, err)
	assert.Equal(t, `{"cut`, string(ev.Data))
	assert.True(t, ev.Incomplete)
	_, err = rd.Next()
	assert.ErrorIs(t, err, io.EOF)
}
