// Package awsconf builds an aws.Config from the few settings dmsbridge
// components expose: region, endpoint, path-style addressing and
// credentials (the default chain, static keys, a shared-config profile, or a
// role to assume on top of any of them). It does not import Benthos.
package awsconf

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Config holds the settings. Zero values mean "use the SDK default".
type Config struct {
	Region         string
	Endpoint       string // custom endpoint URL (e.g. a local S3 stand-in)
	ForcePathStyle bool   // S3 only: applied by the S3 client builder
	ID             string // static access key id
	Secret         string // static secret access key (secret)
	Token          string // static session token (secret)
	Profile        string // shared config profile
	Role           string // role ARN to assume
	RoleExternalID string
}

// Load resolves the configuration. Static keys win over a profile; a role is
// assumed with whatever credentials were resolved first.
func Load(ctx context.Context, c Config) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.ID != "" || c.Secret != "" {
		if c.ID == "" || c.Secret == "" {
			return aws.Config{}, fmt.Errorf("credentials: id and secret must be set together")
		}
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.ID, c.Secret, c.Token)))
	}
	conf, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if c.Endpoint != "" {
		conf.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.Role != "" {
		stsClient := sts.NewFromConfig(conf)
		conf.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.Role, func(o *stscreds.AssumeRoleOptions) {
			if c.RoleExternalID != "" {
				o.ExternalID = aws.String(c.RoleExternalID)
			}
		}))
	}
	return conf, nil
}
