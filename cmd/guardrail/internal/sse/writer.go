package sse

import (
	"bytes"
	"fmt"
	"io"
)

// Done is the data of the sentinel event that ends an OpenAI-style stream.
var Done = []byte("[DONE]")

// Writer writes events. It does not buffer: every Write* call ends with a
// flush of the underlying writer when it can flush, because a streamed token
// that sits in a buffer is latency the client sees.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w. If w has a FlushError() error or Flush()
// method (as http.ResponseWriter does), it is called after each event.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteData writes one event with the given data. Data containing line
// breaks is split over several "data:" lines, which a reader joins back with
// "\n"; JSON chunks never contain raw line breaks, so in practice this is one
// line.
func (w *Writer) WriteData(data []byte) error {
	b := w.buf[:0]
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(b, "data: "...)
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	w.buf = b
	return w.write(b)
}

// WriteDone writes the "data: [DONE]" event.
func (w *Writer) WriteDone() error {
	return w.WriteData(Done)
}

// WriteComment writes a comment line (": text"), which readers ignore;
// useful as a keep-alive.
func (w *Writer) WriteComment(text string) error {
	b := append(w.buf[:0], ": "...)
	for _, c := range []byte(text) {
		// A line break would end the comment and start a field.
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	b = append(b, "\n\n"...)
	w.buf = b
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("sse: write: %w", err)
	}
	return w.Flush()
}

// Flush flushes the underlying writer if it can be flushed.
func (w *Writer) Flush() error {
	switch f := w.w.(type) {
	case interface{ FlushError() error }:
		if err := f.FlushError(); err != nil {
			return fmt.Errorf("sse: flush: %w", err)
		}
	case interface{ Flush() error }:
		if err := f.Flush(); err != nil {
			return fmt.Errorf("sse: flush: %w", err)
		}
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}
