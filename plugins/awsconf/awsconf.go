// Package awsconf builds an aws.Config from the few settings dmsbridge
// components expose: region, endpoint, path-style addressing and
// credentials (the default chain, static keys, a shared-config profile, or a
// role to assume on top of any of them). Both the aws_s3_dms input and the
// aws_kinesis_streams output use it, so their `credentials` fields behave the
// same. It does not import Benthos.
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dmsbridge/dmsbridge/plugins/internal/lintcheck"
)

// Config holds the settings. Zero values mean "use the SDK default".
type Config struct {
	Region         string
	Endpoint       string // custom endpoint URL of the S3 or Kinesis service (e.g. a local stand-in); not used for STS
	ForcePathStyle bool   // S3 only: applied by the S3 client builder
	ID             string // static access key id
	Secret         string // static secret access key (secret)
	Token          string // static session token (secret)
	Profile        string // shared config profile
	Role           string // role ARN to assume
	RoleExternalID string
	// NoSDKRetries turns the SDK's own retries off, for components that
	// retry themselves (per record, honouring their context), but one: a
	// request refused for the host's clock is sent again at once with the
	// skew the answer showed (see clockSkewOnly).
	NoSDKRetries bool
}

// Validate reports contradictory credential settings, naming the fields as
// the components' configs spell them.
//
// Under lint --skip-env-var-check (and test), an empty id, secret or role
// may be an unset variable (secret: ${AWS_SECRET_ACCESS_KEY}): the pairs
// they belong to are left to the start, which sees the values.
func (c Config) Validate() error {
	ph := lintcheck.EmptyIsPlaceholder()
	switch {
	case (c.ID == "") != (c.Secret == "") && !ph:
		return errors.New("credentials.id and credentials.secret must be set together")
	case c.Token != "" && c.ID == "" && !ph:
		return errors.New("credentials.token needs credentials.id and credentials.secret")
	case c.ID != "" && c.Profile != "":
		return errors.New("credentials.profile cannot be combined with static credentials.id/secret")
	case c.RoleExternalID != "" && c.Role == "" && !ph:
		return errors.New("credentials.role_external_id needs credentials.role")
	}
	if c.Role != "" && !roleARN.MatchString(c.Role) && !(lintcheck.EmptyIsPlaceholder() && placeholderRoleARN.MatchString(c.Role)) {
		// STS refuses it at every Connect.
		return fmt.Errorf("credentials.role: must be an IAM role ARN such as arn:aws:iam::123456789012:role/name, got %q", c.Role)
	}
	if c.Region != "" && !validRegion(c.Region) {
		// The SDK refuses it at every request ("invalid input region"):
		// the pipeline would run, retrying Connect forever.
		return fmt.Errorf("region: %q is not a valid AWS region name such as us-east-1 (dot-separated labels of letters, digits and inner hyphens)", c.Region)
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			return fmt.Errorf("endpoint: %w", err)
		}
	}
	return nil
}

// roleARN is the form of an IAM role ARN, in any partition, with or without
// a path.
var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[^/].*$`)

// placeholderRoleARN is a role ARN some parts of which (partition, account
// id, name) may be unset variables, replaced with "" by `lint
// --skip-env-var-check` (arn:aws:iam::${ACCOUNT_ID}:role/dms): left to the
// start, which sees the values.
var placeholderRoleARN = regexp.MustCompile(`^arn:(aws[a-z-]*)?:iam::([0-9]{12})?:role/`)

// validRegion is the AWS SDK's own test of a region (rulesfn.IsValidHostLabel
// with sub-domains, applied by every client's endpoint resolution).
func validRegion(r string) bool {
	for _, l := range strings.Split(r, ".") {
		if !smithyhttp.ValidHostLabel(l) || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	return true
}

// checkEndpoint refuses an endpoint that is not an absolute http(s) URL or
// holds what may be a secret and is never used as written, quoting it with
// showEndpoint.
func checkEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL such as https://host:port, got %s", showEndpoint(ep))
	}
	if u.User != nil {
		// Never used (requests are signed with the credentials), so
		// almost certainly a secret put in the wrong place.
		return fmt.Errorf("must not hold user information (user:password@); give credentials in credentials.id/secret or the AWS default chain, got %s", showEndpoint(ep))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// Never used as written: the S3 client refuses such an
		// endpoint at every request, quoting it whole in the error;
		// the Kinesis client drops the query from its calls, while
		// the output's own PutRecords path would send it and its
		// transport errors quote it. A query is where a proxy token
		// would be: refused here, without showing it.
		return fmt.Errorf("must not hold a query string or fragment (the AWS SDK does not send it); give the scheme, host, port and path only, got %s", showEndpoint(ep))
	}
	return nil
}

