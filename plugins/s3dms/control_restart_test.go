package s3dms

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestControlMessagesAcrossRestarts: with emit_table_start and
// emit_cdc_start, batch_size 1 and checkpoint.interval 0s, a run stopped
// after any number k of acknowledged messages and restarted goes on with
// exactly the messages after the k-th: no control message lost, none
// before the rows it precedes, none repeated, except the documented
// cdc-start at a restart that resumes in (or enters) the CDC phase.
func TestControlMessagesAcrossRestarts(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n2,b\n"))
	b.put(t, "dms/hr/zeta/LOAD2.csv", []byte("3,c\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("4,d\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,5,e\nI,zeta,hr,6,f\n"))
	b.put(t, "dms/changes/CDC2.csv", []byte("I,zeta,hr,7,g\n"))
	all := []string{"<table-start:zeta>", "1,a", "2,b", "3,c", "<table-start:alpha>", "4,d", "<cdc-start:>", "I,zeta,hr,5,e", "I,zeta,hr,6,f", "I,zeta,hr,7,g"}
	read := func(in *input, n int) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var out []string
		for len(out) < n {
			batch, ack, err := in.ReadBatch(ctx)
			if err != nil {
				t.Fatalf("after %q: %v", out, err)
			}
			for _, m := range batch {
				out = append(out, ctlLabel(m))
			}
			if err := ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	for k := 0; k <= len(all); k++ {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			ckdir := t.TempDir()
			yaml := baseYAML(b, "emit_table_start: true\nemit_cdc_start: true\nbatch_size: 1\npoll_interval: 20ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
			in1, _ := directInput(t, yaml)
			if err := in1.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			first := read(in1, k)
			if err := in1.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if strings.Join(first, "|") != strings.Join(all[:k], "|") {
				t.Fatalf("first run: %q, want %q", first, all[:k])
			}
			want := append([]string(nil), all[k:]...)
			// a restart that enters (or resumes in) CDC begins it with cdc-start
			if k >= 7 {
				want = append([]string{"<cdc-start:>"}, want...)
			}
			in2, _ := directInput(t, yaml)
			if err := in2.Connect(context.Background()); err != nil {
				t.Fatal(err)
			}
			second := read(in2, len(want))
			if strings.Join(second, "|") != strings.Join(want, "|") {
				t.Fatalf("after %d acknowledged: restart gave %q, want %q", k, second, want)
			}
			short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if batch, _, _ := in2.ReadBatch(short); len(batch) > 0 {
				t.Fatalf("after %d acknowledged: restart gave %q, then %d more", k, second, len(batch))
			}
		})
	}
}

// TestControlMessagesRedelivered: a nacked batch holding a table-start is
// redelivered with it (same metadata), followed by the batches emitted
// after it (one holding the cdc-start), in order; a restart after all are
// acknowledged repeats no table-start.
func TestControlMessagesRedelivered(t *testing.T) {
	b := &dirBackend{root: t.TempDir()}
	b.put(t, "dms/hr/zeta/LOAD1.csv", []byte("1,a\n"))
	b.put(t, "dms/hr/alpha/LOAD1.csv", []byte("4,d\n"))
	b.put(t, "dms/changes/CDC1.csv", []byte("I,zeta,hr,5,e\n"))
	ckdir := t.TempDir()
	yaml := baseYAML(b, "emit_table_start: true\nemit_cdc_start: true\nbatch_size: 2\npoll_interval: 20ms\ncheckpoint:\n  directory: "+ckdir+"\n  interval: 0s\n")
	in, _ := directInput(t, yaml)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	label := func(batch service.MessageBatch) string {
		var s []string
		for _, m := range batch {
			p, _ := m.MetaGet("dms_position")
			sc, _ := m.MetaGet("dms_schema")
			s = append(s, ctlLabel(m)+"@"+sc+"@"+p)
		}
		return strings.Join(s, "|")
	}
	type rd struct {
		l   string
		ack service.AckFunc
	}
	next := func() rd {
		batch, ack, err := in.ReadBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rd{label(batch), ack}
	}
	b1, b2 := next(), next() // <table-start:zeta> 1,a | <table-start:alpha> 4,d
	if !strings.Contains(b2.l, "<table-start:alpha>") {
		t.Fatalf("second batch %s", b2.l)
	}
	if err := b1.ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b3 := next() // <cdc-start:> I,zeta,...
	if !strings.Contains(b3.l, "<cdc-start:>") {
		t.Fatalf("third batch %s", b3.l)
	}
	if err := b2.ack(ctx, fmt.Errorf("refused")); err != nil {
		t.Fatal(err)
	}
	_ = b3.ack(ctx, nil)
	r2, r3 := next(), next()
	if r2.l != b2.l || r3.l != b3.l {
		t.Fatalf("redelivered:\n%s\n%s\nwant\n%s\n%s", r2.l, r3.l, b2.l, b3.l)
	}
	_ = r2.ack(ctx, nil)
	_ = r3.ack(ctx, nil)
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	in2, _ := directInput(t, yaml)
	if err := in2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	b.put(t, "dms/changes/CDC2.csv", []byte("I,zeta,hr,6,f\n"))
	var got []string
	for len(got) < 2 {
		batch, ack, err := in2.ReadBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range batch {
			got = append(got, ctlLabel(m))
		}
		_ = ack(ctx, nil)
	}
	if strings.Join(got, "|") != "<cdc-start:>|I,zeta,hr,6,f" {
		t.Fatalf("after restart: %q", got)
	}
}
