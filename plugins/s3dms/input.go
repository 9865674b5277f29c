// Package s3dms provides the aws_s3_dms input: an ordered reader of a bucket
// (or local directory) laid out as an AWS DMS S3 source endpoint.
package s3dms

import (
	"errors"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Categories("Services", "AWS").
		Summary("Reads a bucket laid out as an AWS DMS S3 source: full load, then CDC files in order.").
		Field(service.NewStringField("bucket").Default(""))
}

func init() {
	service.MustRegisterBatchInput("aws_s3_dms", inputSpec(), func(*service.ParsedConfig, *service.Resources) (service.BatchInput, error) {
		return nil, errors.New("aws_s3_dms: not built yet")
	})
}
