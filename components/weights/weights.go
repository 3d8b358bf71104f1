// Package weights is where model weights live in the region: a new S3
// bucket that is private, encrypted, versioned, TLS-only and kept when the
// stack is destroyed, or an existing bucket and prefix.
package weights

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/iamdoc"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/region"
)

// Args configures a Store.
type Args struct {
	Region region.Info
	// ExistingBucket uses a bucket you already have; nothing is created.
	ExistingBucket string
	// Prefix is the key prefix of the weights, ending in "/".
	Prefix string
	// KMSKeyARN encrypts with a customer managed key; "" uses SSE-S3.
	KMSKeyARN string
}

// Store is the component.
type Store struct {
	pulumi.ResourceState

	BucketName pulumi.StringOutput `pulumi:"bucketName"`
	// URI is s3://bucket/prefix.
	URI pulumi.StringOutput `pulumi:"uri"`
}

// GuardModelDir is where the guard model's weights (Qwen3Guard-Gen-0.6B,
// deepseek-r1-cn:guardModel) are staged: under the model's own prefix, so
// that every target finds them with the model's (SageMaker downloads the
// whole prefix into /opt/ml/model, the EKS pod copies it) and the role that
// reads the model reads them too.
const GuardModelDir = ".guard-model/"

var (
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	prefixPattern = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]+/$`)
)

// Validate checks the arguments.
func (a *Args) Validate() error {
	var errs []error
	if a.ExistingBucket != "" && !bucketPattern.MatchString(a.ExistingBucket) {
		errs = append(errs, fmt.Errorf("bucket %q is not a valid S3 bucket name", a.ExistingBucket))
	}
	if !prefixPattern.MatchString(a.Prefix) || strings.HasPrefix(a.Prefix, "/") || strings.Contains(a.Prefix, "//") {
		errs = append(errs, fmt.Errorf("prefix %q must be a relative S3 key prefix ending in \"/\", such as models/deepseek-r1-distill-qwen-7b/", a.Prefix))
	}
	return errors.Join(errs...)
}

// New creates the store. Every resource of a new bucket is retained on
// delete: destroying the stack, or a change that replaces one of them,
// must never delete weights or weaken the bucket's protection.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Store, error) {
	if err := args.Validate(); err != nil {
		return nil, fmt.Errorf("weights %s: %w", name, err)
	}
	st := &Store{}
	if err := ctx.RegisterComponentResource("deepseek-r1-cn:weights:Store", name, st, opts...); err != nil {
		return nil, err
	}
	if args.ExistingBucket != "" {
		st.BucketName = pulumi.String(args.ExistingBucket).ToStringOutput()
	} else {
		bucketName, err := newBucket(ctx, name, args, st)
		if err != nil {
			return nil, fmt.Errorf("weights %s: %w", name, err)
		}
		st.BucketName = bucketName
	}
	st.URI = pulumi.Sprintf("s3://%s/%s", st.BucketName, args.Prefix)
	if err := ctx.RegisterResourceOutputs(st, pulumi.Map{
		"bucketName": st.BucketName,
		"uri":        st.URI,
	}); err != nil {
		return nil, err
	}
	return st, nil
}

func newBucket(ctx *pulumi.Context, name string, args *Args, st *Store) (pulumi.StringOutput, error) {
	keep := []pulumi.ResourceOption{pulumi.Parent(st), pulumi.RetainOnDelete(true)}
	bucket, err := s3.NewBucketV2(ctx, name, &s3.BucketV2Args{
		BucketPrefix: pulumi.String(name + "-"),
		ForceDestroy: pulumi.Bool(false),
	}, keep...)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("bucket: %w", err)
	}
	if _, err := s3.NewBucketOwnershipControls(ctx, name, &s3.BucketOwnershipControlsArgs{
		Bucket: bucket.ID(),
		Rule:   s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, keep...); err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("ownership controls: %w", err)
	}
	if _, err := s3.NewBucketPublicAccessBlock(ctx, name, &s3.BucketPublicAccessBlockArgs{
		Bucket:                bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}, keep...); err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("public access block: %w", err)
	}
	if _, err := s3.NewBucketVersioningV2(ctx, name, &s3.BucketVersioningV2Args{
		Bucket:                  bucket.ID(),
		VersioningConfiguration: s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, keep...); err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("versioning: %w", err)
	}
	sse := s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
		SseAlgorithm: pulumi.String("AES256"),
	}
	if args.KMSKeyARN != "" {
		sse = s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
			SseAlgorithm:   pulumi.String("aws:kms"),
			KmsMasterKeyId: pulumi.String(args.KMSKeyARN),
		}
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name, &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: sse,
			BucketKeyEnabled:                   pulumi.Bool(args.KMSKeyARN != ""),
		}},
	}, keep...); err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("encryption: %w", err)
	}
	// Large uploads of weights that fail midway leave parts that are billed
	// but invisible; clean those up. Objects and their old versions are the
	// user's and are never expired here.
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name, &s3.BucketLifecycleConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketLifecycleConfigurationV2RuleArray{s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:                             pulumi.String("abort-incomplete-uploads"),
			Status:                         pulumi.String("Enabled"),
			Filter:                         s3.BucketLifecycleConfigurationV2RuleFilterArgs{},
			AbortIncompleteMultipartUpload: s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{DaysAfterInitiation: pulumi.Int(7)},
		}},
	}, keep...); err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("lifecycle: %w", err)
	}
	policy := bucket.Bucket.ApplyT(func(b string) string {
		return TLSOnlyPolicy(args.Region, b).JSON()
	}).(pulumi.StringOutput)
	if _, err := s3.NewBucketPolicy(ctx, name, &s3.BucketPolicyArgs{
		Bucket: bucket.ID(),
		Policy: policy,
	}, keep...); err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("policy: %w", err)
	}
	return bucket.Bucket, nil
}

// TLSOnlyPolicy denies every request to the bucket that does not use TLS.
func TLSOnlyPolicy(r region.Info, bucket string) iamdoc.Document {
	return iamdoc.New(iamdoc.Statement{
		Sid:       "DenyInsecureTransport",
		Effect:    "Deny",
		Principal: map[string]any{"AWS": "*"},
		Action:    []string{"s3:*"},
		Resource:  []string{r.S3BucketARN(bucket), r.S3ObjectsARN(bucket, "")},
		Condition: map[string]map[string]any{"Bool": {"aws:SecureTransport": "false"}},
	})
}

// ReadStatements let a role list and read the weights under the prefix and
// nothing else in the bucket.
func ReadStatements(r region.Info, bucket, prefix string) []iamdoc.Statement {
	list := iamdoc.Allow("ListWeights", []string{"s3:ListBucket"}, []string{r.S3BucketARN(bucket)})
	list.Condition = map[string]map[string]any{"StringLike": {"s3:prefix": []string{prefix, prefix + "*"}}}
	return []iamdoc.Statement{
		list,
		iamdoc.Allow("ReadWeights", []string{"s3:GetObject"}, []string{r.S3ObjectsARN(bucket, prefix)}),
	}
}
