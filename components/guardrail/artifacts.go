// Package guardrail delivers the guardrail gateway (cmd/guardrail) to where
// it runs: the Linux binary and its policy directory as objects in the
// region's S3 bucket, so that an instance fetches them from inside China and
// never from the internet.
package guardrail

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// Prefix is where the artifacts live in the bucket; BinaryKey and PolicyKey
// follow it.
const (
	Prefix    = "artifacts/guardrail/"
	BinaryKey = "guardrail-linux-amd64"
	PolicyKey = "policy.zip"
)

// Args configures Artifacts.
type Args struct {
	Region region.Info
	Bucket pulumi.StringInput
	// BinaryPath is the linux/amd64 build of cmd/guardrail.
	BinaryPath string
	// PolicyDir holds policy.yaml and the word lists it names; it travels
	// as one zip archive.
	PolicyDir string
	KMSKeyARN string
}

// Artifacts is the component.
type Artifacts struct {
	pulumi.ResourceState

	BinaryURI pulumi.StringOutput `pulumi:"binaryUri"`
	PolicyURI pulumi.StringOutput `pulumi:"policyUri"`
}

// New uploads the binary and the policy.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Artifacts, error) {
	if args.Bucket == nil || args.BinaryPath == "" || args.PolicyDir == "" {
		return nil, fmt.Errorf("guardrail artifacts %s: %w", name, errors.New("bucket, binary and policy directory are required"))
	}
	a := &Artifacts{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:guardrail:Artifacts", name, a, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(a)
	upload := func(suffix, key string, source pulumi.AssetOrArchiveInput, contentType string) (pulumi.StringOutput, error) {
		objArgs := &s3.BucketObjectv2Args{
			Bucket:      args.Bucket,
			Key:         pulumi.String(Prefix + key),
			Source:      source,
			ContentType: pulumi.String(contentType),
		}
		if args.KMSKeyARN != "" {
			objArgs.ServerSideEncryption = pulumi.String("aws:kms")
			objArgs.KmsKeyId = pulumi.String(args.KMSKeyARN)
		}
		obj, err := s3.NewBucketObjectv2(ctx, name+"-"+suffix, objArgs, parent)
		if err != nil {
			return pulumi.StringOutput{}, fmt.Errorf("guardrail artifacts %s: %s: %w", name, suffix, err)
		}
		return pulumi.Sprintf("s3://%s/%s", obj.Bucket, obj.Key), nil
	}
	var err error
	if a.BinaryURI, err = upload("binary", BinaryKey, pulumi.NewFileAsset(args.BinaryPath),
		"application/octet-stream"); err != nil {
		return nil, err
	}
	if a.PolicyURI, err = upload("policy", PolicyKey, pulumi.NewFileArchive(args.PolicyDir),
		"application/zip"); err != nil {
		return nil, err
	}
	if err := ctx.RegisterResourceOutputs(a, pulumi.Map{"binaryUri": a.BinaryURI, "policyUri": a.PolicyURI}); err != nil {
		return nil, err
	}
	return a, nil
}

// ReadStatement lets an instance read the artifacts and nothing else.
func ReadStatement(r region.Info, bucket string) iamdoc.Statement {
	return iamdoc.Allow("ReadGuardrail", []string{"s3:GetObject"}, []string{r.S3ObjectsARN(bucket, Prefix)})
}

// PolicyFile is the file the gateway loads from the unpacked policy
// directory.
const PolicyFile = "policy.yaml"
