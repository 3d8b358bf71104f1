package stacks

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/guardrail"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/observability"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sagemaker"
	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/telemetry"
)

// deploySageMaker stands up the SageMaker alternative: network, weights
// bucket and the endpoint with autoscaling. The network needs no NAT: the
// image comes from ECR and the weights from S3 through VPC endpoints.
func deploySageMaker(ctx *pulumi.Context, d *Deployment) error {
	c := d.Config
	s := d.SageMaker
	// Everything that can fail is asked before anything is registered: a
	// missing policy is a config error, a failed lookup fails the preview.
	image := s.Image
	var policy map[string]string
	if s.Container == ContainerCustom {
		registry, err := imageRegistry(ctx, d)
		if err != nil {
			return err
		}
		image = inRegistry(registry, s.Image)
		if c.Guardrail {
			if policy, err = readPolicyDir(c.GuardrailPolicyDir); err != nil {
				return err
			}
		}
	}
	endpointName := sagemaker.EndpointName(baseName, ctx.Stack())
	if c.Observability {
		// The alarms and dashboard are built now, so that a metric the
		// catalog does not have fails before anything is registered.
		if _, err := sageMakerObservabilityArgs(d, ctx.Stack(), endpointName); err != nil {
			return err
		}
		if _, err := accountID(ctx, d); err != nil {
			return err
		}
	}
	// sagemaker.runtime lets clients inside the VPC invoke privately.
	net, err := newNetwork(ctx, d, []string{"ecr.api", "ecr.dkr", "sagemaker.runtime", "logs"})
	if err != nil {
		return err
	}
	var groups *observability.LogGroups
	var deps []pulumi.Resource
	if c.Observability {
		// Made before the endpoint, so that SageMaker writes into a group
		// with the stack's retention and key rather than creating one.
		if groups, err = newLogGroups(ctx, d, telemetry.SageMakerLogGroups(endpointName)); err != nil {
			return err
		}
		deps = append(deps, groups)
	}
	store, err := newWeightsStore(ctx, d, d.WeightsPrefix)
	if err != nil {
		return err
	}
	env := maps.Clone(s.Environment)
	if policy != nil {
		files, err := guardrail.NewPolicyFiles(ctx, baseName+"-guardrail-policy", &guardrail.PolicyFilesArgs{
			Bucket: store.BucketName, Prefix: d.WeightsPrefix + GuardrailPolicyDirName + "/",
			Dir: c.GuardrailPolicyDir, Files: slices.Sorted(maps.Keys(policy)), KMSKeyARN: c.KMSKeyARN,
		})
		if err != nil {
			return err
		}
		deps = append(deps, files)
		maps.Copy(env, GuardrailEnvironment(policy))
	}
	ep, err := sagemaker.New(ctx, baseName+"-sagemaker", &sagemaker.Args{
		Region:                       d.Region,
		EndpointName:                 endpointName,
		InstanceType:                 d.Decision.InstanceType,
		Image:                        image,
		Environment:                  env,
		DependsOn:                    deps,
		WeightsBucket:                store.BucketName,
		WeightsPrefix:                d.WeightsPrefix,
		VpcID:                        net.VpcID,
		SubnetIDs:                    net.PrivateSubnetIDs,
		NetworkIsolation:             c.SageMakerNetworkIsolation,
		StartupTimeoutSeconds:        s.StartupTimeoutSeconds,
		DownloadTimeoutSeconds:       s.DownloadTimeoutSeconds,
		VolumeSizeGiB:                s.VolumeSizeGiB,
		InferenceAMIVersion:          s.InferenceAMIVersion,
		KMSKeyARN:                    c.KMSKeyARN,
		MinInstances:                 c.SageMakerMinInstances,
		MaxInstances:                 c.SageMakerMaxInstances,
		TargetInvocationsPerInstance: c.SageMakerInvocationsPerInstance,
	})
	if err != nil {
		return err
	}

	if c.Observability {
		if err := sageMakerObservability(ctx, d, endpointName, groups); err != nil {
			return err
		}
	}
	exportWeights(ctx, d, store)
	d.export(ctx, "endpointName", ep.EndpointName)
	d.export(ctx, "endpointArn", ep.EndpointARN)
	d.export(ctx, "container", pulumi.String(s.Container+": "+image))
	body := ChatRequestBody(d.Model.Key)
	d.export(ctx, "requestBody", pulumi.String(body))
	d.export(ctx, "invokeCommand", ep.EndpointName.ApplyT(func(name string) string {
		return InvokeEndpointCommand(d.Region.Name, name, body)
	}).(pulumi.StringOutput))
	return nil
}

// GuardrailEnvironment tells the custom container where SageMaker put the
// guardrail policy (the weights prefix is copied to /opt/ml/model) and what
// it must hash to: the container refuses to start on a policy that is not
// the one planned, and a changed policy file changes the model's
// environment, so SageMaker rolls the endpoint onto it.
func GuardrailEnvironment(files map[string]string) map[string]string {
	return map[string]string{
		"GUARDRAIL_ENABLED":           "true",
		"GUARDRAIL_POLICY":            "/opt/ml/model/" + GuardrailPolicyDirName + "/" + guardrail.PolicyFile,
		"GUARDRAIL_POLICY_SHA256":     guardrail.FileSHA256(files[guardrail.PolicyFile]),
		"GUARDRAIL_POLICY_DIR_SHA256": guardrail.DirSHA256(files),
	}
}

// ChatRequestBody is an OpenAI-style chat request, which both the LMI
// container and the custom container accept on /invocations. It asks for
// few tokens: InvokeEndpoint gives a non-streamed answer 60 seconds
// (awsdocs your-algorithms-inference-code.md), and R1 reasons at length;
// stream longer answers (README).
func ChatRequestBody(model string) string {
	b, _ := json.Marshal(map[string]any{
		"model": model,
		"messages": []map[string]string{
			{"role": "user", "content": "9.11 and 9.8, which is greater?"},
		},
		"max_tokens":  512,
		"temperature": 0.6,
	})
	return string(b)
}

// InvokeEndpointCommand calls the endpoint with the AWS CLI v2 in its region
// (the CLI finds the China endpoint runtime.sagemaker.<region>.amazonaws.com.cn
// from the region).
func InvokeEndpointCommand(regionName, endpoint, body string) string {
	return fmt.Sprintf("aws sagemaker-runtime invoke-endpoint --region %s --endpoint-name %s "+
		"--content-type application/json --cli-binary-format raw-in-base64-out --body '%s' /dev/stdout",
		regionName, endpoint, body)
}
