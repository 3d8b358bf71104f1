// Command guardrail is the guardrail gateway for DeepSeek-R1 on vLLM: an
// OpenAI-compatible reverse proxy that checks prompts before the model
// sees them and answers (reasoning included) before the client sees them,
// with the policy in a YAML file. It stands in for Amazon Bedrock
// Guardrails, which the AWS China regions do not have.
//
//	guardrail -listen :8080 -upstream http://10.0.1.5:8000 -policy policy.yaml
//
// Client API keys come from GUARDRAIL_API_KEYS (comma separated) or
// -api-keys-file (one per line); the key vLLM expects from
// GUARDRAIL_UPSTREAM_API_KEY or -upstream-api-key-file. The audit log (one
// JSON record per request, never the checked text) goes to stdout or
// -audit-log; operational logs go to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/gateway"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/detect"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guard"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/guardmodel"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/policy"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "guardrail:", err)
		os.Exit(1)
	}
}

// config is what the flags and the environment say.
type config struct {
	listen          string
	upstream        string
	policyPath      string
	upstreamKeyFile string
	apiKeysFile     string
	auditLog        string
	maxBodyBytes    int64
	headerTimeout   time.Duration
	shutdownTimeout time.Duration
	guardEndpoint   string
	guardModel      string
	guardKeyFile    string
	guardMaxChars   int
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("guardrail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", ":8080", "address to listen on")
	fs.StringVar(&c.upstream, "upstream", "", "vLLM base URL, e.g. http://10.0.1.5:8000 (required)")
	fs.StringVar(&c.policyPath, "policy", "", "policy file (required)")
	fs.StringVar(&c.upstreamKeyFile, "upstream-api-key-file", "", "file holding vLLM's API key (default: $GUARDRAIL_UPSTREAM_API_KEY)")
	fs.StringVar(&c.apiKeysFile, "api-keys-file", "", "file of client API keys, one per line (default: $GUARDRAIL_API_KEYS, comma separated)")
	fs.StringVar(&c.auditLog, "audit-log", "-", "audit log file, appended to; - for stdout")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", proxy.DefaultMaxBodyBytes, "largest request body accepted")
	fs.DurationVar(&c.headerTimeout, "upstream-header-timeout", proxy.DefaultUpstreamHeaderWait, "longest wait for vLLM's response headers (a non-streamed answer only has them when it is complete)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long open requests and streams may take to finish")
	fs.StringVar(&c.guardEndpoint, "guard-endpoint", "", "guard model's OpenAI-compatible base URL, e.g. http://127.0.0.1:8002/v1 (overrides the policy's guardModel.endpoint; turns the model step on with the default mapping when the policy has no guardModel section)")
	fs.StringVar(&c.guardModel, "guard-model", "", "guard model name as vLLM serves it (overrides guardModel.model; default "+gateway.DefaultGuardModel+")")
	fs.StringVar(&c.guardKeyFile, "guard-api-key-file", "", "file holding the guard model's API key (default: the variable named by guardModel.apiKeyEnv, else $GUARDRAIL_GUARD_API_KEY)")
	fs.IntVar(&c.guardMaxChars, "guard-max-chars", 0, fmt.Sprintf("runes per message sent to the guard model, %d..%d, so that a prompt and an answer fit its --max-model-len (overrides guardModel.maxChars; 0: the policy's)", gateway.MinGuardMaxChars, gateway.MaxGuardMaxChars))
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.upstream == "" {
		return c, errors.New("-upstream is required")
	}
	if c.policyPath == "" {
		return c, errors.New("-policy is required")
	}
	if c.guardMaxChars != 0 && (c.guardMaxChars < gateway.MinGuardMaxChars || c.guardMaxChars > gateway.MaxGuardMaxChars) {
		return c, fmt.Errorf("-guard-max-chars %d: want %d..%d, or 0 for the policy's guardModel.maxChars", c.guardMaxChars, gateway.MinGuardMaxChars, gateway.MaxGuardMaxChars)
	}
	return c, nil
}

