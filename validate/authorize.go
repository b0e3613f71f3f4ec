package validate

import (
	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/message"
)

// Authorize is the authority check of Decide on its own: whether the
// job's submitter may act for fleetOwner on date d (terms, fleet-owner
// role, delegation), or the Problem a row would be rejected with, in the
// job's language. A
// snapshot asks it before it looks at the fleet's vehicles that the file
// leaves out, so that no one learns of a fleet they may not act for.
func Authorize(job Job, st *lessee.State, fleetOwner string, d lessee.Date) *lessee.Problem {
	if st == nil {
		st = lessee.NewState()
	}
	if rej := authority(job, st, fleetOwner, d); rej != nil {
		return message.Problem(job.Language, rej.code, rej.text)
	}
	return nil
}
