package kinesis

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// awsConn holds the connection settings shared by the AWS clients: region,
// endpoint override and credentials. Empty fields mean "use the AWS default"
// (environment, shared config files, instance/task role).
type awsConn struct {
	region         string
	endpoint       string
	id             string
	secret         string
	token          string
	profile        string
	role           string
	roleExternalID string
}

// validate reports contradictory credential settings, naming the fields.
func (c awsConn) validate() error {
	if (c.id == "") != (c.secret == "") {
		return fmt.Errorf("credentials.id and credentials.secret must be set together")
	}
	if c.token != "" && c.id == "" {
		return fmt.Errorf("credentials.token needs credentials.id and credentials.secret")
	}
	if c.id != "" && c.profile != "" {
		return fmt.Errorf("credentials.profile cannot be combined with static credentials.id/secret")
	}
	if c.roleExternalID != "" && c.role == "" {
		return fmt.Errorf("credentials.role_external_id needs credentials.role")
	}
	return nil
}

// load builds an aws.Config. The SDK's own retries are turned off: the output
// retries with its own backoff, per record, honouring the context.
func (c awsConn) load(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if c.region != "" {
		opts = append(opts, config.WithRegion(c.region))
	}
	if c.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.profile))
	}
	if c.id != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.id, c.secret, c.token)))
	}
	opts = append(opts, config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if c.role != "" {
		stsClient := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.role,
			func(o *stscreds.AssumeRoleOptions) {
				if c.roleExternalID != "" {
					o.ExternalID = aws.String(c.roleExternalID)
				}
			}))
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region: set region, AWS_REGION or a profile with a region")
	}
	return cfg, nil
}