// CheckResolvedEndpoint applies the endpoint field's checks to the endpoint
// a client resolved (its Options().BaseEndpoint) when the field is empty:
// it then came from the environment (envVar, e.g. AWS_ENDPOINT_URL_S3, or
// AWS_ENDPOINT_URL) or the shared config's endpoint_url, which Validate
// never saw. The error names those sources, not the value's secrets.
func (c Config) CheckResolvedEndpoint(resolved *string, envVar string) error {
	if c.Endpoint != "" || resolved == nil || *resolved == "" {
		return nil
	}
	if err := checkEndpoint(*resolved); err != nil {
		return fmt.Errorf("the endpoint taken from %s, AWS_ENDPOINT_URL or the shared config's endpoint_url (endpoint is empty): %w", envVar, err)
	}
	return nil
}

// showEndpoint quotes an endpoint for an error message without what may be
// a secret: user information and the query string are replaced by REDACTED, and
// a value that is not a URL at all is not quoted. The message reaches logs,
// the exit line and, in streams mode, the HTTP answer to the API client.
func showEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "a value that is not a URL"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "REDACTED", false
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = "REDACTED", ""
	}
	return strconv.Quote(u.String())
}

// sharedFiles names the shared config files the SDK reads, each missing one
// marked: the SDK's profile error names none.
func sharedFiles() string {
	files := []string{os.Getenv("AWS_CONFIG_FILE"), os.Getenv("AWS_SHARED_CREDENTIALS_FILE")}
	if files[0] == "" {
		files[0] = config.DefaultSharedConfigFilename()
	}
	if files[1] == "" {
		files[1] = config.DefaultSharedCredentialsFilename()
	}
	for i, f := range files {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			files[i] += ": does not exist"
		}
	}
	return strings.Join(files, ", ")
}

// Load resolves the configuration. Static keys win over the default chain; a
// role is assumed with whatever credentials were resolved first. A
// configuration that ends without a region is an error.
func Load(ctx context.Context, c Config) (aws.Config, error) {
	if err := c.Validate(); err != nil {
		return aws.Config{}, err
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.ID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.ID, c.Secret, c.Token)))
	}
	if c.NoSDKRetries {
		opts = append(opts, config.WithRetryer(clockSkewOnly))
	}
	// Temporary credentials of the default chain (a profile's role or
	// credential_process, web identity, ECS) are renewed a little before
	// they expire; the instance role's 5 minutes are kept.
	opts = append(opts, config.WithCredentialsCacheOptions(renewEarly))
	conf, err := config.LoadDefaultConfig(ctx, opts...)
	var noProfile config.SharedConfigProfileNotExistError
	if errors.As(err, &noProfile) && c.Profile != "" && noProfile.Profile == c.Profile {
		return aws.Config{}, fmt.Errorf("credentials.profile: %q is not in the shared config files (%s)", c.Profile, sharedFiles())
	}
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if conf.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set region, AWS_REGION or a profile with a region")
	}
	if conf.Credentials != nil {
		conf.Credentials = aws.NewCredentialsCache(hideProcessOutput{conf.Credentials})
	}
	conf.APIOptions = append(conf.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("dmsbridgeRedactSignatureDetails",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				return out, md, RedactSignatureDetails(err)
			}), middleware.Before)
	})
	if c.Endpoint != "" {
		conf.BaseEndpoint = aws.String(c.Endpoint)
	}
	if c.Role != "" {
		// STS at its own endpoint, not at the S3 or Kinesis one (endpoint is
		// that service's, e.g. a VPC endpoint). A stand-in serving STS too
		// is named by AWS_ENDPOINT_URL_STS (or the shared config's services
		// section), which the SDK resolves when BaseEndpoint is unset.
		stsConf := conf.Copy()
		stsConf.BaseEndpoint = nil
		stsClient := sts.NewFromConfig(stsConf)
		conf.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.Role, func(o *stscreds.AssumeRoleOptions) {
			if c.RoleExternalID != "" {
				o.ExternalID = aws.String(c.RoleExternalID)
			}
		}), renewEarly)
	}
	return conf, nil
}

