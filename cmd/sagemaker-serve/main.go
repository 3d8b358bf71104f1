// Command sagemaker-serve is PID 1 of the project's SageMaker container:
// the vLLM image the EKS target runs, plus this entry point. SageMaker
// starts the image as "docker run <image> serve"; sagemaker-serve then
//
//   - listens on 8080 (or SAGEMAKER_BIND_TO_PORT) at once, answering
//     GET /ping (200 only while vLLM's /health is) and POST /invocations
//     (an OpenAI chat body with "messages", or a completions body with
//     "prompt"; streamed back when it asks "stream": true);
//   - starts vLLM on 127.0.0.1 with a random port and key, its arguments from
//     the SM_VLLM_* variables, the weights from /opt/ml/model, offline;
//   - with GUARDRAIL_ENABLED=true, sends /invocations through the guardrail
//     gateway (cmd/guardrail/gateway: the same policy engine and blocked
//     responses as the EC2 and EKS targets);
//   - with GUARD_MODEL_DIR, first starts a second vLLM serving the guard
//     model (Qwen3Guard-Gen) on the same GPU, waits until it is healthy,
//     then starts the main vLLM, restarts the guard when it dies, and has
//     the gateway ask it about every prompt and answer (guard.go);
//   - forwards vLLM's output, exits with vLLM's status when vLLM dies (so
//     that SageMaker replaces the instance), and on SIGTERM drains open
//     requests and stops vLLM before SageMaker's SIGKILL 30 seconds later.
//
// See README.md for the environment and the image.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/gateway"
)

// Exit statuses of the entry point itself (vLLM's own are passed on).
const (
	exitFailure = 1
	exitConfig  = 2
)

// runOptions are the timings and hooks; main uses productionOptions.
type runOptions struct {
	// reapAll makes the entry point reap every child, as PID 1 must.
	reapAll bool
	// healthInterval is how often vLLM's /health is polled until it is up.
	healthInterval time.Duration
	// drainTimeout is how long open requests get after SIGTERM, and
	// stopTimeout how long vLLM then gets before it is killed. SageMaker
	// sends SIGKILL 30 seconds after SIGTERM (your-algorithms-inference-
	// code.md): together they stay below that.
	drainTimeout time.Duration
	stopTimeout  time.Duration
	// listening, if set, is told the address once the port is open.
	listening func(net.Addr)
	// guardStartTimeout bounds the wait for the guard model's vLLM to
	// answer /health before the main vLLM starts; guardBackoffMin and
	// guardBackoffMax bound the wait before it is restarted (guardChild).
	guardStartTimeout time.Duration
	guardBackoffMin   time.Duration
	guardBackoffMax   time.Duration
	// driverVersionFile is where the host's NVIDIA driver version is read
	// ("" skips the check), cudaCompatDir where the image would keep CUDA's
	// forward-compatibility libraries (checkDriver).
	driverVersionFile string
	cudaCompatDir     string
}

var productionOptions = runOptions{
	healthInterval:    time.Second,
	drainTimeout:      18 * time.Second,
	stopTimeout:       10 * time.Second,
	driverVersionFile: "/proc/driver/nvidia/version",
	cudaCompatDir:     "/usr/local/cuda/compat",
	// A 0.6B model loads in well under a minute from local disk; ten
	// minutes leave room for a slow volume without waiting forever.
	guardStartTimeout: 10 * time.Minute,
	guardBackoffMin:   2 * time.Second,
	guardBackoffMax:   time.Minute,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	o := productionOptions
	o.reapAll = os.Getpid() == 1
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr, o))
}

