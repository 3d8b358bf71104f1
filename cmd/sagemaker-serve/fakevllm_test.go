package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/gateway/gatewaytest"
)

// The tests run the entry point in-process and let it start vLLM as it
// would in the container, except that VLLM_COMMAND points at this test
// binary, which TestMain turns into a fake vLLM: the gateway's fake
// (gatewaytest.FakeVLLM, vLLM's answers and event streams) behind a small
// process shell that behaves like `vllm serve` where the entry point cares:
// it takes --host/--port and VLLM_API_KEY, writes to stdout and stderr,
// answers /health only once "ready", stops on SIGTERM, and exits when told.
//
// The fake is steered and observed through files in FAKE_VLLM_DIR:
//
//	argv.json  written at start: the arguments and the environment it got
//	ready      /health answers 200 once it exists (or FAKE_VLLM_READY=1)
//	exit       once it exists, the fake exits with the code it holds, or
//	           kills itself with SIGKILL if it holds "kill"
//	calls      one line per completion request received
const (
	envFake          = "SAGEMAKER_SERVE_TEST_FAKE_VLLM"
	envFakeDir       = "FAKE_VLLM_DIR"
	envFakeReady     = "FAKE_VLLM_READY"
	envFakeIgnoreSIG = "FAKE_VLLM_IGNORE_SIGTERM"
)

func TestMain(m *testing.M) {
	if os.Getenv(envFake) == "1" {
		os.Exit(fakeVLLMMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeArgv is what argv.json holds.
type fakeArgv struct {
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"`
}

// fakeEnvSeen are the variables argv.json reports.
var fakeEnvSeen = []string{"VLLM_API_KEY", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
	"VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", envVLLMCommand, "SM_VLLM_DTYPE"}

func fakeVLLMMain(args []string) int {
	dir := os.Getenv(envFakeDir)
	seen := fakeArgv{Args: args, Env: map[string]string{}}
	for _, k := range fakeEnvSeen {
		if v, ok := os.LookupEnv(k); ok {
			seen.Env[k] = v
		}
	}
	b, _ := json.Marshal(seen)
	if err := os.WriteFile(filepath.Join(dir, "argv.json"), b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "fake vllm:", err)
		return 70
	}
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "fake vllm: want `serve` first, got", args)
		return 64
	}
	host, port := "", ""
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "--host":
			host = args[i+1]
		case "--port":
			port = args[i+1]
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake vllm:", err)
		return 71
	}
	fmt.Fprintln(os.Stdout, "fake vllm: stdout line, serving on", ln.Addr())
	fmt.Fprintln(os.Stderr, "fake vllm: stderr line")

	up := &gatewaytest.FakeVLLM{APIKey: os.Getenv("VLLM_API_KEY"), Reply: gatewaytest.Echo(gatewaytest.ReasoningContent, "Let me think.")}
	var callsMu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if _, err := os.Stat(filepath.Join(dir, "ready")); err != nil && os.Getenv(envFakeReady) != "1" {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
			return
		}
		if strings.HasSuffix(r.URL.Path, "completions") {
			callsMu.Lock()
			f, err := os.OpenFile(filepath.Join(dir, "calls"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err == nil {
				_, _ = fmt.Fprintln(f, r.URL.Path)
				_ = f.Close()
			}
			callsMu.Unlock()
		}
		up.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-term:
			fmt.Fprintln(os.Stdout, "fake vllm: got SIGTERM")
			if os.Getenv(envFakeIgnoreSIG) == "1" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			return 0
		case <-tick.C:
			b, err := os.ReadFile(filepath.Join(dir, "exit"))
			if err != nil {
				continue
			}
			what := strings.TrimSpace(string(b))
			if what == "kill" {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			code, _ := strconv.Atoi(what)
			fmt.Fprintln(os.Stdout, "fake vllm: exiting with", code)
			return code
		}
	}
}
