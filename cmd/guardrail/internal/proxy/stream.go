package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/sse"
)

var (
	errStreamBlocked = errors.New("stream blocked")
	errClientGone    = errors.New("client went away")
	errCutEvent      = errors.New("the stream ended inside an event")
	errUpstreamRead  = errors.New("upstream stream")
)

// flushWriter lets sse.Writer flush an http.ResponseWriter through
// http.ResponseController, which also finds Flush behind wrappers.
type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f flushWriter) FlushError() error           { return f.rc.Flush() }

func newEventWriter(w http.ResponseWriter) *sse.Writer {
	return sse.NewWriter(flushWriter{w: w, rc: http.NewResponseController(w)})
}

func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell nginx-style proxies not to buffer
	h.Del("Content-Length")
}

// choiceState is the per-choice state of a stream: one window per text
// field, so that content and reasoning are scanned as the separate texts
// they are.
type choiceState struct {
	index          int
	content        window
	reasoning      window
	reasoningNames []string // the field names the upstream uses, to write them back
	sawReasoning   bool     // the upstream separates reasoning: content is all answer
	think          thinkFilter
	contentSent    bool
	finished       bool
	tools          map[int]*window // arguments of each tool call, by tool call index
	toolOrder      []int
	answer         strings.Builder // what the client gets, for the guard model
}

// tool returns the arguments window of tool call i, creating it.
func (st *streamState) tool(cs *choiceState, i int) *window {
	if cs.tools == nil {
		cs.tools = map[int]*window{}
	}
	w, ok := cs.tools[i]
	if !ok {
		w = &window{holdback: st.holdback, json: &jsonLex{}}
		cs.tools[i] = w
		cs.toolOrder = append(cs.toolOrder, i)
	}
	return w
}

// streamState processes one streamed answer.
type streamState struct {
	s         *Server
	ep        endpoint
	rec       *record
	sw        *sse.Writer
	async     bool
	strip     bool
	scanR     bool // check reasoning fields
	unchecked bool // fail-open after an engine failure: release without checking
	holdback  int
	wrote     bool
	ctx       context.Context
	// classify: the guard model judges each answer when it ends. hold:
	// and nothing is written before it has (held collects the events).
	classify bool
	hold     bool
	held     [][]byte
	choices  map[int]*choiceState
	order    []int
	last     map[string]json.RawMessage // top-level fields of the latest chunk
}

// serveStream relays a streamed answer, checking it as configured.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, resp *http.Response, rec *record, ep endpoint) {
	rec.stream = true
	s.metrics.openStreams.Inc()
	defer s.metrics.openStreams.Dec()

	st := &streamState{
		s: s, ep: ep, rec: rec,
		async:   s.opts.StreamMode == StreamAsync,
		strip:   s.opts.StripReasoning,
		scanR:   !s.opts.SkipReasoningScan,
		choices: map[int]*choiceState{},
		ctx:     r.Context(),
	}
	st.classify = s.opts.Classifier != nil && s.opts.Classifier.Enabled(guard.Output)
	st.hold = st.classify && s.opts.ClassifierHold && !st.async
	hb, err := s.checker.holdback(guard.Output)
	if err != nil {
		if s.opts.FailMode == FailClosed {
			s.writeError(w, rec, http.StatusServiceUnavailable, "guardrail_error", "guardrail_unavailable", "the guardrail could not check the answer")
			return
		}
		rec.failOpen = append(rec.failOpen, guard.Output)
		st.unchecked = true
	}
	st.holdback = hb

	h := w.Header()
	setStreamHeaders(h)
	setGuardrailHeaders(h, rec) // what the input check did is known now
	// What the output check does is only known at the end: trailers.
	h.Set("Trailer", headerAction+", "+headerPolicy)
	w.WriteHeader(http.StatusOK)
	rec.status = http.StatusOK
	st.sw = newEventWriter(w)

	st.run(r.Context(), sse.NewReader(resp.Body))

	if rec.intervened() {
		h.Set(headerAction, string(guard.OutcomeIntervened))
		h.Set(headerPolicy, strings.Join(rec.policies(), ","))
	}
}

