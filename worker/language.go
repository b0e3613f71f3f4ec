package worker

import (
	"context"
	"fmt"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
	"github.com/fleetreg/lessee/objectkey"
)

// language is what job's messages are written in: job.Language once this
// attempt has read the submitter (see process), else the submitter's as
// the registry has it, and the default language for a key that names no
// valid submitter or a submitter the registry does not know. It is read
// at every attempt and not stored with the job: a language changed while
// a file is processed applies to the rows after the change.
func (h *Handler) language(ctx context.Context, job lessee.Job) (lessee.Language, error) {
	if job.Language != "" {
		return job.Language, nil
	}
	if objectkey.Parse(job.Key).Verdict != objectkey.OK {
		return h.cfg.DefaultLanguage, nil
	}
	e, err := h.store.Enterprise(ctx, job.Submitter)
	switch {
	case lessee.ErrorCode(err) == lessee.ENOTFOUND:
		return h.cfg.DefaultLanguage, nil
	case err != nil:
		return "", fmt.Errorf("language of the submitter: %w", err)
	}
	return message.Choose(e, h.cfg.DefaultLanguage), nil
}
