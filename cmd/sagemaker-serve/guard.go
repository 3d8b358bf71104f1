package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The guard model: Qwen3Guard-Gen (0.6B) served by a second vLLM on the
// same GPU, which the gateway's model step (gateway.NewGuardModel, the code
// cmd/guardrail runs with -guard-endpoint) asks about every prompt and
// answer the policy's rules pass. The deployer ships its weights beside the
// main model's, at <weights prefix>/.guard-model/, and sets GUARD_MODEL_DIR.
//
// Order. The guard starts first, and the main vLLM only once the guard
// answers /health: vLLM sizes its KV cache from a memory profile of the
// whole device taken at start (vllm/v1/worker/gpu_worker.py: init_device
// refuses to start when the free memory is below gpu_memory_utilization x
// total, and determine_available_memory counts what is in use on the GPU,
// "assum[ing] that the other processes using the same GPU did not change
// their memory usage during the profiling"). Two engines loading and
// profiling at the same moment on one GPU see each other's allocations
// half made: one can refuse to start, or size its cache from the other's
// memory. The guard, loaded first, holds its share steadily while the main
// vLLM profiles. For the same reason a guard that dies later is restarted
// only once the main vLLM is up.

// guardServedModel is the guard vLLM's --served-model-name, the name the
// gateway asks for.
const guardServedModel = "qwen3guard"

// guardMaxNumSeqs bounds the guard's concurrent sequences: one request per
// check, a few at once, and a small bound keeps the activations vLLM
// profiles at start (and so the guard's share of the GPU) small.
const guardMaxNumSeqs = 8

// guardName names the guard's process in messages.
const guardName = "the guard model's vLLM"

// guardChildEnv is the guard vLLM's environment: the main vLLM's, on the first
// GPU the container sees only (the first of CUDA_VISIBLE_DEVICES when it is
// set), which is the GPU the sizing took the guard's share from.
func guardChildEnv(environ []string, apiKey string) []string {
	first := "0"
	if v, ok := env(environ).get("CUDA_VISIBLE_DEVICES"); ok && strings.TrimSpace(v) != "" {
		first, _, _ = strings.Cut(strings.TrimSpace(v), ",")
	}
	// The last value of a key wins (os/exec, Cmd.Env).
	return append(childEnv(environ, apiKey), "CUDA_VISIBLE_DEVICES="+first)
}

// guardArgs is the guard vLLM's command line: the same command as the main
// vLLM's (VLLM_COMMAND, default "vllm serve"), with its own arguments; none
// of the SM_VLLM_* flags, which are the main model's. The key is not among
// them: it travels in VLLM_API_KEY (childEnv), as the main vLLM's does.
//
// --enforce-eager: no CUDA graphs. vLLM captures them after it has sized
// its KV cache, in memory outside that profile; eager mode keeps the guard
// within its share of the GPU and shortens its start, at a cost in speed
// that a 0.6B model answering 64 tokens can afford. No request-logging
// flag: vLLM logs no requests by default since 0.10.1 (vLLM PR #21739,
// which replaced --disable-log-requests by --enable-log-requests;
// components/vllm/args.go), and the image runs 0.11.0.
func guardArgs(command []string, g guardConfig, port int) []string {
	argv := append([]string(nil), command...)
	return append(argv,
		g.modelDir,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--served-model-name", guardServedModel,
		"--max-model-len", strconv.Itoa(g.maxModelLen),
		"--gpu-memory-utilization", strconv.FormatFloat(g.gpuMemoryUtilization, 'f', -1, 64),
		"--dtype", g.dtype,
		"--enforce-eager",
		"--max-num-seqs", strconv.Itoa(guardMaxNumSeqs),
	)
}

// checkGuardDir makes sure the guard model's weights are where
// GUARD_MODEL_DIR says: SageMaker has copied the model data before the
// container starts, so a missing directory is a deployment error, better
// named now than by vLLM, offline, trying the path as a Hugging Face
// repository name.
func checkGuardDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s=%s: %w (the deployer ships the guard model's weights beside the main model's, under <weights prefix>/.guard-model/)", envGuardModelDir, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s=%s is not a directory", envGuardModelDir, dir)
	}
	return nil
}

// errGuardStopped: the guard is being stopped; no restart.
var errGuardStopped = errors.New("the guard model is stopping")

// guardChild runs and supervises the guard vLLM.
type guardChild struct {
	argv, env      []string
	stdout, stderr io.Writer
	reaper         *reaper
	logger         *slog.Logger
	modelDir       string

	// health is the guard's GET /health; interval how often it is asked
	// while the guard loads.
	health   func(context.Context) error
	interval time.Duration
	// backoffMin and backoffMax bound the wait before a restart: it
	// doubles from backoffMin with each restart that does not become
	// healthy, up to backoffMax, and is backoffMin again once one does.
	backoffMin, backoffMax time.Duration

	quit       chan struct{} // closed by stop
	supervised chan struct{} // closed when supervise returns; nil until it runs

	mu       sync.Mutex
	cur      *vllmProcess
	stopped  bool
	restarts int
}

