// Command refcheck prepares the reference data set on the test servers and
// checks what a pipeline delivered, for tests that run dmsbridge outside
// `go test` (the Docker image test, benchmarks):
//
//	refcheck prepare -bucket B -stream S [-shards 2] [-scale 0.02] -manifest FILE
//	    creates the bucket and the stream, uploads the data set, writes the manifest
//	    [-put KEY=FILE] also uploads FILE as object KEY (e.g. a bad row; not in the manifest)
//	refcheck verify -stream S -manifest FILE [-phase full-load|all]
//	    reads every shard and compares with the manifest (count, content, per-key
//	    order); exits 1 with the report when anything is missing or wrong
//
// Endpoints and credentials come from S3_ENDPOINT, KINESIS_ENDPOINT,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (tests/services.sh).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dmsbridge/dmsbridge/tests/refdata"
	"github.com/dmsbridge/dmsbridge/tests/testutil"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: refcheck prepare|verify [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	bucket := fs.String("bucket", "", "bucket to create and fill")
	stream := fs.String("stream", "", "Kinesis stream")
	shards := fs.Int("shards", 2, "shards of the stream")
	scale := fs.Float64("scale", 0.02, "size of the data set (1 = the blog's)")
	manifest := fs.String("manifest", "", "manifest file (JSON lines)")
	phase := fs.String("phase", "all", "records to expect: full-load or all")
	put := fs.String("put", "", "prepare: KEY=FILE, an extra object to upload (not in the manifest)")
	_ = fs.Parse(os.Args[2:])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "prepare":
		err = prepare(ctx, *bucket, *stream, *shards, *scale, *manifest, *put)
	case "verify":
		err = verify(ctx, *stream, *manifest, *phase)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "refcheck:", err)
		os.Exit(1)
	}
}

func awsConfig() (aws.Config, error) {
	for _, v := range []string{"S3_ENDPOINT", "KINESIS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if os.Getenv(v) == "" {
			return aws.Config{}, fmt.Errorf("%s is not set (start the servers with tests/services.sh)", v)
		}
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	return aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(
		os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "")}, nil
}

func kinesisClient(cfg aws.Config) *kinesis.Client {
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(os.Getenv("KINESIS_ENDPOINT")) })
}

func prepare(ctx context.Context, bucket, stream string, shards int, scale float64, manifestPath, put string) error {
	if bucket == "" || stream == "" || manifestPath == "" {
		return errors.New("prepare needs -bucket, -stream and -manifest")
	}
	cfg, err := awsConfig()
	if err != nil {
		return err
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(os.Getenv("S3_ENDPOINT"))
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	files, manifest := refdata.Generate(refdata.Scaled(scale))
	if put != "" {
		key, path, ok := strings.Cut(put, "=")
		if !ok || key == "" || path == "" {
			return fmt.Errorf("-put %q: want KEY=FILE", put)
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, refdata.File{Key: key, Body: body})
	}
	for _, f := range files {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.Key), Body: bytes.NewReader(f.Body)}); err != nil {
			return fmt.Errorf("put %s: %w", f.Key, err)
		}
	}
	kc := kinesisClient(cfg)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		return fmt.Errorf("create stream %s: %w", stream, err)
	}
	if err := kinesis.NewStreamExistsWaiter(kc).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
		return fmt.Errorf("stream %s not active: %w", stream, err)
	}
	if err := refdata.WriteManifest(manifestPath, manifest); err != nil {
		return err
	}
	fmt.Printf("prepared s3://%s (%d files, %d records) and stream %s (%d shards)\n", bucket, len(files), len(manifest), stream, shards)
	return nil
}

func verify(ctx context.Context, stream, manifestPath, phase string) error {
	if stream == "" || manifestPath == "" {
		return errors.New("verify needs -stream and -manifest")
	}
	cfg, err := awsConfig()
	if err != nil {
		return err
	}
	all, err := refdata.ReadManifest(manifestPath)
	if err != nil {
		return err
	}
	var manifest []refdata.Expected
	for _, e := range all {
		if phase == "full-load" && e.Operation != "load" {
			continue
		}
		manifest = append(manifest, e)
	}
	recs, err := testutil.ReadStreamErr(ctx, kinesisClient(cfg), stream)
	if err != nil {
		return err
	}
	var got []refdata.Delivered
	for _, r := range recs {
		got = append(got, refdata.Delivered{PartitionKey: r.PartitionKey, Data: r.Data})
	}
	rep := refdata.Compare(manifest, got)
	fmt.Println("refcheck:", rep)
	if !rep.OK() {
		return errors.New("delivery does not match the manifest")
	}
	return nil
}