// run is the entry point: it returns the process's exit status. Cancelling
// ctx is SIGTERM.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer, o runOptions) int {
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "sagemaker-serve")
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "sagemaker-serve: %v\n", err)
		return code
	}

	c, err := loadConfig(args, environ)
	if err != nil {
		return fail(exitConfig, err)
	}
	if len(c.ignoredGuardVars) > 0 {
		logger.Warn("guard model variables set without "+envGuardModelDir+": there is no guard model, and they are ignored",
			"variables", c.ignoredGuardVars)
	}
	if c.guard != nil {
		if err := checkGuardDir(c.guard.modelDir); err != nil {
			return fail(exitConfig, err)
		}
	}
	if o.driverVersionFile != "" {
		// A driver too old for CUDA 12 would fail inside vLLM minutes later
		// with a CUDA error; say which setting fixes it, now.
		driver, err := checkDriver(o.driverVersionFile, o.cudaCompatDir)
		if err != nil {
			return fail(exitConfig, err)
		}
		logger.Info("NVIDIA driver", "version", driver)
	}
	var reap *reaper
	if o.reapAll {
		reap = startReaper(logger)
		defer reap.stop()
	}

	// The vLLMs' ports stay reserved until each is started (reservePort).
	var reserved []net.Listener
	defer func() {
		for _, ln := range reserved {
			_ = ln.Close() // those not released yet
		}
	}()
	vllmLn, vllmPort, err := reservePort(c.safePorts, c.port)
	if err != nil {
		return fail(exitFailure, err)
	}
	reserved = append(reserved, vllmLn)
	vllmKey, err := randomKey()
	if err != nil {
		return fail(exitFailure, err)
	}
	vllmURL := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(vllmPort))}
	health := &http.Client{Transport: loopbackTransport(pingTimeout)}

	var guard *guardChild
	var guardLn net.Listener
	var guardStep *gateway.GuardModel
	var guardURL *url.URL
	if c.guard != nil {
		var guardPort int
		guardLn, guardPort, err = reservePort(c.safePorts, c.port)
		if err != nil {
			return fail(exitFailure, fmt.Errorf("the guard model's port: %w", err))
		}
		reserved = append(reserved, guardLn)
		guardKey, err := randomKey()
		if err != nil {
			return fail(exitFailure, err)
		}
		guardURL = &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(guardPort))}
		guardStep = &gateway.GuardModel{
			Endpoint: guardURL.JoinPath("/v1").String(),
			Model:    guardServedModel,
			MaxChars: c.guard.maxChars,
			// The guard vLLM's key is the entry point's own, whatever the
			// policy's guardModel.apiKeyEnv names.
			APIKey: func(string) (string, error) { return guardKey, nil },
		}
		guard = &guardChild{
			argv: guardArgs(c.command, *c.guard, guardPort), env: guardChildEnv(environ, guardKey),
			stdout: stdout, stderr: stderr, reaper: reap, logger: logger, modelDir: c.guard.modelDir,
			health: guardHealth(health, guardURL), interval: o.healthInterval,
			backoffMin: o.guardBackoffMin, backoffMax: o.guardBackoffMax,
			quit: make(chan struct{}),
		}
	}

	transport := loopbackTransport(gateway.DefaultUpstreamHeaderTimeout)
	s := &server{
		vllm:        vllmURL,
		guard:       guardURL,
		servedModel: c.vllm.ServedModelName,
		maxBody:     gateway.DefaultMaxBodyBytes,
		health:      health,
		readyCh:     make(chan struct{}),
		logger:      logger,
	}
	if c.guardrail {
		h, key, err := guardrailHandler(c, vllmURL, vllmKey, guardStep, transport, stdout, logger)
		if err != nil {
			return fail(exitConfig, err)
		}
		s.invoke, s.clientKey = h, key
	} else {
		s.invoke = passthrough(vllmURL, vllmKey, transport)
		logger.Warn("the guardrail is off: /invocations goes to vLLM unchecked (set GUARDRAIL_ENABLED=true to apply a policy)")
	}

	// Listen before vLLM starts: SageMaker expects the port to take
	// connections within 250 ms and pings from soon after start-up.
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(c.port))
	if err != nil {
		return fail(exitFailure, fmt.Errorf("listening on port %d: %w", c.port, err))
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// No WriteTimeout: a stream lasts as long as the model writes.
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if o.listening != nil {
		o.listening(ln.Addr())
	}

	if guard != nil {
		// The guard first, healthy, then the main vLLM: see guard.go.
		_ = guardLn.Close()
		started := time.Now()
		logger.Info("starting the guard model's vLLM first; vLLM starts once it is healthy", "argv", guard.argv,
			"wait_up_to", o.guardStartTimeout.String())
		err := guard.start()
		if err == nil {
			err = guard.waitHealthy(ctx, o.guardStartTimeout)
		}
		if err != nil {
			s.stopping.Store(true)
			_ = srv.Close()
			guard.stop(o.stopTimeout)
			if ctx.Err() != nil {
				logger.Info("stopped while the guard model was starting; vLLM was not started")
				return 0
			}
			return fail(exitFailure, err)
		}
		logger.Info("the guard model's vLLM is ready", "after", time.Since(started).Round(time.Millisecond).String())
	}

	argv := append(append(append([]string(nil), c.command...), c.vllm.Args()...),
		"--host", "127.0.0.1", "--port", strconv.Itoa(vllmPort))
	started := time.Now()
	logger.Info("starting vLLM", "argv", argv, "listen", ln.Addr().String())
	_ = vllmLn.Close()
	child, err := startVLLM("vLLM", argv, childEnv(environ, vllmKey), stdout, stderr, reap, logger)
	if err != nil {
		_ = srv.Close()
		if guard != nil {
			guard.stop(o.stopTimeout)
		}
		return fail(exitFailure, err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watchReady(watchCtx, o.healthInterval, started)
	if guard != nil {
		guard.runSupervisor(s.readyCh)
	}

	select {
	case <-child.done:
		// vLLM is gone: so is this container, so that SageMaker replaces
		// it rather than route requests to a model that is not there. The
		// guard goes with it, not to outlive the entry point.
		s.stopping.Store(true)
		_ = srv.Close()
		if guard != nil {
			guard.stop(o.stopTimeout)
		}
		child.finish()
		code := child.state.exitCode()
		logger.Error("vLLM exited: stopping the container", "status", child.state.String())
		if code == 0 {
			code = exitFailure // nobody asked it to stop
		}
		return code
	case err := <-served:
		s.stopping.Store(true)
		stopAll(child, guard, o.stopTimeout)
		return fail(exitFailure, fmt.Errorf("serving: %w", err))
	case <-ctx.Done():
	}

	s.stopping.Store(true)
	logger.Info("stopping: draining open requests", "timeout", o.drainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		logger.Warn("requests still open after the drain timeout were cut", "err", err)
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("serving", "err", err)
	}
	killed, guardKilled := stopAll(child, guard, o.stopTimeout)
	logger.Info("vLLM stopped", "status", child.state.String(), "killed", killed)
	if guard != nil {
		logger.Info(guardName+" stopped", "killed", guardKilled)
	}
	if killed || guardKilled {
		return exitFailure
	}
	return 0
}

// stopAll stops vLLM and the guard's at once, each with the whole timeout:
// one after the other, they could overrun SageMaker's 30 seconds.
func stopAll(child *vllmProcess, guard *guardChild, timeout time.Duration) (killed, guardKilled bool) {
	var wg sync.WaitGroup
	if guard != nil {
		wg.Go(func() { guardKilled = guard.stop(timeout) })
	}
	killed = child.stop(timeout)
	child.finish()
	wg.Wait()
	return killed, guardKilled
}

// guardrailHandler verifies the policy file and builds the gateway in front
// of vLLM, with the guard model's step when the container runs one. The
// gateway wants a client key; SageMaker has already authenticated the
// caller with IAM, so the key is a random one that only the entry point
// knows and presents.
func guardrailHandler(c config, vllmURL *url.URL, vllmKey string, guardStep *gateway.GuardModel, transport http.RoundTripper, audit io.Writer, logger *slog.Logger) (http.Handler, string, error) {
	if c.policySHA256 != "" {
		if err := verifyPolicySHA256(c.policyPath, c.policySHA256); err != nil {
			return nil, "", err
		}
	}
	if c.policyDirSHA256 != "" {
		if err := verifyPolicyDirSHA256(c.policyPath, c.policyDirSHA256); err != nil {
			return nil, "", err
		}
	}
	clientKey, err := randomKey()
	if err != nil {
		return nil, "", err
	}
	gw, err := gateway.New(c.policyPath, gateway.Options{
		Upstream:       vllmURL,
		UpstreamAPIKey: vllmKey,
		APIKeys:        []string{clientKey},
		MaxBodyBytes:   gateway.DefaultMaxBodyBytes,
		Transport:      transport,
		// One JSON record per request, never the checked text, beside
		// vLLM's log in CloudWatch.
		Audit:      slog.New(slog.NewJSONHandler(audit, nil)),
		GuardModel: guardStep,
	})
	if err != nil {
		return nil, "", fmt.Errorf("guardrail: %w", err)
	}
	logger.Info("guardrail on", "policy", gw.PolicyName, "file", c.policyPath, "sha256_pinned", c.policySHA256 != "", "dir_sha256_pinned", c.policyDirSHA256 != "",
		"fail_mode", gw.FailMode, "stream_mode", gw.StreamMode, "scan_reasoning", gw.ScanReasoning,
		"strip_reasoning", gw.StripReasoning, "holdback_bytes", gw.OutputHoldback)
	if g := gw.GuardModel; g != nil {
		logger.Info("guard model step", "endpoint", g.Endpoint, "model", g.Model, "max_chars", g.MaxChars,
			"mapping", map[bool]string{true: "the policy's guardModel section", false: "default"}[g.FromPolicy],
			"input", g.Input, "output", g.Output, "timeout", g.Timeout.String(), "fail_mode", g.FailMode, "streaming", g.Streaming)
	} else if gw.PolicyGuardModel {
		logger.Warn("the policy has a guardModel section, but " + envGuardModelDir + " is not set: the model step is off " +
			"(this container runs the guard model only when " + envGuardModelDir + " names its weights)")
	}
	return gw.Handler, clientKey, nil
}