// run reads upstream events until the stream ends or must be cut.
func (st *streamState) run(ctx context.Context, rd *sse.Reader) {
	for {
		ev, err := rd.Next()
		switch {
		case errors.Is(err, io.EOF):
			// The upstream closed without [DONE]: release what was
			// received (checked), but do not claim a clean end either.
			st.stop(st.flush())
			return
		case err != nil:
			st.stop(st.readFailed(ctx, err))
			return
		}
		if ev.Incomplete && !bytes.Equal(bytes.TrimSpace(ev.Data), sse.Done) && !json.Valid(ev.Data) {
			// The connection broke inside an event: the stream was cut,
			// not garbled.
			st.stop(st.readFailed(ctx, errCutEvent))
			return
		}
		if bytes.Equal(bytes.TrimSpace(ev.Data), sse.Done) {
			err := st.flush()
			if err == nil {
				err = st.writeData(sse.Done)
			}
			st.stop(err)
			return
		}
		if err := st.event(ev.Data); err != nil {
			st.stop(err)
			return
		}
	}
}

// stop ends the stream according to why it stops. Events held for the
// guard model go out when the answer was judged (a normal end, or an
// upstream failure after what arrived was checked), and are dropped
// otherwise.
func (st *streamState) stop(err error) {
	if st.hold {
		held := st.held
		st.hold, st.held = false, nil
		if err == nil || errors.Is(err, errUpstreamRead) {
			for _, b := range held {
				if werr := st.writeData(b); werr != nil {
					err = werr
					break
				}
			}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, errClientGone):
		st.rec.outcome = outcomeClientGone
	case errors.Is(err, errStreamBlocked):
		_ = st.writeBlocked()
	case errors.Is(err, errUnparsable):
		st.s.metrics.upstreamErrs.WithLabelValues(st.rec.route, "parse").Inc()
		st.rec.outcome, st.rec.errKind = outcomeError, "upstream_parse"
		_ = st.writeData(errorEvent("upstream_error", "upstream_invalid_response", "the model server sent a chunk that could not be read"))
	case errors.Is(err, errCheck):
		st.rec.outcome, st.rec.errKind = outcomeError, "check_failed"
		_ = st.writeData(errorEvent("guardrail_error", "guardrail_unavailable", "the guardrail could not check the answer"))
	default:
		st.rec.outcome, st.rec.errKind = outcomeError, "stream"
		_ = st.writeData(errorEvent("upstream_error", "upstream_interrupted", "the model server's stream was interrupted"))
	}
}

// readFailed handles a broken upstream stream: release what arrived
// (checked), then an error event, so the client does not mistake a cut
// answer for a complete one.
func (st *streamState) readFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errClientGone
	}
	kind := "read"
	if errors.Is(err, sse.ErrEventTooLarge) {
		kind = "too_large"
	}
	st.s.metrics.upstreamErrs.WithLabelValues(st.rec.route, kind).Inc()
	if ferr := st.flush(); ferr != nil {
		return ferr
	}
	return fmt.Errorf("%w: %w", errUpstreamRead, err)
}

// event handles one upstream data event other than [DONE].
func (st *streamState) event(data []byte) error {
	chunk, err := decodeObject(data)
	if err != nil {
		return st.unreadable(data, fmt.Errorf("%w: chunk: %v", errUnparsable, err))
	}
	if raw, ok := chunk["error"]; ok && !isNull(raw) {
		// vLLM reports a failure during generation as an error event. It
		// carries no generated text: release what is pending, pass it on.
		st.s.metrics.upstreamErrs.WithLabelValues(st.rec.route, "stream_error").Inc()
		st.rec.errKind = "upstream_stream_error"
		if err := st.flush(); err != nil {
			return err
		}
		return st.writeData(data)
	}
	var deltas []choiceDelta
	if raw, ok := chunk["choices"]; ok && !isNull(raw) {
		choices, err := splitObjects(raw)
		if err != nil {
			return st.unreadable(data, fmt.Errorf("%w: choices: %v", errUnparsable, err))
		}
		deltas = make([]choiceDelta, 0, len(choices))
		for i, ch := range choices {
			d, err := parseChoice(ch, i, st.ep)
			if err != nil {
				return st.unreadable(data, err)
			}
			deltas = append(deltas, d)
		}
	}
	st.last = chunk
	if st.async {
		return st.asyncChunk(data, chunk, deltas)
	}
	return st.syncChunk(chunk, deltas)
}

