package bench

import (
	"encoding/json"
	"fmt"
	"slices"
)

// floorChange is one applied change of the run, from its audit entry: the
// row it came from and the lessee period it left behind.
type floorChange struct {
	Index    int     // the row's 0-based index in the file
	ChangeID string  // also the id of the period an add opened
	Period   string  // id of the period the change opened or ended
	End      *string // that period's end date after the change; nil: none
}

// chunkWrites is what one chunk of the run wrote to lessee_periods: the
// periods it opened, as they were when it committed, and the end dates it
// set on periods opened before it.
type chunkWrites struct {
	Opened []int      // indexes into the run's inserted periods
	Ends   []floorEnd // in the order of the chunk's rows
}

// floorEnd is an end date a chunk set on a period (End nil: none).
type floorEnd struct {
	ID  string
	End *string
}

// planPeriodWrites replays the run's changes, chunk by chunk of chunkSize
// rows, as ApplyChunk wrote them: a period opened and ended within one
// chunk is inserted once with its end date; one ended by a later chunk is
// inserted open (or as the opening chunk left it) and then updated by each
// later chunk that changed it. inserted are the run's new periods (their
// id at idCol, their end date at endCol); the returned copies carry the
// end date of their opening chunk. The result has one entry per chunk that
// wrote a period, in file order.
func planPeriodWrites(inserted [][]any, idCol, endCol int, changes []floorChange, chunkSize int) ([][]any, []chunkWrites, error) {
	if chunkSize <= 0 {
		return nil, nil, fmt.Errorf("plan period writes: chunk size %d", chunkSize)
	}
	byID := make(map[string]int, len(inserted))
	for i, r := range inserted {
		id, ok := r[idCol].(string)
		if !ok {
			return nil, nil, fmt.Errorf("plan period writes: period id %v is %T", r[idCol], r[idCol])
		}
		byID[id] = i
	}
	rows := make([][]any, len(inserted))
	opened := make(map[string]int, len(inserted)) // period id -> chunk that inserted it
	slices.SortStableFunc(changes, func(a, b floorChange) int { return a.Index - b.Index })
	var plan []chunkWrites
	chunkOf := map[int]int{} // chunk number -> index in plan
	at := func(chunk int) *chunkWrites {
		i, ok := chunkOf[chunk]
		if !ok {
			i = len(plan)
			chunkOf[chunk] = i
			plan = append(plan, chunkWrites{})
		}
		return &plan[i]
	}
	for _, c := range changes {
		chunk := c.Index / chunkSize
		cw := at(chunk)
		i, isNew := byID[c.Period]
		if isNew && c.ChangeID == c.Period {
			// The add that opened it: inserted by this chunk.
			if _, seen := opened[c.Period]; seen {
				return nil, nil, fmt.Errorf("plan period writes: period %s opened twice", c.Period)
			}
			opened[c.Period] = chunk
			row := slices.Clone(inserted[i])
			row[endCol] = endValue(c.End)
			rows[i] = row
			cw.Opened = append(cw.Opened, i)
			continue
		}
		if isNew {
			first, ok := opened[c.Period]
			if !ok {
				return nil, nil, fmt.Errorf("plan period writes: row %d changes period %s before the row that opened it", c.Index, c.Period)
			}
			if first == chunk {
				// Folded into the insert, as the chunk folded it.
				rows[i][endCol] = endValue(c.End)
				continue
			}
		}
		// An end date set on a period from before this chunk; the chunk
		// writes each period once, as it ends up.
		if j := slices.IndexFunc(cw.Ends, func(e floorEnd) bool { return e.ID == c.Period }); j >= 0 {
			cw.Ends[j].End = c.End
		} else {
			cw.Ends = append(cw.Ends, floorEnd{ID: c.Period, End: c.End})
		}
	}
	for id, i := range byID {
		if rows[i] == nil {
			return nil, nil, fmt.Errorf("plan period writes: no change of the run opened period %s", id)
		}
	}
	return rows, plan, nil
}

// endValue is an end date as a column value.
func endValue(end *string) any {
	if end == nil {
		return nil
	}
	return *end
}

// auditPeriod reads the period id and end date an audit entry's after (or,
// without one, before) state names.
func auditPeriod(before, after string) (id string, end *string, err error) {
	var p struct {
		ID  string `json:"id"`
		End string `json:"end_date"`
	}
	state := after
	if state == "" || state == "null" {
		state = before
	}
	if err := json.Unmarshal([]byte(state), &p); err != nil {
		return "", nil, fmt.Errorf("audit state %q: %w", state, err)
	}
	if p.ID == "" {
		return "", nil, fmt.Errorf("audit state %q names no period", state)
	}
	if p.End != "" {
		return p.ID, &p.End, nil
	}
	return p.ID, nil, nil
}
