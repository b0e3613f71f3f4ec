package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestMask(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		skip bool
	}{
		{"OKNil", nil, false},
		{"OKTransient", errors.New("apply rows 0-4: lessee 12128822249: connection reset"), false},
		{"OKSkipRetry", fmt.Errorf("bad payload for 12128822249: %w", asynq.SkipRetry), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := Mask(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return tc.err }))
			err := h.ProcessTask(context.Background(), asynq.NewTask(TypeIngestFile, nil))
			if tc.err == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if strings.Contains(err.Error(), "12128822249") || !strings.Contains(err.Error(), "*********49") {
				t.Errorf("error text %q is not masked", err)
			}
			if got := errors.Is(err, asynq.SkipRetry); got != tc.skip {
				t.Errorf("errors.Is(err, SkipRetry) = %v, want %v", got, tc.skip)
			}
			if errors.Unwrap(err) != nil && !tc.skip {
				t.Errorf("the masked error unwraps to %v: the unmasked text is reachable", errors.Unwrap(err))
			}
		})
	}
}

// TestClassify runs the middleware with the retry counts Asynq puts in the
// context: transient failures are returned for a retry until the last
// attempt, which gives up with a receipt; permanent ones give up at once.
func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		err        error
		maxRetry   int // the first attempt is the last when 0
		wantGiveUp bool
		wantSkip   bool
	}{
		{"OKTransientRetried", io.ErrUnexpectedEOF, 5, false, false},
		{"OKLastRetryGivesUp", io.ErrUnexpectedEOF, 0, true, true},
		{"OKPermanentGivesUpAtOnce", fmt.Errorf("%w: 3 of 4 rows have results", errPermanent), 5, true, true},
		{"OKSkipRetryPassesThrough", fmt.Errorf("decode: %w", asynq.SkipRetry), 5, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, sqlstoretest.SQLite(t))
			p := b.put(t, "inbox/912345602/all-outcomes.csv", "changes/all-outcomes.csv")
			opt := DefaultOptions()
			opt.MaxRetry = tc.maxRetry
			task, err := NewIngestFileTask(p, opt)
			if err != nil {
				t.Fatal(err)
			}
			err = runClassified(t, b.handler, task, func(context.Context, *asynq.Task) error { return tc.err })
			if !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.err)
			}
			if got := errors.Is(err, asynq.SkipRetry); got != tc.wantSkip {
				t.Errorf("skip retry = %v, want %v", got, tc.wantSkip)
			}
			job, jerr := b.store.Job(context.Background(), intake.JobID(p.Bucket, p.Key, p.Version))
			gaveUp := jerr == nil && job.State == lessee.JobRefused && job.Code == lessee.CodeProcessingFailed
			if gaveUp != tc.wantGiveUp {
				t.Errorf("gave up = %v (job %+v, %v), want %v", gaveUp, job, jerr, tc.wantGiveUp)
			}
			if tc.wantGiveUp {
				summary := string(b.get(t, "receipts/912345602/all-outcomes.csv.summary.json"))
				if !strings.Contains(summary, `"code": "PROCESSING_FAILED"`) {
					t.Errorf("summary = %s", summary)
				}
			}
		})
	}
}

// runClassified runs task once on a real Asynq server (on miniredis), its
// handler being inner wrapped in h.Classify, and returns what Classify
// returned. Only a real server puts the retry count in the context.
func runClassified(t *testing.T, h *Handler, task *asynq.Task, inner asynq.HandlerFunc) error {
	t.Helper()
	redis := asynq.RedisClientOpt{Addr: miniredis.RunT(t).Addr()}
	got := make(chan error, 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeIngestFile, func(ctx context.Context, task *asynq.Task) error {
		err := h.Classify(inner).ProcessTask(ctx, task)
		select {
		case got <- err:
		default: // a retry after the first attempt: not looked at
		}
		return err
	})
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency:    1,
		Queues:         map[string]int{QueueSmall: 1, QueueLarge: 1},
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		LogLevel:       asynq.FatalLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	client := asynq.NewClient(redis)
	defer client.Close()
	if _, err := client.Enqueue(task); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not run")
		return nil
	}
}