// unreadable handles a chunk the gateway cannot read, hence cannot check:
// fail closed ends the stream; fail open passes it on as it is.
func (st *streamState) unreadable(data []byte, err error) error {
	if st.s.opts.FailMode == FailClosed {
		return err
	}
	st.failOpen()
	return st.writeData(data)
}

func (st *streamState) failOpen() {
	if !st.unchecked {
		st.unchecked = true
		st.rec.failOpen = append(st.rec.failOpen, guard.Output)
	}
}

// choiceDelta is one choice of a chunk, parsed.
type choiceDelta struct {
	choice    map[string]json.RawMessage
	delta     map[string]json.RawMessage // chat only
	index     int
	reasoning string
	rNames    []string
	content   string
	hasText   bool // the text field is present (possibly empty)
	finish    bool
	other     bool // non-text delta fields: tool calls and the like
	tools     []toolDelta
}

// toolDelta is one entry of a delta's tool_calls.
type toolDelta struct {
	raw     map[string]json.RawMessage
	fn      map[string]json.RawMessage // nil without a function object
	index   int
	name    string
	args    string
	hasArgs bool
}

func parseToolDeltas(raw json.RawMessage) ([]toolDelta, error) {
	calls, err := splitObjects(raw)
	if err != nil {
		return nil, errUnparsablef("tool_calls: %v", err)
	}
	out := make([]toolDelta, 0, len(calls))
	for i, c := range calls {
		td := toolDelta{raw: c, index: i}
		if r, ok := c["index"]; ok {
			if err := json.Unmarshal(r, &td.index); err != nil {
				return nil, errUnparsablef("tool_calls[%d].index: %v", i, err)
			}
		}
		if f, ok := c["function"]; ok && !isNull(f) {
			if td.fn, err = splitObject(f); err != nil {
				return nil, errUnparsablef("tool_calls[%d].function: %v", i, err)
			}
			if n, ok := td.fn["name"]; ok && !isNull(n) {
				if td.name, ok = rawString(n); !ok {
					return nil, errUnparsablef("tool_calls[%d].function.name is not a string", i)
				}
			}
			if a, ok := td.fn["arguments"]; ok && !isNull(a) {
				if td.args, ok = rawString(a); !ok {
					return nil, errUnparsablef("tool_calls[%d].function.arguments is not a string", i)
				}
				td.hasArgs = true
			}
		}
		out = append(out, td)
	}
	return out, nil
}

func parseChoice(ch map[string]json.RawMessage, pos int, ep endpoint) (choiceDelta, error) {
	d := choiceDelta{choice: ch, index: pos}
	if raw, ok := ch["index"]; ok {
		if err := json.Unmarshal(raw, &d.index); err != nil {
			return d, fmt.Errorf("%w: choice index: %v", errUnparsable, err)
		}
	}
	d.finish = !isNull(ch["finish_reason"])
	src, field := ch, "text"
	if ep.chat {
		field = "content"
		if raw, ok := ch["delta"]; ok && !isNull(raw) {
			var err error
			if d.delta, err = splitObject(raw); err != nil {
				return d, fmt.Errorf("%w: delta: %v", errUnparsable, err)
			}
		}
		src = d.delta
		for _, f := range reasoningFields {
			raw, ok := d.delta[f]
			if !ok || isNull(raw) {
				continue
			}
			s, ok := rawString(raw)
			if !ok {
				return d, fmt.Errorf("%w: %s is not a string", errUnparsable, f)
			}
			d.rNames = append(d.rNames, f)
			// When both names are sent they carry the same text.
			if d.reasoning == "" {
				d.reasoning = s
			}
		}
		for k, v := range d.delta {
			switch k {
			case "role", "content", "reasoning", "reasoning_content":
			default:
				d.other = d.other || meaningful(v)
			}
		}
		if raw, ok := d.delta["tool_calls"]; ok && meaningful(raw) {
			var err error
			if d.tools, err = parseToolDeltas(raw); err != nil {
				return d, err
			}
		}
	}
	if raw, ok := src[field]; ok && !isNull(raw) {
		s, ok := rawString(raw)
		if !ok {
			return d, fmt.Errorf("%w: %s is not a string", errUnparsable, field)
		}
		d.content, d.hasText = s, true
	}
	return d, nil
}

