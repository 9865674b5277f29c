// Package kinesis provides the aws_kinesis_streams output.
package kinesis

import (
	"errors"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Categories("Services", "AWS").
		Summary("Writes messages to an Amazon Kinesis data stream with PutRecords.").
		Field(service.NewStringField("stream").Default(""))
}

func init() {
	service.MustRegisterBatchOutput("aws_kinesis_streams", outputSpec(), func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
		return nil, service.BatchPolicy{}, 0, errors.New("aws_kinesis_streams: not built yet")
	})
}
