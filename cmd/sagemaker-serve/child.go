package main

import (
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childEnvOverrides are set for vLLM whatever the endpoint passes. The
// weights are local (/opt/ml/model) and a SageMaker endpoint in a private
// VPC may have no route out: any download attempt must fail at once rather
// than hang, and nothing is reported home.
var childEnvOverrides = []string{
	"HF_HUB_OFFLINE=1",
	"HF_DATASETS_OFFLINE=1",
	"TRANSFORMERS_OFFLINE=1",
	"VLLM_NO_USAGE_STATS=1",
	"DO_NOT_TRACK=1",
}

// childEnv is vLLM's environment: the container's, without what is the
// entry point's own, plus the overrides and vLLM's key. The key travels in
// VLLM_API_KEY, which vLLM reads in place of --api-key (as the EKS target
// does, components/vllm), so that it never shows in a process list.
func childEnv(environ []string, apiKey string) []string {
	drop := map[string]bool{envVLLMCommand: true, "VLLM_API_KEY": true}
	for _, kv := range childEnvOverrides {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	out := make([]string, 0, len(environ)+len(childEnvOverrides)+1)
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	out = append(out, childEnvOverrides...)
	return append(out, "VLLM_API_KEY="+apiKey)
}

// randomKey is a 256-bit random token, hex encoded.
func randomKey() (string, error) {
	b := make([]byte, 32)
	if _, err := crand.Read(b); err != nil {
		return "", fmt.Errorf("generating a key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// reservePort finds a free loopback port for a vLLM: any the kernel
// gives, or one in SAGEMAKER_SAFE_PORT_RANGE when SageMaker sets it, never
// avoid (the container's own port). It returns the port with its listener
// still open: the port stays taken until the caller closes the listener
// just before it starts the vLLM that binds it, so that two reservations
// never give the same port, and the guard model's minutes of loading do not
// leave the main vLLM's port free for anything else to take. Another
// process could still take it in the moment between, in which case that
// vLLM fails to start and so does the container, which SageMaker then
// replaces.
func reservePort(r portRange, avoid int) (net.Listener, int, error) {
	try := func(p int) (net.Listener, int, bool) {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return nil, 0, false
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if port == avoid {
			_ = ln.Close()
			return nil, 0, false
		}
		return ln, port, true
	}
	if r == (portRange{}) {
		for range 10 {
			if ln, p, ok := try(0); ok {
				return ln, p, nil
			}
		}
		return nil, 0, errors.New("no free loopback port for vLLM")
	}
	n := r.hi - r.lo + 1
	start := rand.IntN(n)
	for i := range n {
		p := r.lo + (start+i)%n
		if p == avoid {
			continue
		}
		if ln, got, ok := try(p); ok {
			return ln, got, nil
		}
	}
	return nil, 0, fmt.Errorf("no free port for vLLM in %s %d-%d", envSafePortRange, r.lo, r.hi)
}

// exitState is how vLLM ended.
type exitState struct {
	code     int
	signaled bool
	signal   syscall.Signal
	err      error // the wait itself failed
}

func (s exitState) String() string {
	switch {
	case s.err != nil:
		return "unknown (" + s.err.Error() + ")"
	case s.signaled:
		return fmt.Sprintf("killed by signal %d (%s)", int(s.signal), s.signal)
	default:
		return "exit status " + strconv.Itoa(s.code)
	}
}

// exitCode is the status a shell would report: the code, or 128 plus the
// signal.
func (s exitState) exitCode() int {
	switch {
	case s.err != nil:
		return 1
	case s.signaled:
		return 128 + int(s.signal)
	default:
		return s.code
	}
}

func fromWaitStatus(ws syscall.WaitStatus) exitState {
	if ws.Signaled() {
		return exitState{signaled: true, signal: ws.Signal()}
	}
	return exitState{code: ws.ExitStatus()}
}

// vllmProcess is a running vLLM server: the one serving the model, or the
// guard model's.
type vllmProcess struct {
	name       string // for messages: "vLLM", "the guard model's vLLM"
	cmd        *exec.Cmd
	started    time.Time
	done       chan struct{} // closed once vLLM has been waited for
	state      exitState     // set before done is closed
	output     sync.WaitGroup
	finishOnce sync.Once
	logger     *slog.Logger
}

// startVLLM starts a vLLM in its own process group, its output going to
// stdout and stderr. With a reaper (the entry point is PID 1), the reaper
// waits for it, and for every other child of the process: processes
// orphaned by vLLM's workers are re-parented to PID 1, and PID 1 must reap
// them or they stay zombies for the life of the container.
func startVLLM(name string, argv, environ []string, stdout, stderr io.Writer, r *reaper, logger *slog.Logger) (*vllmProcess, error) {
	p := &vllmProcess{name: name, done: make(chan struct{}), logger: logger}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so that the workers vLLM forks can be killed
		// with it when it does not stop in time.
		Setpgid: true,
		// And never outlive the entry point.
		Pdeathsig: syscall.SIGKILL,
	}
	var closeAfterStart []io.Closer
	outFile, err := p.attach(stdout, &closeAfterStart)
	if err != nil {
		return nil, err
	}
	errFile, err := p.attach(stderr, &closeAfterStart)
	if err != nil {
		for _, c := range closeAfterStart {
			_ = c.Close()
		}
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outFile, errFile
	var status <-chan syscall.WaitStatus
	if r != nil {
		status, err = r.start(cmd)
	} else {
		err = cmd.Start()
	}
	for _, c := range closeAfterStart {
		_ = c.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, argv[0], err)
	}
	p.cmd = cmd
	p.started = time.Now()
	go p.wait(status)
	return p, nil
}

// attach returns the file the child writes to. A writer that is a file
// (the container's stdout) is handed over as it is, so that vLLM's output
// does not pass through the entry point at all; any other writer is fed
// from a pipe. exec.Cmd would make the same pipe, but closes it only in
// Wait, which a reaping PID 1 does not call.
func (p *vllmProcess) attach(w io.Writer, closeAfterStart *[]io.Closer) (*os.File, error) {
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("making a pipe for vLLM's output: %w", err)
	}
	*closeAfterStart = append(*closeAfterStart, pw)
	p.output.Add(1)
	go func() {
		defer p.output.Done()
		defer pr.Close()
		_, _ = io.Copy(w, pr)
	}()
	return pw, nil
}

// wait waits for the process: through the reaper's status when there is
// one, else with wait4 on its pid.
func (p *vllmProcess) wait(status <-chan syscall.WaitStatus) {
	defer close(p.done)
	if status != nil {
		p.state = fromWaitStatus(<-status)
		return
	}
	st, err := p.cmd.Process.Wait()
	if err != nil {
		p.state = exitState{err: err}
		return
	}
	p.state = fromWaitStatus(st.Sys().(syscall.WaitStatus))
}

// reaper is PID 1's single waiter: it reaps every child the process has,
// and hands the status of the ones it was asked about (the vLLMs) to their
// waiters. One waiter for all is needed once there are two vLLMs: two
// wait4(-1) loops would each take the other's child's status.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	sigs    chan os.Signal
	quit    chan struct{}
	done    chan struct{}
	logger  *slog.Logger
}

// startReaper starts reaping on SIGCHLD. Stop it with stop.
func startReaper(logger *slog.Logger) *reaper {
	r := &reaper{waiters: map[int]chan syscall.WaitStatus{}, sigs: make(chan os.Signal, 1),
		quit: make(chan struct{}), done: make(chan struct{}), logger: logger}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.loop()
	return r
}

func (r *reaper) loop() {
	defer close(r.done)
	defer signal.Stop(r.sigs)
	for {
		// SIGCHLDs coalesce: each wake-up reaps all that have exited.
		r.reapExited()
		select {
		case <-r.sigs:
		case <-r.quit:
			return
		}
	}
}

// start starts cmd and registers it, under the lock that reapExited takes
// before it looks a pid up: a child that exits at once is not mistaken for
// an orphan.
func (r *reaper) start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// reapExited reaps every child that has exited, without blocking.
func (r *reaper) reapExited() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil, pid <= 0: // ECHILD: no children; 0: none has exited
			return
		}
		r.mu.Lock()
		ch, ok := r.waiters[pid]
		delete(r.waiters, pid)
		r.mu.Unlock()
		if ok {
			ch <- ws
			continue
		}
		r.logger.Debug("reaped an orphaned process", "pid", pid, "status", fromWaitStatus(ws).String())
	}
}