// meaningful reports whether a raw value says something: not null, and
// not an empty string, array or object (vLLM sends "tool_calls": []).
func meaningful(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", `""`, "[]", "{}":
		return false
	}
	return true
}

func (st *streamState) choice(i int) *choiceState {
	cs, ok := st.choices[i]
	if !ok {
		cs = &choiceState{index: i}
		cs.content.holdback = st.holdback
		cs.reasoning.holdback = st.holdback
		st.choices[i] = cs
		st.order = append(st.order, i)
	}
	return cs
}

// push feeds one window and returns the text to send. It applies the fail
// mode to engine failures and records findings.
func (st *streamState) push(w *window, text string, final bool) (string, error) {
	if st.unchecked {
		w.buf += text
		return w.pending(), nil
	}
	r, err := w.push(st.s.checker, text, final, !st.async)
	if err != nil {
		if st.s.opts.FailMode == FailClosed {
			return "", err
		}
		st.failOpen()
		return w.pending(), nil
	}
	st.rec.add(guard.Output, r.findings, !st.async)
	if r.block {
		st.rec.blocked = guard.Output
		return "", errStreamBlocked
	}
	return r.text, nil
}

// released is what a choice lets through in one step.
type released struct {
	reasoning strings.Builder
	content   strings.Builder
	tools     map[int]string // checked arguments, by tool call index
}

func (r *released) addTool(i int, text string) {
	if text == "" {
		return
	}
	if r.tools == nil {
		r.tools = map[int]string{}
	}
	r.tools[i] += text
}

// step feeds a choice's new text to its windows. final ends the texts.
func (st *streamState) step(cs *choiceState, d *choiceDelta, out *released) error {
	if st.classify {
		if d.reasoning != "" && !st.strip {
			cs.answer.WriteString(d.reasoning)
		}
		cs.answer.WriteString(d.content)
		for _, td := range d.tools {
			cs.answer.WriteString(td.name)
			cs.answer.WriteString(td.args)
		}
	}
	if d.reasoning != "" {
		cs.sawReasoning = true
		for _, n := range d.rNames {
			if !slices.Contains(cs.reasoningNames, n) {
				cs.reasoningNames = append(cs.reasoningNames, n)
			}
		}
		switch {
		case st.strip:
		case !st.scanR:
			out.reasoning.WriteString(d.reasoning) // the policy says not to check it
		default:
			t, err := st.push(&cs.reasoning, d.reasoning, false)
			if err != nil {
				return err
			}
			out.reasoning.WriteString(t)
		}
	}
	if d.content != "" {
		if cs.reasoning.hasPending() {
			// The answer has begun, so the reasoning is complete: release
			// its tail now rather than after the answer.
			t, err := st.push(&cs.reasoning, "", true)
			if err != nil {
				return err
			}
			out.reasoning.WriteString(t)
		}
		text := d.content
		if st.strip && !st.async && !cs.sawReasoning {
			text = cs.think.feed(text)
		}
		if text != "" {
			t, err := st.push(&cs.content, text, false)
			if err != nil {
				return err
			}
			out.content.WriteString(t)
		}
	}
	if d.finish || d.other {
		if err := st.end(cs, out, false); err != nil {
			return err
		}
	}
	for _, td := range d.tools {
		if td.name != "" {
			if err := st.checkName(td.name); err != nil {
				return err
			}
		}
		w := st.tool(cs, td.index)
		if td.args != "" {
			t, err := st.push(w, td.args, false)
			if err != nil {
				return err
			}
			out.addTool(td.index, t)
		}
	}
	if d.finish {
		return st.end(cs, out, true)
	}
	return nil
}