// start starts the first guard vLLM.
func (g *guardChild) start() error {
	_, err := g.spawn()
	return err
}

// spawn starts a guard vLLM, unless stop has been called.
func (g *guardChild) spawn() (*vllmProcess, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil, errGuardStopped
	}
	p, err := startVLLM(guardName, g.argv, g.env, g.stdout, g.stderr, g.reaper, g.logger)
	if err != nil {
		return nil, err
	}
	g.cur = p
	return p, nil
}

func (g *guardChild) current() *vllmProcess {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur
}

// waitHealthy waits until the first guard vLLM answers /health with 200.
// It fails when the guard exits first, when timeout passes, or when ctx
// ends (SIGTERM): the caller then stops the container, since serving
// without the guard the deployer asked for would silently drop a check.
func (g *guardChild) waitHealthy(ctx context.Context, timeout time.Duration) error {
	p := g.current()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	for {
		if g.health(ctx) == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s (%s=%s) exited before it answered /health (%s): stopping the container rather than "+
				"serve without the guard model the deployer asked for; its log is above", guardName, envGuardModelDir, g.modelDir, p.state)
		case <-deadline.C:
			return fmt.Errorf("%s (%s=%s) did not answer /health with 200 within %s: stopping the container rather than "+
				"serve without the guard model the deployer asked for; its log is above", guardName, envGuardModelDir, g.modelDir, timeout)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", guardName, ctx.Err())
		case <-tick.C:
		}
	}
}

// supervise restarts the guard vLLM whenever it exits, after a capped
// backoff and only once gate is closed (the main vLLM is up: see the
// order above), until stop. The main vLLM is not touched: while the guard
// is down /ping answers 503 and the model step fails as the policy's
// guardModel.failMode says.
func (g *guardChild) supervise(gate <-chan struct{}) {
	defer close(g.supervised)
	delay := g.backoffMin
	p := g.current()
	healthy := true // the first one was waited for
	for {
		var tick <-chan time.Time
		var ticker *time.Ticker
		if !healthy {
			ticker = time.NewTicker(g.interval)
			tick = ticker.C
		}
	running:
		for {
			select {
			case <-p.done:
				break running
			case <-g.quit:
				if ticker != nil {
					ticker.Stop()
				}
				return
			case <-tick:
				if g.health(context.Background()) == nil {
					healthy, delay, tick = true, g.backoffMin, nil
					ticker.Stop()
					g.logger.Info(guardName+" is ready again", "after", time.Since(p.started).Round(time.Millisecond).String())
				}
			}
		}
		if ticker != nil {
			ticker.Stop()
		}
		p.finish()
		g.logger.Error(guardName+" exited: restarting it; /ping answers 503 until it is healthy again",
			"status", p.state.String(), "ran", time.Since(p.started).Round(time.Millisecond).String(), "restart_in", delay.String())
		for {
			if !g.sleep(delay) || !g.waitGate(gate) {
				return
			}
			delay = min(2*delay, g.backoffMax)
			np, err := g.spawn()
			if errors.Is(err, errGuardStopped) {
				return
			}
			if err != nil {
				g.logger.Error("restarting "+guardName, "err", err, "retry_in", delay.String())
				continue
			}
			g.mu.Lock()
			g.restarts++
			n := g.restarts
			g.mu.Unlock()
			g.logger.Info("restarted "+guardName, "restart", n, "argv", g.argv)
			p, healthy = np, false
			break
		}
	}
}

// sleep waits d, or until stop; it reports whether to go on.
func (g *guardChild) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.quit:
		return false
	}
}

// waitGate waits until restarts are allowed, or until stop.
func (g *guardChild) waitGate(gate <-chan struct{}) bool {
	select {
	case <-gate:
		return true
	default:
	}
	g.logger.Info("restarting " + guardName + " once the main vLLM is ready (the two must not profile the GPU's memory at once)")
	select {
	case <-gate:
		return true
	case <-g.quit:
		return false
	}
}

// stop ends the supervision and stops the guard vLLM that runs, if any;
// it reports whether it had to be killed. It is safe to call more than
// once and whether or not supervise runs.
func (g *guardChild) stop(timeout time.Duration) bool {
	g.mu.Lock()
	if !g.stopped {
		g.stopped = true
		close(g.quit)
	}
	supervised := g.supervised
	g.mu.Unlock()
	if supervised != nil {
		<-supervised
	}
	p := g.current()
	if p == nil {
		return false
	}
	killed := p.stop(timeout)
	p.finish()
	return killed
}

// runSupervisor starts supervise.
func (g *guardChild) runSupervisor(gate <-chan struct{}) {
	g.mu.Lock()
	g.supervised = make(chan struct{})
	g.mu.Unlock()
	go g.supervise(gate)
}

// guardHealth is a probe of the guard vLLM's /health.
func guardHealth(client *http.Client, base *url.URL) func(context.Context) error {
	return func(ctx context.Context) error { return probeHealth(ctx, client, base, guardName) }
}
