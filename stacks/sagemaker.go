package stacks

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/deepseek-r1-cn/deepseek-r1-cn/components/sagemaker"
)

// deploySageMaker stands up the SageMaker alternative: network, weights
// bucket and the endpoint with autoscaling. The network needs no NAT: the
// image comes from ECR and the weights from S3 through VPC endpoints.
func deploySageMaker(ctx *pulumi.Context, d *Deployment) error {
	c := d.Config
	// sagemaker.runtime lets clients inside the VPC invoke privately.
	net, err := newNetwork(ctx, d, []string{"ecr.api", "ecr.dkr", "sagemaker.runtime", "logs"})
	if err != nil {
		return err
	}
	store, err := newWeightsStore(ctx, d, d.WeightsPrefix)
	if err != nil {
		return err
	}
	s := d.SageMaker
	ep, err := sagemaker.New(ctx, baseName+"-sagemaker", &sagemaker.Args{
		Region:                       d.Region,
		InstanceType:                 d.Decision.InstanceType,
		Image:                        s.Image,
		Environment:                  s.Environment,
		WeightsBucket:                store.BucketName,
		WeightsPrefix:                d.WeightsPrefix,
		VpcID:                        net.VpcID,
		SubnetIDs:                    net.PrivateSubnetIDs,
		NetworkIsolation:             c.SageMakerNetworkIsolation,
		StartupTimeoutSeconds:        s.StartupTimeoutSeconds,
		DownloadTimeoutSeconds:       s.DownloadTimeoutSeconds,
		VolumeSizeGiB:                s.VolumeSizeGiB,
		KMSKeyARN:                    c.KMSKeyARN,
		MinInstances:                 c.SageMakerMinInstances,
		MaxInstances:                 c.SageMakerMaxInstances,
		TargetInvocationsPerInstance: c.SageMakerInvocationsPerInstance,
	})
	if err != nil {
		return err
	}

	exportWeights(ctx, d, store)
	ctx.Export("endpointName", ep.EndpointName)
	ctx.Export("endpointArn", ep.EndpointARN)
	ctx.Export("container", pulumi.String(s.Container+": "+s.Image))
	body := ChatRequestBody(d.Model.Key)
	ctx.Export("requestBody", pulumi.String(body))
	ctx.Export("invokeCommand", ep.EndpointName.ApplyT(func(name string) string {
		return InvokeEndpointCommand(d.Region.Name, name, body)
	}).(pulumi.StringOutput))
	return nil
}

// ChatRequestBody is an OpenAI-style chat request, which both the LMI
// container and vLLM's SageMaker server accept on /invocations.
func ChatRequestBody(model string) string {
	b, _ := json.Marshal(map[string]any{
		"model": model,
		"messages": []map[string]string{
			{"role": "user", "content": "9.11 and 9.8, which is greater?"},
		},
		"max_tokens":  2048,
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