// checkName checks a tool call's function name, which arrives whole: a
// BLOCK ends the stream; anything else is only recorded (a name cannot be
// masked without breaking the call).
func (st *streamState) checkName(name string) error {
	if st.unchecked {
		return nil
	}
	fs, err := st.s.checker.scan(guard.Output, name)
	if err != nil {
		if st.s.opts.FailMode == FailClosed {
			return err
		}
		st.failOpen()
		return nil
	}
	v := judge(fs)
	st.rec.add(guard.Output, fs, !v.block)
	if v.block {
		st.rec.blocked = guard.Output
		return errStreamBlocked
	}
	return nil
}

// end releases all pending text of a choice: at its finish_reason, before
// non-text fields (a tool call follows the text it comes after), and at
// the end of the stream.
func (st *streamState) end(cs *choiceState, out *released, finish bool) error {
	t, err := st.push(&cs.reasoning, "", true)
	if err != nil {
		return err
	}
	out.reasoning.WriteString(t)
	rest := ""
	if finish && st.strip && !st.async && !cs.sawReasoning {
		rest = cs.think.end()
	}
	t, err = st.push(&cs.content, rest, true)
	if err != nil {
		return err
	}
	out.content.WriteString(t)
	if finish {
		for _, i := range cs.toolOrder {
			t, err := st.push(cs.tools[i], "", true)
			if err != nil {
				return err
			}
			out.addTool(i, t)
		}
		cs.finished = true
		if st.classify && !st.unchecked {
			// The model step judges the whole answer, before its last
			// chunk (with the finish reason) goes out.
			blocked, err := st.s.classify(st.ctx, guard.Output, st.rec.prompt, cs.answer.String(), st.rec)
			if err != nil {
				return err
			}
			if blocked {
				return errStreamBlocked
			}
		}
	}
	return nil
}

// syncChunk is synchronous mode: the chunk goes out only with the text
// that has been checked (and masked), under the upstream chunk's id,
// model and created.
func (st *streamState) syncChunk(chunk map[string]json.RawMessage, deltas []choiceDelta) error {
	out := make([]map[string]json.RawMessage, 0, len(deltas))
	finished := false
	for i := range deltas {
		d := &deltas[i]
		cs := st.choice(d.index)
		var rel released
		if err := st.step(cs, d, &rel); err != nil {
			return err
		}
		if o := st.outChoice(cs, d, &rel); o != nil {
			out = append(out, o)
			finished = finished || d.finish
		}
	}
	if len(out) == 0 && len(deltas) > 0 && !meaningful(chunk["usage"]) {
		return nil // everything is held back for now
	}
	if _, had := chunk["choices"]; had || len(out) > 0 {
		var err error
		if chunk["choices"], err = marshalJSON(out); err != nil {
			return fmt.Errorf("%w: encoding choices: %v", errCheck, err)
		}
	}
	if finished && st.rec.intervened() {
		chunk["guardrail"], _ = marshalJSON(st.rec.info())
	}
	return st.writeChunk(chunk)
}

