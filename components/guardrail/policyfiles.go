package guardrail

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail/policydigest"
)

// PolicyFilesArgs configures PolicyFiles.
type PolicyFilesArgs struct {
	Bucket pulumi.StringInput
	// Prefix is the key prefix the files go under, ending in "/".
	Prefix string
	// Dir is the policy directory; Files are the names of its files (the
	// policy and the word lists it names).
	Dir       string
	Files     []string
	KMSKeyARN string
}

// PolicyFiles is the guardrail policy as one S3 object per file, for a
// server that receives a directory rather than fetching an archive: the
// SageMaker target puts it beside the weights, which SageMaker copies to
// /opt/ml/model before the container starts.
type PolicyFiles struct {
	pulumi.ResourceState

	URI pulumi.StringOutput `pulumi:"uri"`
}

// NewPolicyFiles uploads the files. They are the program's own: unlike the
// weights, destroying the stack deletes them.
func NewPolicyFiles(ctx *pulumi.Context, name string, args *PolicyFilesArgs, opts ...pulumi.ResourceOption) (*PolicyFiles, error) {
	if args.Bucket == nil || args.Dir == "" || !strings.HasSuffix(args.Prefix, "/") {
		return nil, fmt.Errorf("guardrail policy files %s: %w", name, errors.New("bucket, directory and a prefix ending in / are required"))
	}
	if len(args.Files) == 0 {
		return nil, fmt.Errorf("guardrail policy files %s: no files in %s", name, args.Dir)
	}
	pf := &PolicyFiles{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:guardrail:PolicyFiles", name, pf, opts...); err != nil {
		return nil, err
	}
	files := append([]string(nil), args.Files...)
	sort.Strings(files)
	for _, f := range files {
		objArgs := &s3.BucketObjectv2Args{
			Bucket:      args.Bucket,
			Key:         pulumi.String(args.Prefix + f),
			Source:      pulumi.NewFileAsset(filepath.Join(args.Dir, f)),
			ContentType: pulumi.String("text/plain; charset=utf-8"),
		}
		if args.KMSKeyARN != "" {
			objArgs.ServerSideEncryption = pulumi.String("aws:kms")
			objArgs.KmsKeyId = pulumi.String(args.KMSKeyARN)
		}
		if _, err := s3.NewBucketObjectv2(ctx, name+"-"+f, objArgs, pulumi.Parent(pf)); err != nil {
			return nil, fmt.Errorf("guardrail policy files %s: %s: %w", name, f, err)
		}
	}
	pf.URI = pulumi.Sprintf("s3://%s/%s", args.Bucket, args.Prefix)
	if err := ctx.RegisterResourceOutputs(pf, pulumi.Map{"uri": pf.URI}); err != nil {
		return nil, err
	}
	return pf, nil
}

// FileSHA256 is the hex SHA-256 of one file's content.
func FileSHA256(content string) string { return policydigest.SHA256([]byte(content)) }

// DirSHA256 digests a policy directory (policydigest.Files). Any change to
// any file changes it, which is what makes a server that reads the policy
// once at start pick up the new one (a changed digest is a changed container
// environment), and what the container checks the files it got against.
func DirSHA256(files map[string]string) string {
	b := make(map[string][]byte, len(files))
	for n, c := range files {
		b[n] = []byte(c)
	}
	return policydigest.Files(b)
}
