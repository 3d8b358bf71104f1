package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/cmd/guardrail/internal/fakevllm"
)

// TestAuditRecordsNoText checks the audit record of requests that
// touched sensitive values: one record per request with ids, route, model,
// outcome, policies and counts, and none of the values or texts.
func TestAuditRecordsNoText(t *testing.T) {
	up := &fakevllm.Server{Default: fakevllm.Reply{Reasoning: reasoningWithPhone, Content: answerWithPhone}, TokenRunes: 2}
	e := newEnv(t, up, nil, nil)

	req, err := http.NewRequest(http.MethodPost, e.url+routeChat, strings.NewReader(chatBody(false, "my number is 13700001234")))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, "req-42", resp.Header.Get("X-Request-Id"))

	res := readStream(t, e.post(t, routeChat, chatBody(true, "call 13700001234")))
	require.True(t, res.done)
	_ = e.post(t, routeChat, chatBody(false, "forbidden"))
	_ = e.do(t, http.MethodPost, routeChat, "sk-wrong", chatBody(false, "hi"))

	log := e.audit.String()
	for _, secret := range []string{"13700001234", "13812345678", "13900001111", "my number", "politely", "forbidden", clientKey, upstreamKey, "sk-wrong"} {
		assert.NotContains(t, log, secret)
	}
	recs := e.audit.records(t)
	require.Len(t, recs, 4, "one record per request")

	r := recs[0]
	assert.Equal(t, "req-42", r["request_id"])
	assert.Equal(t, routeChat, r["route"])
	assert.Equal(t, "deepseek-r1", r["model"])
	assert.Equal(t, "anonymized", r["outcome"])
	assert.Equal(t, "OUTPUT", r["source"])
	assert.Equal(t, []any{"sensitiveInformationPolicy/CN_MOBILE"}, r["policies"])
	assert.Equal(t, map[string]any{"INPUT_findings": 1.0, "OUTPUT_findings": 2.0, "ANONYMIZED": 3.0}, r["counts"])
	assert.Contains(t, r, "latency_ms")
	assert.Equal(t, false, r["stream"])

	assert.Equal(t, true, recs[1]["stream"])
	assert.Equal(t, "sync", recs[1]["stream_mode"])
	assert.Contains(t, recs[1], "ttfb_ms")
	assert.Equal(t, "anonymized", recs[1]["outcome"])

	assert.Equal(t, "blocked", recs[2]["outcome"])
	assert.Equal(t, "INPUT", recs[2]["source"])
	assert.Equal(t, []any{"wordPolicy/BANNED"}, recs[2]["policies"])

	assert.Equal(t, "unauthorized", recs[3]["outcome"])
	assert.Equal(t, 401.0, recs[3]["status"])
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, &fakevllm.Server{Default: fakevllm.Reply{Content: answerWithPhone}}, nil, nil)
	_ = readStream(t, e.post(t, routeChat, chatBody(true, "hi")))
	_ = decode(t, e.post(t, routeChat, chatBody(false, "forbidden")))

	resp := e.do(t, http.MethodGet, "/metrics", "", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(b)
	for _, want := range []string{
		`guardrail_requests_total{route="/v1/chat/completions",status="200"} 2`,
		`guardrail_interventions_total{action="ANONYMIZED",policy="sensitiveInformationPolicy",source="OUTPUT",type="CN_MOBILE"} 1`,
		`guardrail_interventions_total{action="BLOCKED",policy="wordPolicy",source="INPUT",type="BANNED"} 1`,
		`guardrail_stream_first_byte_seconds_count{route="/v1/chat/completions"} 1`,
		`guardrail_request_duration_seconds_count{route="/v1/chat/completions"} 1`,
		`guardrail_check_duration_seconds_count{source="INPUT"} 2`,
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "13900001111")
}