// outChoice builds the choice to send for d with the released text, or
// nil when there is nothing to send for it.
func (st *streamState) outChoice(cs *choiceState, d *choiceDelta, rel *released) map[string]json.RawMessage {
	o := maps.Clone(d.choice)
	keep := d.finish || rel.content.Len() > 0 || rel.reasoning.Len() > 0 || len(rel.tools) > 0
	if st.ep.chat {
		od := maps.Clone(d.delta)
		if od == nil {
			od = map[string]json.RawMessage{}
		}
		for _, f := range reasoningFields {
			delete(od, f)
		}
		delete(od, "content")
		if !st.async {
			if tc, ok := st.toolCalls(d, rel); ok {
				od["tool_calls"] = tc
			} else {
				delete(od, "tool_calls")
			}
		}
		for _, v := range od {
			keep = keep || meaningful(v) // role, tool calls
		}
		if rel.reasoning.Len() > 0 {
			for _, n := range cs.reasoningNames {
				od[n] = jsonString(rel.reasoning.String())
			}
		}
		if rel.content.Len() > 0 || (d.hasText && d.content == "") {
			// An empty upstream content (vLLM's role-only first chunk) is
			// kept as it was.
			od["content"] = jsonString(rel.content.String())
		}
		o["delta"], _ = marshalJSON(od)
	} else {
		o["text"] = jsonString(rel.content.String())
	}
	if !keep {
		return nil
	}
	if rel.content.Len() > 0 {
		cs.contentSent = true
	}
	if !st.async && meaningful(o["logprobs"]) {
		// Logprobs spell out the tokens, masked values included, and do
		// not line up with held-back text: they are not sent in sync mode.
		o["logprobs"] = jsonNull
	}
	return o
}

// toolCalls builds the tool_calls of an outgoing delta: the upstream's
// entries with their arguments replaced by what was checked and released
// (entries with nothing left to say are dropped), then entries for calls
// whose held arguments were released now.
func (st *streamState) toolCalls(d *choiceDelta, rel *released) (json.RawMessage, bool) {
	var out []map[string]json.RawMessage
	done := map[int]bool{}
	for _, td := range d.tools {
		c := maps.Clone(td.raw)
		text, has := rel.tools[td.index]
		done[td.index] = true
		if td.fn != nil {
			fn := maps.Clone(td.fn)
			if td.hasArgs || has {
				fn["arguments"] = jsonString(text)
			}
			c["function"], _ = marshalJSON(fn)
		}
		informative := has || td.name != ""
		for k, v := range td.raw {
			if k != "index" && k != "function" && meaningful(v) {
				informative = true
			}
		}
		if informative {
			out = append(out, c)
		}
	}
	rest := make([]int, 0, len(rel.tools))
	for i := range rel.tools {
		if !done[i] {
			rest = append(rest, i)
		}
	}
	slices.Sort(rest)
	for _, i := range rest {
		fn, _ := marshalJSON(map[string]json.RawMessage{"arguments": jsonString(rel.tools[i])})
		out = append(out, map[string]json.RawMessage{"index": jsonInt(i), "function": fn})
	}
	if len(out) == 0 {
		return nil, false
	}
	b, err := marshalJSON(out)
	return b, err == nil
}

// asyncChunk is asynchronous mode: the chunk goes out at once, unchanged
// (but for stripped reasoning fields), and a copy of its text is checked
// afterwards with the same windows, which only observe.
func (st *streamState) asyncChunk(data []byte, chunk map[string]json.RawMessage, deltas []choiceDelta) error {
	out := data
	if st.strip && st.ep.chat {
		if b, ok := stripReasoningFields(chunk, deltas); ok {
			out = b
		}
	}
	if err := st.writeData(out); err != nil {
		return err
	}
	for i := range deltas {
		d := &deltas[i]
		cs := st.choice(d.index)
		if d.content != "" {
			cs.contentSent = true
		}
		var rel released // observed only; the text went out above
		if err := st.step(cs, d, &rel); err != nil {
			return err
		}
	}
	return nil
}

