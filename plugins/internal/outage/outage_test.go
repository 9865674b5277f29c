package outage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// A failure that lasts is returned at once, then after FirstGap, then at
// doubling gaps up to MaxGap, while try is called every Every in between;
// a success returns at once and ends the failure.
func TestRetrySaysAtGrowingIntervals(t *testing.T) {
	tr := &Tracker{Every: 10 * time.Millisecond, FirstGap: 100 * time.Millisecond, MaxGap: 200 * time.Millisecond}
	down := errors.New("down")
	var tries int
	try := func(context.Context) error { tries++; return down }
	ctx := context.Background()
	start := time.Now()
	var at []time.Duration
	var errs []error
	for range 4 {
		errs = append(errs, tr.Retry(ctx, try, nil))
		at = append(at, time.Since(start))
	}
	if errs[0] != down {
		t.Fatalf("first report: %v, want the error as is", errs[0])
	}
	for i, e := range errs[1:] {
		var oe *Error
		if !errors.As(e, &oe) || !errors.Is(e, down) || !strings.Contains(e.Error(), "failing for") {
			t.Fatalf("report %d: %v, want the error saying how long it has failed", i+1, e)
		}
	}
	// said at about 0, 100, 300, 500 ms (gaps 100, 200, 200 capped)
	want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond}
	for i := range at {
		if at[i] < want[i] || at[i] > want[i]+150*time.Millisecond {
			t.Fatalf("reports at %v, want about %v", at, want)
		}
	}
	if tries < 20 {
		t.Fatalf("%d tries in %v, want one every 10 ms", tries, at[3])
	}
	if !tr.Failing() {
		t.Fatal("not failing")
	}
	if err := tr.Retry(ctx, func(context.Context) error { return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if d := tr.Recovered(); d < 500*time.Millisecond {
		t.Fatalf("Recovered: %v, want the failure's length", d)
	}
	if tr.Failing() || tr.Recovered() != 0 {
		t.Fatal("still failing after Recovered")
	}
	// a new failure is said at once again
	if err := tr.Retry(ctx, try, nil); err != down {
		t.Fatalf("after a recovery: %v, want the error at once", err)
	}
}

// A final error is returned at once; a back-off error keeps its wait, with
// the note inside it (the engine shows the innermost back-off's error).
func TestRetryFinalAndBackOff(t *testing.T) {
	tr := &Tracker{Every: 5 * time.Millisecond, FirstGap: 20 * time.Millisecond}
	bo := service.NewErrBackOff(errors.New("lapsed"), 7*time.Second)
	if err := tr.Retry(context.Background(), func(context.Context) error { return bo }, func(error) bool { return true }); err != bo {
		t.Fatalf("final: %v", err)
	}
	_ = tr.Retry(context.Background(), func(context.Context) error { return bo }, nil) // continues the failure
	err := tr.Retry(context.Background(), func(context.Context) error { return bo }, nil)
	var got *service.ErrBackOff
	if !errors.As(err, &got) || got.Wait != 7*time.Second || !strings.Contains(got.Err.Error(), "lapsed (failing for") {
		t.Fatalf("back-off: %#v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Retry(ctx, func(context.Context) error { return bo }, nil); err == nil {
		t.Fatal("a cancelled Retry returned nil")
	}
}
