// Package sse reads and writes server-sent events (text/event-stream), the
// framing vLLM and OpenAI use for streamed completions.
//
// The reader is incremental: it yields each event as soon as its closing
// blank line has arrived, whatever the byte boundaries of the underlying
// reads, because the gateway must not add latency by waiting for more input
// than an event needs.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxEventSize bounds one event (all its lines together) so that a
// misbehaving upstream cannot make the gateway buffer without limit. vLLM's
// chunks are a few hundred bytes; a full non-streamed answer is never sent
// as one event.
const DefaultMaxEventSize = 4 << 20

// ErrEventTooLarge is returned when an event or a single line exceeds the
// reader's maximum size.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one dispatched event.
type Event struct {
	// Type is the value of the last "event:" field, empty for the default
	// "message" type (vLLM and OpenAI send none).
	Type string
	// ID is the value of the last "id:" field of the event, if any.
	ID string
	// Data is the event's data lines joined with "\n", without the final
	// newline. The slice belongs to the caller.
	Data []byte
	// Incomplete is true when the stream ended before the blank line that
	// closes the event: its last line may be cut short.
	Incomplete bool
}

// Reader yields the events of a text/event-stream.
type Reader struct {
	r      io.Reader
	buf    []byte // read buffer; unconsumed bytes are buf[start:end]
	start  int
	end    int
	rerr   error // sticky error from r, returned once the buffer is drained
	lastCR bool  // the previous line ended in '\r': a leading '\n' belongs to it
	bomOK  bool  // the leading byte-order mark has been looked for
	max    int

	// The event being assembled.
	data    []byte
	hasData bool
	typ     string
	id      string
}

// NewReader returns a Reader that reads events from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r, buf: make([]byte, 4096), max: DefaultMaxEventSize}
}

// SetMaxEventSize changes the limit on one event's size (see
// DefaultMaxEventSize). n <= 0 restores the default.
func (r *Reader) SetMaxEventSize(n int) {
	if n <= 0 {
		n = DefaultMaxEventSize
	}
	r.max = n
}

// Next returns the next event. At the end of the stream it returns io.EOF;
// an event whose closing blank line is missing at the end of the stream is
// still returned first, because an upstream that closes right after its last
// "data: [DONE]" line should not lose it. Any other error from the
// underlying reader is returned as is, wrapped.
func (r *Reader) Next() (Event, error) {
	for {
		line, ok, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if !ok {
			// End of input: dispatch what is pending, then report EOF.
			if ev, ok := r.dispatch(); ok {
				ev.Incomplete = true
				return ev, nil
			}
			if r.rerr != nil && !errors.Is(r.rerr, io.EOF) {
				return Event{}, fmt.Errorf("sse: read: %w", r.rerr)
			}
			return Event{}, io.EOF
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := r.field(line); err != nil {
			return Event{}, err
		}
	}
}

// dispatch returns the assembled event, if it has data, and starts a new one.
func (r *Reader) dispatch() (Event, bool) {
	defer func() {
		r.data = r.data[:0]
		r.hasData = false
		r.typ = ""
	}()
	if !r.hasData {
		return Event{}, false
	}
	d := r.data
	if len(d) > 0 && d[len(d)-1] == '\n' {
		d = d[:len(d)-1]
	}
	return Event{Type: r.typ, ID: r.id, Data: bytes.Clone(d)}, true
}

// field interprets one non-empty line.
func (r *Reader) field(line []byte) error {
	if line[0] == ':' {
		return nil // comment, used as a keep-alive
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if len(r.data)+len(value)+1 > r.max {
			return ErrEventTooLarge
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
	case "event":
		r.typ = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.id = string(value)
		}
	}
	// "retry" and unknown fields are ignored, as the specification says.
	return nil
}

// readLine returns the next line without its terminator (CRLF, LF or CR).
// ok is false at the end of input; a final line without terminator is
// returned before that. The returned slice is valid until the next call.
func (r *Reader) readLine() (line []byte, ok bool, err error) {
	for {
		if r.lastCR && r.start < r.end {
			// A CR ended the previous line; an LF right after it is part
			// of the same terminator. Deciding this lazily, when the next
			// byte is here anyway, means a CR-terminated event is yielded
			// without waiting for the next byte.
			if r.buf[r.start] == '\n' {
				r.start++
			}
			r.lastCR = false
		}
		if !r.bomOK {
			if r.end-r.start >= 3 || r.rerr != nil {
				if bytes.HasPrefix(r.buf[r.start:r.end], utf8BOM) {
					r.start += len(utf8BOM)
				}
				r.bomOK = true
			}
		}
		if r.bomOK {
			avail := r.buf[r.start:r.end]
			if i := bytes.IndexAny(avail, "\r\n"); i >= 0 {
				line = avail[:i]
				r.lastCR = avail[i] == '\r'
				r.start += i + 1
				return line, true, nil
			}
			if r.rerr != nil {
				if len(avail) > 0 {
					r.start = r.end
					return avail, true, nil
				}
				return nil, false, nil
			}
			if len(avail) > r.max {
				return nil, false, ErrEventTooLarge
			}
		}
		r.fill()
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// fill reads more input, compacting or growing the buffer as needed.
func (r *Reader) fill() {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	// Retry a few empty reads before giving up, as bufio does, so that a
	// reader returning (0, nil) cannot spin this loop forever.
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.rerr = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.rerr = io.ErrNoProgress
}
