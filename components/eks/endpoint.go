package eks

import (
	"errors"
	"fmt"
	"net/netip"
)

// Endpoint decides who reaches the Kubernetes API. The private endpoint is
// always on (the nodes use it). pulumi-eks and the program's Kubernetes
// provider talk to the API from the machine running `pulumi up`, outside
// the VPC, in the same update that creates the cluster (pulumi-eks v2.8.1
// nodejs/eks/cluster.ts polls /healthz of the public endpoint before it
// hands out the kubeconfig), so the public endpoint is on, limited to
// PublicAccessCIDRs, unless PrivateOnly says Pulumi runs inside the VPC.
type Endpoint struct {
	PublicAccessCIDRs []string
	PrivateOnly       bool
}

// MinPublicPrefixBits is the widest network the public endpoint accepts:
// a /0 (or anything close) is the whole internet.
const MinPublicPrefixBits = 8

// Validate checks the endpoint settings.
func (e Endpoint) Validate() error {
	if e.PrivateOnly {
		if len(e.PublicAccessCIDRs) > 0 {
			return errors.New("a private-only API endpoint takes no public access CIDRs")
		}
		return nil
	}
	if len(e.PublicAccessCIDRs) == 0 {
		return errors.New("the public API endpoint needs the CIDRs that may reach it (or a private-only endpoint)")
	}
	for _, c := range e.PublicAccessCIDRs {
		if err := CheckPublicAccessCIDR(c); err != nil {
			return err
		}
	}
	return nil
}

// CheckPublicAccessCIDR refuses what cannot or must not be an allowed source
// of the public endpoint: not an IPv4 CIDR, wider than /8 (0.0.0.0/0
// opens the API to everyone), or a private, loopback or link-local range,
// which never appears as the source address of a connection to a public
// endpoint (from inside the VPC, the private endpoint is used).
func CheckPublicAccessCIDR(cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil || !p.Addr().Is4():
		return fmt.Errorf("%q is not an IPv4 CIDR such as 203.0.113.10/32", cidr)
	case p.Bits() < MinPublicPrefixBits:
		return fmt.Errorf("%q opens the Kubernetes API to (nearly) the whole internet", cidr)
	case p.Addr().IsPrivate() || p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() || p.Addr().IsUnspecified():
		return fmt.Errorf("%q is not a public address range: the public endpoint sees your public egress address", cidr)
	}
	return nil
}

// documentationRanges are the IPv4 blocks reserved for documentation
// (RFC 5737): never routed, so an endpoint open only to them is reachable
// by nobody. The shipped EKS stack holds one as a placeholder.
var documentationRanges = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
}

// IsDocumentationRange reports whether a CIDR lies in an RFC 5737 range.
func IsDocumentationRange(cidr string) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return false
	}
	for _, d := range documentationRanges {
		if d.Bits() <= p.Bits() && d.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
