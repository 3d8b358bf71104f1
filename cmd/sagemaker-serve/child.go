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

// pickPort finds a free loopback port for vLLM: any the kernel gives, or
// one in SAGEMAKER_SAFE_PORT_RANGE when SageMaker sets it. The port is
// closed again before vLLM binds it; another process could take it in
// between, in which case vLLM fails to start and so does the container,
// which SageMaker then replaces.
func pickPort(r portRange, avoid int) (int, error) {
	try := func(p int) (int, bool) {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return 0, false
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		return port, port != avoid
	}
	if r == (portRange{}) {
		for range 10 {
			if p, ok := try(0); ok {
				return p, nil
			}
		}
		return 0, errors.New("no free loopback port for vLLM")
	}
	n := r.hi - r.lo + 1
	start := rand.IntN(n)
	for i := range n {
		p := r.lo + (start+i)%n
		if p == avoid {
			continue
		}
		if got, ok := try(p); ok {
			return got, nil
		}
	}
	return 0, fmt.Errorf("no free port for vLLM in %s %d-%d", envSafePortRange, r.lo, r.hi)
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

// vllmProcess is the running vLLM server.
type vllmProcess struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed once vLLM has been waited for
	state  exitState     // set before done is closed
	output sync.WaitGroup
	logger *slog.Logger
}

// startVLLM starts vLLM in its own process group, its output going to
// stdout and stderr. With reapAll (the entry point is PID 1) it waits for
// every child of the process, not only vLLM: processes orphaned by vLLM's
// workers are re-parented to PID 1, and PID 1 must reap them or they stay
// zombies for the life of the container.
func startVLLM(argv, environ []string, stdout, stderr io.Writer, reapAll bool, logger *slog.Logger) (*vllmProcess, error) {
	p := &vllmProcess{done: make(chan struct{}), logger: logger}
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
	err = cmd.Start()
	for _, c := range closeAfterStart {
		_ = c.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("starting vLLM (%s): %w", argv[0], err)
	}
	p.cmd = cmd
	go p.wait(reapAll)
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

func (p *vllmProcess) wait(reapAll bool) {
	defer close(p.done)
	pid := p.cmd.Process.Pid
	if !reapAll {
		st, err := p.cmd.Process.Wait()
		if err != nil {
			p.state = exitState{err: err}
			return
		}
		p.state = fromWaitStatus(st.Sys().(syscall.WaitStatus))
		return
	}
	ws, err := reapUntil(pid, p.logger)
	if err != nil {
		p.state = exitState{err: err}
		return
	}
	p.state = fromWaitStatus(ws)
}

// reapUntil waits for any child until pid exits, reaping the others as
// they come, and returns pid's status.
func reapUntil(pid int, logger *slog.Logger) (syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, fmt.Errorf("waiting for vLLM: %w", err)
		case got == pid:
			return ws, nil
		default:
			logger.Debug("reaped an orphaned process", "pid", got, "status", fromWaitStatus(ws).String())
		}
	}
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
		p.logger.Warn("signalling vLLM", "err", err)
	}
	select {
	case <-p.done:
		return false
	case <-time.After(timeout):
	}
	p.logger.Warn("vLLM did not stop in time: killing its process group", "timeout", timeout)
	p.killGroup()
	<-p.done
	return true
}

// killGroup kills what is left of vLLM's process group: workers that
// outlived it, or all of it.
func (p *vllmProcess) killGroup() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// finish cleans up after vLLM has exited: leftover workers, and the output
// still in the pipes (given a moment, since a surviving worker could hold
// a pipe open).
func (p *vllmProcess) finish() {
	<-p.done
	p.killGroup()
	copied := make(chan struct{})
	go func() { p.output.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	_ = p.cmd.Process.Release()
}
