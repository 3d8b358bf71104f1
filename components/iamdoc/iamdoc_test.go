package iamdoc

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAssumeRole(t *testing.T) {
	tests := []struct {
		name       string
		principals []string
		want       string
	}{
		{
			name:       "one principal is a string",
			principals: []string{"ec2.amazonaws.com"},
			want: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
				`"Principal":{"Service":"ec2.amazonaws.com"},"Action":["sts:AssumeRole"]}]}`,
		},
		{
			name:       "two principals are a list",
			principals: []string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"},
			want: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
				`"Principal":{"Service":["ec2.amazonaws.com","ec2.amazonaws.com.cn"]},"Action":["sts:AssumeRole"]}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AssumeRole(tc.principals).JSON()
			assert.Equal(t, tc.want, got)
			assert.True(t, json.Valid([]byte(got)))
		})
	}
}

// The decoded shape of Principal.Service is what IAM reads.
func TestAssumeRoleServiceShape(t *testing.T) {
	decode := func(t *testing.T, doc Document) any {
		t.Helper()
		var v struct {
			Statement []struct {
				Principal struct {
					Service any
				}
			}
		}
		require.NoError(t, json.Unmarshal([]byte(doc.JSON()), &v))
		require.Len(t, v.Statement, 1)
		return v.Statement[0].Principal.Service
	}
	assert.Equal(t, "ec2.amazonaws.com", decode(t, AssumeRole([]string{"ec2.amazonaws.com"})))
	assert.Equal(t, []any{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"},
		decode(t, AssumeRole([]string{"ec2.amazonaws.com", "ec2.amazonaws.com.cn"})))
}

func TestAllowWithCondition(t *testing.T) {
	st := Allow("ReadWeights", []string{"s3:GetObject"}, []string{"arn:aws-cn:s3:::weights/models/*"})
	st.Condition = map[string]map[string]any{
		"Bool": {"aws:SecureTransport": "true"},
	}
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"ReadWeights","Effect":"Allow",` +
		`"Action":["s3:GetObject"],"Resource":["arn:aws-cn:s3:::weights/models/*"],` +
		`"Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`
	assert.Equal(t, want, New(st).JSON())
}

func TestStatementKeys(t *testing.T) {
	tests := []struct {
		name string
		st   Statement
		want string
	}{
		{
			name: "nil resource omits the key",
			st:   Allow("", []string{"ecr:GetAuthorizationToken"}, nil),
			want: `{"Effect":"Allow","Action":["ecr:GetAuthorizationToken"]}`,
		},
		{
			name: "empty resource omits the key",
			st:   Allow("", []string{"ecr:GetAuthorizationToken"}, []string{}),
			want: `{"Effect":"Allow","Action":["ecr:GetAuthorizationToken"]}`,
		},
		{
			name: "one resource is still a list",
			st:   Allow("Sid1", []string{"kms:Decrypt", "kms:GenerateDataKey"}, []string{"*"}),
			want: `{"Sid":"Sid1","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":["*"]}`,
		},
		{
			name: "deny with principal",
			st: Statement{Effect: "Deny", Principal: map[string]any{"AWS": "*"}, Action: []string{"s3:*"},
				Resource:  []string{"arn:aws-cn:s3:::b", "arn:aws-cn:s3:::b/*"},
				Condition: map[string]map[string]any{"Bool": {"aws:SecureTransport": "false"}}},
			want: `{"Effect":"Deny","Principal":{"AWS":"*"},"Action":["s3:*"],` +
				`"Resource":["arn:aws-cn:s3:::b","arn:aws-cn:s3:::b/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.st)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(b))
		})
	}
}

func TestNew(t *testing.T) {
	doc := New(Allow("A", []string{"a:b"}, []string{"*"}), Allow("B", []string{"c:d"}, []string{"*"}))
	assert.Equal(t, "2012-10-17", doc.Version)
	require.Len(t, doc.Statement, 2)
	assert.Equal(t, "A", doc.Statement[0].Sid)
	assert.Equal(t, "B", doc.Statement[1].Sid)
}

func TestJSONPanicsOnUnmarshallableCondition(t *testing.T) {
	st := Allow("X", []string{"a:b"}, []string{"*"})
	st.Condition = map[string]map[string]any{"Bool": {"k": make(chan int)}}
	assert.PanicsWithValue(t, "iamdoc: marshal policy: json: unsupported type: chan int", func() {
		_ = New(st).JSON()
	})
}