// clockSkewOnly is a retryer that retries nothing but a request the SDK
// found refused for the host's clock (its "Probable clock skew error": a
// skew code such as InvalidSignatureException "Signature expired" with a
// Date more than 4 minutes off), once, at once. The SDK learns a client's
// clock skew from such an answer, but applies it to the request only when
// it retries it, and keeps it in that client only: with no retries at all,
// a component that builds a new client at each connection attempt (the
// Kinesis output until one succeeds) signed every first request with the
// wrong time, forever, on a host whose clock is off.
func clockSkewOnly() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 2
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			var skew interface {
				error
				RetryableError() bool
			}
			if errors.As(err, &skew) && skew.RetryableError() && strings.HasPrefix(skew.Error(), "Probable clock skew error") {
				return aws.TrueTernary
			}
			return aws.FalseTernary
		})}
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = ratelimit.None
	})
}

// renewEarly makes a credentials cache renew temporary credentials 30 to 60
// s before they expire (at least: a longer window is kept). The SDK's
// default is no window: credentials were used up to their last instant, so
// a request signed then reached S3 or Kinesis after they expired and was
// answered ExpiredToken (the input then reports a refusal, the output a
// lost connection), at every renewal.
func renewEarly(o *aws.CredentialsCacheOptions) {
	if o.ExpiryWindow < time.Minute {
		o.ExpiryWindow, o.ExpiryWindowJitterFrac = time.Minute, 0.5
	}
}

// RedactSignatureDetails cuts, in place, what an AWS error message quotes of
// the request's signature and returns err. A service that rejects a
// signature (Kinesis's InvalidSignatureException, and the other JSON and
// Query services') quotes the canonical request it expected, signed headers
// and their values included: x-amz-security-token, the session token, which
// is a credential. The message reaches logs, the engine's errors and, in
// streams mode, /ready's answer. The code and the message's first sentences
// stay. Every client built from Load's configuration applies it to its
// errors; a component decoding answers itself calls it.
func RedactSignatureDetails(err error) error {
	var ge *smithy.GenericAPIError
	if err == nil || !errors.As(err, &ge) {
		return err
	}
	i := strings.Index(ge.Message, "The Canonical String for this request")
	if j := strings.Index(strings.ToLower(ge.Message), "x-amz-security-token"); i < 0 || (j >= 0 && j < i) {
		i = j
	}
	if i >= 0 {
		ge.Message = strings.TrimSpace(ge.Message[:i]) + " (the canonical request the service quoted is not shown: it holds the session token)"
	}
	return err
}

// hideProcessOutput passes on its provider's credentials and errors, except
// that an error quoting a credential_process's output (the SDK's "parse
// failed of process output: <the whole output>", e.g. for an Expiration not
// in RFC 3339) is replaced by one without it: the output holds the secret
// access key and session token, and the error reaches the log at every
// retry and /ready's answer.
type hideProcessOutput struct{ aws.CredentialsProvider }

func (h hideProcessOutput) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := h.CredentialsProvider.Retrieve(ctx)
	if err == nil {
		return c, nil
	}
	var pe *processcreds.ProviderError
	if errors.As(err, &pe) && pe.Err != nil && strings.HasPrefix(pe.Err.Error(), "parse failed of process output") {
		return c, fmt.Errorf("credential_process: its output is not the JSON the AWS SDK expects (not shown: it may hold the keys): %v", errors.Unwrap(pe.Err))
	}
	// The cache around this provider says it again: the inner cache's
	// words once are enough.
	if inner := errors.Unwrap(err); inner != nil && strings.HasPrefix(err.Error(), "failed to refresh cached credentials, ") {
		return c, inner
	}
	return c, err
}

// CredentialsError is a failure of the credentials provider (default chain,
// profile, assumed role, credential_process): nothing can be signed. Its
// cause can look like anything, e.g. an STS AssumeRole answering 403, which
// is not the service refusing the request; a component tells it apart with
// errors.As (the SDK only wraps it in "get identity: get credentials: ...").
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return e.Err.Error() }
func (e *CredentialsError) Unwrap() error { return e.Err }

// TypedCredentials returns its provider's errors as CredentialsError.
type TypedCredentials struct{ aws.CredentialsProvider }

// Retrieve implements aws.CredentialsProvider.
func (c TypedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return creds, &CredentialsError{Err: err}
	}
	return creds, nil
}

// IsCredentialsProvider lets aws.IsCredentialsProvider see through the
// wrapper (the SDK checks for anonymous credentials that way).
func (c TypedCredentials) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(c.CredentialsProvider, target)
}

// ProviderSources keeps the credential sources the SDK reports in its
// user agent.
func (c TypedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := c.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}