// keys reads the client keys and the upstream key. A file flag wins over
// the environment variable, so that a key file mounted from a secret is not
// shadowed by a stale variable.
func keys(c config, getenv func(string) string) (clients []string, upstream string, err error) {
	if c.apiKeysFile != "" {
		if clients, err = proxy.ReadKeyFile(c.apiKeysFile); err != nil {
			return nil, "", fmt.Errorf("client API keys: %w", err)
		}
	} else {
		clients = proxy.ParseKeys(getenv("GUARDRAIL_API_KEYS"))
	}
	if len(clients) == 0 {
		return nil, "", errors.New("no client API keys: set GUARDRAIL_API_KEYS or -api-keys-file")
	}
	if c.upstreamKeyFile != "" {
		if upstream, err = proxy.ReadSecretFile(c.upstreamKeyFile); err != nil {
			return nil, "", fmt.Errorf("upstream API key: %w", err)
		}
	} else {
		upstream = getenv("GUARDRAIL_UPSTREAM_API_KEY")
	}
	return clients, upstream, nil
}

// classifier builds the model step from the policy's guardModel section
// and the flags, or returns nil when there is none. The section, the
// default mapping and the client are gateway.NewGuardModel's, which the
// SageMaker entry point uses too; the key is looked up here, the binary's
// way: -guard-api-key-file, else the variable guardModel.apiKeyEnv names,
// else GUARDRAIL_GUARD_API_KEY.
func classifier(c config, p *policy.Policy, getenv func(string) string) (*guardmodel.Classifier, *policy.GuardModel, error) {
	return gateway.NewGuardModel(p, gateway.GuardModel{
		Endpoint: c.guardEndpoint,
		Model:    c.guardModel,
		MaxChars: c.guardMaxChars,
		APIKey: func(apiKeyEnv string) (string, error) {
			switch {
			case c.guardKeyFile != "":
				return proxy.ReadSecretFile(c.guardKeyFile)
			case apiKeyEnv != "":
				return getenv(apiKeyEnv), nil
			default:
				return getenv("GUARDRAIL_GUARD_API_KEY"), nil
			}
		},
	})
}

// run starts the gateway and serves until ctx ends, then shuts down
// gracefully. ready, if not nil, receives the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	upstreamURL, err := url.Parse(c.upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	p, err := policy.Load(c.policyPath)
	if err != nil {
		return err
	}
	engine, err := detect.New(p)
	if err != nil {
		return fmt.Errorf("building the policy engine: %w", err)
	}
	guardClassifier, gm, err := classifier(c, p, getenv)
	if err != nil {
		return err
	}
	clients, upstreamKey, err := keys(c, getenv)
	if err != nil {
		return err
	}

	auditOut := stdout
	if c.auditLog != "-" {
		f, err := os.OpenFile(c.auditLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("opening the audit log: %w", err)
		}
		defer f.Close()
		auditOut = f
	}
	audit := slog.New(slog.NewJSONHandler(auditOut, nil))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	opts := gateway.ProxyOptions(p)
	opts.Upstream = upstreamURL
	opts.UpstreamAPIKey = upstreamKey
	opts.APIKeys = clients
	opts.MaxBodyBytes = c.maxBodyBytes
	opts.UpstreamHeaderTimeout = c.headerTimeout
	gateway.SetGuardModel(&opts, guardClassifier, gm)
	handler, err := proxy.New(engine, opts, reg, audit)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are at most a few MiB; a client that takes a minute to
		// send one is holding a connection hostage. No WriteTimeout:
		// streams last as long as the model writes.
		ReadTimeout:    time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("guardrail listening", "addr", ln.Addr().String(), "upstream", upstreamURL.Redacted(),
		"policy", p.Name, "fail_mode", opts.FailMode, "stream_mode", opts.StreamMode,
		"scan_reasoning", !opts.SkipReasoningScan, "strip_reasoning", opts.StripReasoning,
		"holdback_bytes", engine.Holdback(guard.Output), "client_keys", len(clients))
	if gm != nil {
		logger.Info("guard model step", "endpoint", gm.Endpoint, "model", gm.Model, "input", gm.Input, "output", gm.Output,
			"timeout", gm.Timeout, "max_chars", gm.MaxChars, "fail_mode", gm.FailMode, "streaming", gm.Streaming, "controversial", gm.Controversial)
	}
	if ready != nil {
		ready(ln.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", c.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Streams still open after the timeout are cut.
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	logger.Info("stopped")
	return nil
}
