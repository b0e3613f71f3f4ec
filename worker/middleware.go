package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/intake"
)

// Classify is the middleware that decides, once, what a failed attempt
// means. A permanent failure (errPermanent) or the last retry gives up on
// the file: a receipt saying so and the source in failed/, then SkipRetry.
// Anything else is transient and returned for Asynq to retry with backoff.
// If recording the failure fails too, the error is returned for a retry so
// that the file is not left without a receipt.
func (h *Handler) Classify(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		err := next.ProcessTask(ctx, t)
		if err == nil || errors.Is(err, asynq.SkipRetry) {
			return err
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			// The process is stopping and cut this attempt off: Asynq puts
			// the task back, and the file resumes from its last committed
			// chunk. Not a failure of the file, whatever its attempts.
			return err
		}
		p, perr := decodePayload(t)
		if perr != nil {
			return perr
		}
		log := h.log.With("job_id", intake.JobID(p.Bucket, p.Key, p.Version), "key", p.Key)
		retried, okRetried := asynq.GetRetryCount(ctx)
		maxRetry, okMax := asynq.GetMaxRetry(ctx)
		permanent := errors.Is(err, errPermanent)
		if !permanent && !(okRetried && okMax && retried >= maxRetry) {
			log.Warn("transient failure; will retry", "retried", retried, "err", err)
			return err
		}
		log.Error("giving up on the file", "retried", retried, "permanent", permanent, "err", err)
		if gerr := h.giveUp(context.WithoutCancel(ctx), p.Upload, err); gerr != nil {
			log.Error("could not record the failure", "err", gerr)
			return err
		}
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	})
}

// Mask is the outermost middleware: Asynq stores a failed attempt's error
// text in Redis and asynqmon shows it, so every 11-digit run in it (it
// could be a national identity number) is masked first. Whether the error
// skips retries is kept.
func Mask(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		err := next.ProcessTask(ctx, t)
		if err == nil {
			return nil
		}
		return &maskedError{msg: ident.MaskText(err.Error()), skipRetry: errors.Is(err, asynq.SkipRetry)}
	})
}

// maskedError is an error whose text has been masked; it unwraps to
// asynq.SkipRetry when the original did, and to nothing else, so that no
// unmasked text is reachable from it.
type maskedError struct {
	msg       string
	skipRetry bool
}

func (e *maskedError) Error() string { return e.msg }

func (e *maskedError) Unwrap() error {
	if e.skipRetry {
		return asynq.SkipRetry
	}
	return nil
}
