package eks

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEndpointValidate(t *testing.T) {
	cases := []struct {
		name    string
		e       Endpoint
		wantErr string
	}{
		{"public for one address", Endpoint{PublicAccessCIDRs: []string{"100.64.7.9/32"}}, ""},
		{"private only", Endpoint{PrivateOnly: true}, ""},
		{"nothing", Endpoint{}, "needs the CIDRs"},
		{"both", Endpoint{PrivateOnly: true, PublicAccessCIDRs: []string{"100.64.7.9/32"}}, "takes no public"},
		{"everyone", Endpoint{PublicAccessCIDRs: []string{"0.0.0.0/0"}}, "whole internet"},
		{"a /7", Endpoint{PublicAccessCIDRs: []string{"2.0.0.0/7"}}, "whole internet"},
		{"private range", Endpoint{PublicAccessCIDRs: []string{"192.168.1.0/24"}}, "not a public address range"},
		{"loopback", Endpoint{PublicAccessCIDRs: []string{"127.0.0.1/32"}}, "not a public address range"},
		{"IPv6", Endpoint{PublicAccessCIDRs: []string{"2001:db8::/32"}}, "IPv4"},
		{"garbage", Endpoint{PublicAccessCIDRs: []string{"office"}}, "IPv4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.e.Validate()
			if c.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, c.wantErr)
		})
	}
}

func TestIsDocumentationRange(t *testing.T) {
	for cidr, want := range map[string]bool{
		"203.0.113.10/32": true, "198.51.100.0/24": true, "192.0.2.7/32": true,
		"203.0.112.0/23": false, // wider than the documentation block
		"100.64.7.9/32":  false, "8.8.8.8/32": false, "nonsense": false,
	} {
		assert.Equal(t, want, IsDocumentationRange(cidr), cidr)
	}
}