// stop ends the reaping (tests; in the container it lasts as long as the
// process).
func (r *reaper) stop() {
	close(r.quit)
	<-r.done
}

// stop asks vLLM to stop (SIGTERM, which vLLM handles by shutting down its
// engine and workers) and kills its process group if it is still there
// after timeout. It reports whether vLLM had to be killed.
func (p *vllmProcess) stop(timeout time.Duration) bool {
	select {
	case <-p.done:
		return false
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.logger.Warn("signalling "+p.name, "err", err)
	}
	select {
	case <-p.done:
		return false
	case <-time.After(timeout):
	}
	p.logger.Warn(p.name+" did not stop in time: killing its process group", "timeout", timeout)
	p.killGroup()
	<-p.done
	return true
}

// killGroup kills what is left of vLLM's process group: workers that
// outlived it, or all of it.
func (p *vllmProcess) killGroup() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// finish cleans up after vLLM has exited: leftover workers (an engine
// core process that outlives its API server would keep its GPU memory),
// and the output still in the pipes (given a moment, since a surviving
// worker could hold a pipe open). Only the first call does anything: the
// process group must not be signalled again once its id may be reused.
func (p *vllmProcess) finish() {
	<-p.done
	p.finishOnce.Do(func() {
		p.killGroup()
		copied := make(chan struct{})
		go func() { p.output.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
		_ = p.cmd.Process.Release()
	})
}
