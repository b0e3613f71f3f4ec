package sqlstore

import (
	"context"
	"fmt"

	"github.com/fleetreg/lessee"
)

type resultRow struct {
	Index              int    `db:"row_index"`
	Line               int    `db:"row_line"`
	Reference          string `db:"reference"`
	Operation          string `db:"operation"`
	RegistrationNumber string `db:"registration_number"`
	VIN                string `db:"vin"`
	Lessee             string `db:"lessee"`
	Status             string `db:"status"`
	Code               string `db:"code"`
	Message            string `db:"message"`
	ChangeID           string `db:"change_id"`
}

func (r resultRow) result() lessee.Result {
	return lessee.Result{
		Index: r.Index,
		Line:  r.Line,
		Echo: lessee.Echo{
			Reference:          r.Reference,
			Operation:          r.Operation,
			RegistrationNumber: r.RegistrationNumber,
			VIN:                r.VIN,
			Lessee:             r.Lessee,
		},
		Status:   lessee.Status(r.Status),
		Code:     lessee.Code(r.Code),
		Message:  r.Message,
		ChangeID: r.ChangeID,
	}
}

// resultPage is how many results Results reads per query. It reads in pages
// so that no cursor stays open while fn runs (fn may upload to S3), and in
// pages this large so that a million rows cost a hundred queries.
const resultPage = 10000

// resultsQuery reads one page: the results of a job after a row index, at
// most a limit of them, in row order (the primary key's order).
const resultsQuery = `SELECT row_index, row_line, reference, operation, registration_number, vin, lessee,
		status, code, message, change_id
		FROM row_results WHERE job_id = ? AND row_index > ? ORDER BY row_index LIMIT ?`

// Results calls fn with the stored results of a job in row order. An error
// from fn stops the iteration and is returned as is. The next page is read
// while fn works through the current one, so that a receipt waits for the
// database only for its first page.
func (s *Store) Results(ctx context.Context, jobID string, fn func(lessee.Result) error) error {
	ctx, cancel := context.WithCancel(ctx)
	reading := make(chan struct{})
	defer func() {
		cancel()
		<-reading // no query of this call outlives it
	}()
	type page struct {
		rows []resultRow
		err  error
	}
	pages := make(chan page, 1)
	free := make(chan []resultRow, 2) // pages fn is done with, to read into again
	free <- make([]resultRow, 0, resultPage)
	free <- make([]resultRow, 0, resultPage)
	go func() {
		defer close(reading)
		defer close(pages)
		after := -1
		for {
			var buf []resultRow
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			rows, err := s.dialect.resultPage(ctx, s.db, jobID, after, buf[:0])
			select {
			case pages <- page{rows, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(rows) < resultPage {
				return
			}
			after = rows[len(rows)-1].Index
		}
	}()
	for p := range pages {
		if p.err != nil {
			return fmt.Errorf("results of job %s: %w", jobID, p.err)
		}
		for _, r := range p.rows {
			if err := fn(r.result()); err != nil {
				return err
			}
		}
		free <- p.rows
	}
	return ctx.Err()
}