// stripReasoningFields returns the chunk without reasoning fields, if it
// had any.
func stripReasoningFields(chunk map[string]json.RawMessage, deltas []choiceDelta) ([]byte, bool) {
	found := false
	choices := make([]map[string]json.RawMessage, len(deltas))
	for i, d := range deltas {
		choices[i] = d.choice
		if len(d.rNames) == 0 {
			continue
		}
		found = true
		od := maps.Clone(d.delta)
		for _, n := range d.rNames {
			delete(od, n)
		}
		c := maps.Clone(d.choice)
		c["delta"], _ = marshalJSON(od)
		choices[i] = c
	}
	if !found {
		return nil, false
	}
	c := maps.Clone(chunk)
	c["choices"], _ = marshalJSON(choices)
	b, err := marshalJSON(c)
	return b, err == nil
}

// flush releases the pending text of every unfinished choice (end of
// stream) in one chunk.
func (st *streamState) flush() error {
	out := make([]map[string]json.RawMessage, 0, len(st.order))
	for _, i := range st.order {
		cs := st.choices[i]
		if cs.finished {
			continue
		}
		var rel released
		if err := st.end(cs, &rel, true); err != nil {
			return err
		}
		cs.finished = true
		if st.async || (rel.content.Len() == 0 && rel.reasoning.Len() == 0 && len(rel.tools) == 0) {
			continue
		}
		d := &choiceDelta{choice: map[string]json.RawMessage{"index": jsonInt(i), "finish_reason": jsonNull}, index: i}
		if st.ep.chat {
			d.choice["delta"] = json.RawMessage("{}")
		}
		if o := st.outChoice(cs, d, &rel); o != nil {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return nil
	}
	chunk := st.headFields()
	chunk["choices"], _ = marshalJSON(out)
	return st.writeChunk(chunk)
}

func jsonInt(i int) json.RawMessage {
	b, _ := json.Marshal(i)
	return b
}

// headFields are the identifying fields of the latest upstream chunk, for
// chunks the gateway writes on its own.
func (st *streamState) headFields() map[string]json.RawMessage {
	c := map[string]json.RawMessage{}
	for _, k := range []string{"id", "object", "created", "model", "system_fingerprint"} {
		if v, ok := st.last[k]; ok {
			c[k] = v
		}
	}
	if _, ok := c["object"]; !ok {
		c["object"] = jsonString(st.ep.chunkObject)
	}
	return c
}

// writeBlocked ends the stream with the blocked output message and
// finish_reason content_filter on every choice, then [DONE]. Where some of
// a choice's answer was already sent (async mode, or sync after a partial
// release) the message follows it on a new paragraph; otherwise it is the
// whole answer.
func (st *streamState) writeBlocked() error {
	st.hold, st.held = false, nil // what was held is not sent
	msg := st.s.checker.blockedMessage(guard.Output)
	h := head{}
	if st.last != nil {
		h.id, _ = rawString(st.last["id"])
		h.model, _ = rawString(st.last["model"])
		_ = json.Unmarshal(st.last["created"], &h.created)
	} else {
		h = st.s.inputHead(st.rec, st.ep)
	}
	body := blockedBody{
		ID: h.id, Object: st.ep.chunkObject, Created: h.created, Model: h.model,
		Choices: blockedChoices(st.ep, true, st.order, func(i int) string {
			if cs := st.choices[i]; cs != nil && cs.contentSent {
				return "\n\n" + msg
			}
			return msg
		}),
		Guardrail: st.rec.info(),
	}
	b, err := marshalJSON(body)
	if err != nil {
		return fmt.Errorf("encoding the blocked chunk: %w", err)
	}
	if err := st.writeData(b); err != nil {
		return err
	}
	return st.writeData(sse.Done)
}

func (st *streamState) writeChunk(chunk map[string]json.RawMessage) error {
	b, err := marshalJSON(chunk)
	if err != nil {
		return fmt.Errorf("%w: encoding chunk: %v", errCheck, err)
	}
	return st.writeData(b)
}

func (st *streamState) writeData(b []byte) error {
	if st.hold {
		st.held = append(st.held, bytes.Clone(b))
		return nil
	}
	if err := st.sw.WriteData(b); err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	if !st.wrote {
		st.wrote = true
		st.rec.ttfb = st.s.now().Sub(st.rec.start)
	}
	return nil
}
