package plan

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// RunStandins runs any program under the plan's stand-ins for a region and
// returns what it registered. Tests use it to check a stand-in on inputs
// the real program never gives it (a pulumi-eks Cluster without
// useDefaultVpcCni, say), so that a stand-in cannot quietly agree with the
// program.
func RunStandins(regionName string, program pulumi.RunFunc) ([]Resource, error) {
	m := newMocks(regionName, DefaultCatalog(regionName, nil))
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		m.ctx = ctx
		return program(ctx)
	}, pulumi.WithMocks("deepseek-r1-cn", "standins", m), func(info *pulumi.RunInfo) {
		info.Config = map[string]string{"aws:region": regionName}
		info.DryRun = true
		info.MonitorAddr, info.EngineAddr = "", ""
	})
	if err != nil {
		return nil, fmt.Errorf("run under the stand-ins of %s: %w", regionName, err)
	}
	return m.resources(), nil
}
