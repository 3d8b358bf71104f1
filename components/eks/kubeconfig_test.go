package eks

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKubeconfig(t *testing.T) {
	cases := []struct {
		name     string
		deployer Deployer
		region   string
		wantArgs []string
		wantEnv  []map[string]string
	}{
		{"China profile", Deployer{Profile: "china"}, "cn-northwest-1",
			[]string{"eks", "get-token", "--cluster-name", "c", "--region", "cn-northwest-1", "--output", "json"},
			[]map[string]string{{"name": "AWS_PROFILE", "value": "china"}}},
		{"assumed role", Deployer{Profile: "bj", RoleARN: "arn:aws-cn:iam::123456789012:role/deploy"}, "cn-north-1",
			[]string{"eks", "get-token", "--cluster-name", "c", "--region", "cn-north-1", "--output", "json",
				"--role-arn", "arn:aws-cn:iam::123456789012:role/deploy"},
			[]map[string]string{{"name": "AWS_PROFILE", "value": "bj"}}},
		{"default credential chain", Deployer{}, "us-east-1",
			[]string{"eks", "get-token", "--cluster-name", "c", "--region", "us-east-1", "--output", "json"},
			[]map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := Kubeconfig(KubeconfigArgs{ClusterName: "c", Endpoint: "https://x.example", CertificateAuthorityData: "Q0E=",
				Region: c.region, Deployer: c.deployer})
			require.NoError(t, err)
			var doc struct {
				CurrentContext string `json:"current-context"`
				Clusters       []struct {
					Cluster map[string]string `json:"cluster"`
				} `json:"clusters"`
				Users []struct {
					User struct {
						Exec struct {
							Command string              `json:"command"`
							Args    []string            `json:"args"`
							Env     []map[string]string `json:"env"`
						} `json:"exec"`
					} `json:"user"`
				} `json:"users"`
			}
			require.NoError(t, json.Unmarshal([]byte(raw), &doc))
			assert.Equal(t, "eks", doc.CurrentContext)
			assert.Equal(t, map[string]string{"server": "https://x.example", "certificate-authority-data": "Q0E="}, doc.Clusters[0].Cluster)
			assert.Equal(t, "aws", doc.Users[0].User.Exec.Command)
			assert.Equal(t, c.wantArgs, doc.Users[0].User.Exec.Args)
			assert.Equal(t, c.wantEnv, doc.Users[0].User.Exec.Env)
		})
	}
	_, err := Kubeconfig(KubeconfigArgs{ClusterName: "c", Endpoint: "https://x.example"})
	assert.ErrorContains(t, err, "region")
}
