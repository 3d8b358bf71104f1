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
//	starts     one line per start: the time (Unix nanoseconds) and the pid
//	ready      /health answers 200, and completions are served, once it
//	           exists (or FAKE_VLLM_READY=1); 503 before
//	exit       once it exists, the fake removes it and exits with the code
//	           it holds, or kills itself with SIGKILL if it holds "kill"
//	calls      one line per completion request received
//
// Started as the guard model (--served-model-name qwen3guard), the fake
// uses the same files in FAKE_VLLM_DIR/guard instead, is ready with
// FAKE_GUARD_READY=1 (not FAKE_VLLM_READY), and answers as Qwen3Guard-Gen
// does (fakeGuardVerdict), writing the messages it was asked about, one
// JSON array a line, to texts.
const (
	envFake          = "SAGEMAKER_SERVE_TEST_FAKE_VLLM"
	envFakeDir       = "FAKE_VLLM_DIR"
	envFakeReady     = "FAKE_VLLM_READY"
	envFakeIgnoreSIG = "FAKE_VLLM_IGNORE_SIGTERM"
	envFakeGuardRdy  = "FAKE_GUARD_READY"
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
	Pid  int               `json:"pid"`
}

// fakeGuardVerdict answers as Qwen3Guard-Gen does (QwenLM/Qwen3Guard's
// README): about a prompt (one message), Unsafe/Jailbreak when it has
// "jailbreak-test"; about an answer (the prompt and the answer), Unsafe/
// Violent when the answer has "violent-test"; Safe otherwise.
func fakeGuardVerdict(texts []string) string {
	if len(texts) >= 2 {
		if strings.Contains(texts[len(texts)-1], "violent-test") {
			return "Safety: Unsafe\nCategories: Violent\nRefusal: No"
		}
		return "Safety: Safe\nCategories: None\nRefusal: No"
	}
	if len(texts) == 1 && strings.Contains(texts[0], "jailbreak-test") {
		return "Safety: Unsafe\nCategories: Jailbreak"
	}
	return "Safety: Safe\nCategories: None"
}

// fakeEnvSeen are the variables argv.json reports.
var fakeEnvSeen = []string{"VLLM_API_KEY", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
	"VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", envVLLMCommand, "SM_VLLM_DTYPE"}

func fakeVLLMMain(args []string) int {
	dir := os.Getenv(envFakeDir)
	host, port, served := "", "", ""
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "--host":
			host = args[i+1]
		case "--port":
			port = args[i+1]
		case "--served-model-name":
			served = args[i+1]
		}
	}
	isGuard := served == guardServedModel
	readyEnv, name := envFakeReady, "fake vllm"
	if isGuard {
		dir, readyEnv, name = filepath.Join(dir, "guard"), envFakeGuardRdy, "fake guard"
		if err := os.MkdirAll(dir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, name+":", err)
			return 70
		}
	}
	// SIGTERM is caught before the fake says it has started (argv.json):
	// a test that signals it as soon as it sees the file must find it
	// listening for the signal, as vLLM's own handlers are.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	seen := fakeArgv{Args: args, Env: map[string]string{}, Pid: os.Getpid()}
	for _, k := range fakeEnvSeen {
		if v, ok := os.LookupEnv(k); ok {
			seen.Env[k] = v
		}
	}
	b, _ := json.Marshal(seen)
	if err := os.WriteFile(filepath.Join(dir, "argv.json"), b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 70
	}
	appendLine(filepath.Join(dir, "starts"), fmt.Sprintf("%d %d", time.Now().UnixNano(), os.Getpid()))
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, name+": want `serve` first, got", args)
		return 64
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 71
	}
	fmt.Fprintln(os.Stdout, name+": stdout line, serving on", ln.Addr())
	fmt.Fprintln(os.Stderr, name+": stderr line")

	up := &gatewaytest.FakeVLLM{APIKey: os.Getenv("VLLM_API_KEY"), Reply: gatewaytest.Echo(gatewaytest.ReasoningContent, "Let me think.")}
	if isGuard {
		var textsMu sync.Mutex
		up.Reply = func(r gatewaytest.Request) gatewaytest.Reply {
			if r.Model != guardServedModel {
				return gatewaytest.Reply{Content: "fake guard: asked for model " + r.Model}
			}
			b, _ := json.Marshal(r.Texts)
			textsMu.Lock()
			appendLine(filepath.Join(dir, "texts"), string(b))
			textsMu.Unlock()
			return gatewaytest.Reply{Content: fakeGuardVerdict(r.Texts)}
		}
	}
	var callsMu sync.Mutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Loading, vLLM answers nothing: neither /health nor completions.
		if _, err := os.Stat(filepath.Join(dir, "ready")); err != nil && os.Getenv(readyEnv) != "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusOK)
			return
		}
		if strings.HasSuffix(r.URL.Path, "completions") {
			callsMu.Lock()
			appendLine(filepath.Join(dir, "calls"), r.URL.Path)
			callsMu.Unlock()
		}
		up.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-term:
			fmt.Fprintln(os.Stdout, name+": got SIGTERM")
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
			// Consumed, so that a restarted guard does not exit at once.
			_ = os.Remove(filepath.Join(dir, "exit"))
			what := strings.TrimSpace(string(b))
			if what == "kill" {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
			code, _ := strconv.Atoi(what)
			fmt.Fprintln(os.Stdout, name+": exiting with", code)
			return code
		}
	}
}

// appendLine appends one line to a file (created if need be).
func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	_, _ = fmt.Fprintln(f, line)
	_ = f.Close()
}
