package plan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pkgworkspace "github.com/pulumi/pulumi/pkg/v3/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/common/esc"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

// StackConfig is a stack's config as `pulumi up` would hand it to the
// program: the stack file merged with the project's defaults and validated
// against the project's config schema.
type StackConfig struct {
	Project string
	Stack   string
	// Values maps "namespace:key" to the value, as PULUMI_CONFIG does.
	// Secure values read "[secret]": the plan has no way to decrypt them,
	// and needs none.
	Values map[string]string
	// SecretKeys are the keys whose values are secure.
	SecretKeys []string
}

// LoadStackConfig reads Pulumi.yaml and Pulumi.<stack>.yaml from dir with the
// Pulumi SDK's own loaders, and merges and validates them with the engine's
// own ValidateStackConfigAndApplyProjectConfig, the code `pulumi up` runs.
func LoadStackConfig(dir, stack string) (*StackConfig, error) {
	proj, err := workspace.LoadProject(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		return nil, fmt.Errorf("load project: %w", err)
	}
	path := filepath.Join(dir, "Pulumi."+stack+".yaml")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("stack %q: %w", stack, err)
	}
	ps, err := workspace.LoadProjectStack(nil, proj, path)
	if err != nil {
		return nil, fmt.Errorf("load stack %s: %w", path, err)
	}
	dec := config.NewBlindingDecrypter()
	if err := pkgworkspace.ValidateStackConfigAndApplyProjectConfig(
		context.Background(), stack, proj, esc.Value{}, ps.Config, config.NopEncrypter, dec); err != nil {
		return nil, fmt.Errorf("stack %s: %w", stack, err)
	}
	plain, err := ps.Config.Decrypt(dec)
	if err != nil {
		return nil, fmt.Errorf("stack %s: read config: %w", stack, err)
	}
	sc := &StackConfig{Project: proj.Name.String(), Stack: stack, Values: map[string]string{}}
	for k, v := range plain {
		sc.Values[k.String()] = v
	}
	for _, k := range ps.Config.SecureKeys() {
		sc.SecretKeys = append(sc.SecretKeys, k.String())
	}
	if len(sc.Values) == 0 {
		return nil, errors.New("stack " + stack + " has no config at all")
	}
	return sc, nil
}
