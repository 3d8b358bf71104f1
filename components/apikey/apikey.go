// Package apikey keeps the model server's API key in Secrets Manager. The key
// is a Pulumi secret from config, or generated once and kept in the stack's
// (encrypted) state. Servers read it at start-up; it is never written into
// user data, a container spec or an output in plain text.
package apikey

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
)

// Args configures an APIKey.
type Args struct {
	// Value is the key; nil generates one. It must be a secret output.
	Value pulumi.StringInput
	// KMSKeyARN encrypts the secret with a customer managed key; "" uses the
	// account's aws/secretsmanager key.
	KMSKeyARN string
	// Description is shown in the Secrets Manager console.
	Description string
}

// APIKey is the component.
type APIKey struct {
	pulumi.ResourceState

	SecretARN pulumi.StringOutput `pulumi:"secretArn"`
	// Value is the key itself, as a Pulumi secret.
	Value pulumi.StringOutput `pulumi:"value"`
}

// New creates the secret.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*APIKey, error) {
	k := &APIKey{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:apikey:APIKey", name, k, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(k)
	value := args.Value
	if value == nil {
		pw, err := random.NewRandomPassword(ctx, name, &random.RandomPasswordArgs{
			Length: pulumi.Int(48),
			// Letters and digits only, so the key needs no quoting in a
			// header, a shell or an environment file.
			Special: pulumi.Bool(false),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("api key %s: generate: %w", name, err)
		}
		value = pw.Result
	}
	secretArgs := &secretsmanager.SecretArgs{
		NamePrefix:           pulumi.String(name + "-"),
		Description:          pulumi.String(args.Description),
		RecoveryWindowInDays: pulumi.Int(7),
	}
	if args.KMSKeyARN != "" {
		secretArgs.KmsKeyId = pulumi.String(args.KMSKeyARN)
	}
	secret, err := secretsmanager.NewSecret(ctx, name, secretArgs, parent)
	if err != nil {
		return nil, fmt.Errorf("api key %s: secret: %w", name, err)
	}
	if _, err := secretsmanager.NewSecretVersion(ctx, name, &secretsmanager.SecretVersionArgs{
		SecretId:     secret.ID(),
		SecretString: pulumi.ToSecret(value).(pulumi.StringOutput),
	}, parent); err != nil {
		return nil, fmt.Errorf("api key %s: secret version: %w", name, err)
	}
	k.SecretARN = secret.Arn
	k.Value = pulumi.ToSecret(value).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(k, pulumi.Map{
		"secretArn": k.SecretARN,
		"value":     k.Value,
	}); err != nil {
		return nil, err
	}
	return k, nil
}

// ReadStatement lets a role read the key and nothing else. (With a customer
// managed key, the role also needs kms:Decrypt on it.)
func ReadStatement(secretARN string) iamdoc.Statement {
	return iamdoc.Allow("ReadApiKey", []string{"secretsmanager:GetSecretValue"}, []string{secretARN})
}
