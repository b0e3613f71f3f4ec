package web

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/objectkey"
)

// Job list limits.
const (
	defaultJobLimit = 100
	maxJobLimit     = 1000
)

// JobView is a job as the API and the page show it. Free text (key, name,
// message, receipt keys) has personal identity numbers masked.
type JobView struct {
	ID        string          `json:"id"`
	State     lessee.JobState `json:"state"`
	Submitter string          `json:"submitter"`
	Key       string          `json:"key"`
	Name      string          `json:"name"`
	Format    lessee.Format   `json:"format"`
	// Mode is "changes" or "snapshot"; DryRun marks a dry run (dryrun/,
	// dryrun-snapshot/), which applies nothing.
	Mode      lessee.Mode `json:"mode"`
	DryRun    bool        `json:"dry_run"`
	Size      int64       `json:"size"`
	RowsTotal int         `json:"rows_total"`
	RowsDone  int         `json:"rows_done"`
	// Progress is RowsDone/RowsTotal, 1 when finished, 0 while unknown.
	Progress  float64     `json:"progress"`
	Applied   int         `json:"applied"`
	Unchanged int         `json:"unchanged"`
	Rejected  int         `json:"rejected"`
	Code      lessee.Code `json:"code,omitempty"` // refusal code
	Message   string      `json:"message,omitempty"`
	// Codes lists row codes, most frequent first.
	Codes []CodeCount `json:"codes"`
	// Operations counts a snapshot's rows by derived operation; absent
	// for a change file.
	Operations map[lessee.Operation]int `json:"operations,omitempty"`
	// Uploaded is when the upload was made, absent when not known: the
	// job waited in the queue from then until Started.
	Uploaded *time.Time `json:"uploaded,omitempty"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// DurationMS is finished minus started, or the time so far while the
	// job runs.
	DurationMS int64 `json:"duration_ms"`
	// Receipt and Summary are the object keys of the job's own receipt CSV
	// and summary JSON, in its history folder (History) while retained, set
	// once the job is finished and has a submitter (quarantined uploads
	// have nobody to send a receipt to). A job finished before receipts had
	// a history names the latest keys of its name instead. ReceiptXLSX is
	// the XLSX receipt beside them, for an XLSX upload.
	Receipt     string `json:"receipt,omitempty"`
	ReceiptXLSX string `json:"receipt_xlsx,omitempty"`
	Summary     string `json:"summary,omitempty"`
	History     string `json:"history,omitempty"`
	// HistoryRemoved says the retention sweep removed the job's receipts.
	HistoryRemoved bool `json:"history_removed,omitempty"`
}

// ModeLabel names a job's mode as the job page shows it: "changes",
// "snapshot", "dry run" (a change file's) or "snapshot · dry run".
func ModeLabel(mode lessee.Mode, dryRun bool) string {
	label := "changes"
	if mode == lessee.ModeSnapshot {
		label = "snapshot"
	}
	switch {
	case dryRun && mode == lessee.ModeSnapshot:
		return label + " · dry run"
	case dryRun:
		return "dry run"
	}
	return label
}

// CodeCount is how many rows got one code.
type CodeCount struct {
	Code  lessee.Code `json:"code"`
	Count int         `json:"count"`
}

// NewJobView builds the view of j at time now.
func NewJobView(j lessee.Job, now time.Time) JobView {
	v := JobView{
		ID:        j.ID,
		State:     j.State,
		Submitter: ident.MaskText(j.Submitter),
		Key:       ident.MaskText(j.Key),
		Name:      ident.MaskText(j.Name),
		Format:    j.Format,
		Mode:      cmp.Or(j.Mode, lessee.ModeChanges),
		DryRun:    j.DryRun,
		Size:      j.Size,
		RowsTotal: j.RowsTotal,
		RowsDone:  j.RowsDone,
		Applied:   j.Applied,
		Unchanged: j.Unchanged,
		Rejected:  j.Rejected,
		Code:      j.Code,
		Message:   ident.MaskText(j.Message),
		Codes:     make([]CodeCount, 0, len(j.Codes)),
		Started:   j.Started.UTC(),
	}
	if !j.Uploaded.IsZero() {
		u := j.Uploaded.UTC()
		v.Uploaded = &u
	}
	if v.Mode == lessee.ModeSnapshot && len(j.Operations) > 0 {
		v.Operations = maps.Clone(j.Operations)
	}
	for c, n := range j.Codes {
		if n > 0 {
			v.Codes = append(v.Codes, CodeCount{Code: c, Count: n})
		}
	}
	slices.SortFunc(v.Codes, func(a, b CodeCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	end := now
	if done := j.State == lessee.JobCompleted || j.State == lessee.JobRefused; done {
		v.Progress = 1
		if !j.Finished.IsZero() {
			f := j.Finished.UTC()
			v.Finished, end = &f, f
		}
		if rk, ok := receiptKeys(j); ok {
			v.Receipt, v.Summary = ident.MaskText(rk.CSV), ident.MaskText(rk.Summary)
			if j.Format == lessee.FormatXLSX {
				v.ReceiptXLSX = ident.MaskText(rk.XLSX)
			}
			if j.History != "" {
				v.History = ident.MaskText(j.History)
			}
		}
		v.HistoryRemoved = j.HistoryRemoved
	} else if j.RowsTotal > 0 {
		v.Progress = min(1, float64(j.RowsDone)/float64(j.RowsTotal))
	}
	if !j.Started.IsZero() && end.After(j.Started) {
		v.DurationMS = end.Sub(j.Started).Milliseconds()
	}
	return v
}

// apiJobs serves GET /api/jobs.
func (s *Server) apiJobs(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	views, err := s.jobViews(r.Context(), limit)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, views)
}

// pathJob loads the job named by the {id} of the request path, or answers
// 404 or 500 itself and returns false. api names the caller in the log.
func (s *Server) pathJob(w http.ResponseWriter, r *http.Request, api string) (lessee.Job, bool) {
	j, err := s.jobs.Job(r.Context(), r.PathValue("id"))
	switch {
	case lessee.ErrorCode(err) == lessee.ENOTFOUND:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "job not found"})
		return j, false
	case err != nil:
		s.log.Error(api+": load job", "err", ident.MaskText(err.Error()))
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "could not load the job"})
		return j, false
	}
	return j, true
}

// apiJob serves GET /api/jobs/{id}.
func (s *Server) apiJob(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.pathJob(w, r, "job api"); ok {
		writeJSON(w, http.StatusOK, NewJobView(j, s.now()))
	}
}

// receiptKeys returns the keys of a finished job's receipts: in its
// history folder, or, for a job finished before receipts had a history,
// the latest keys of its name. ok is false when there are none to show:
// no submitter (quarantined), removed after the retention time, or still
// being published.
func receiptKeys(j lessee.Job) (rk objectkey.ReceiptKeys, ok bool) {
	switch {
	case j.Submitter == "" || j.HistoryRemoved:
		return rk, false
	case j.History != "":
		return objectkey.HistoryFor(j.Submitter, j.ID, j.Name, j.DryRun), true
	case j.PublishedAttempt == 0:
		return objectkey.ReceiptsFor(j.Submitter, j.Name, j.DryRun), true
	}
	return rk, false
}

// receiptKind names one of a job's receipt files.
type receiptKind int

const (
	receiptCSV receiptKind = iota
	receiptXLSX
	receiptSummary
)

// receiptFile serves GET /api/jobs/{id}/receipt, /receipt.xlsx and
// /summary: one receipt file of a finished job, streamed from object
// storage, so the job pages can link to it without giving operators
// bucket credentials.
func (s *Server) receiptFile(kind receiptKind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.objects == nil {
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "this server has no object store to read receipts from"})
			return
		}
		j, ok := s.pathJob(w, r, "receipt api")
		if !ok {
			return
		}
		if j.Submitter == "" || (j.State != lessee.JobCompleted && j.State != lessee.JobRefused) {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "the job has no receipt yet"})
			return
		}
		if j.HistoryRemoved {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "the receipt was removed after the retention time"})
			return
		}
		rk, ok := receiptKeys(j)
		if !ok {
			writeJSON(w, http.StatusNotFound, errorBody{Error: "the receipt is being published; try again in a moment"})
			return
		}
		key, contentType, disposition := rk.CSV, "text/csv; charset=utf-8", "attachment"
		switch kind {
		case receiptXLSX:
			if j.Format != lessee.FormatXLSX {
				writeJSON(w, http.StatusNotFound, errorBody{Error: "only an XLSX upload gets an XLSX receipt; this one was " + cmp.Or(string(j.Format), "not read")})
				return
			}
			key, contentType = rk.XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		case receiptSummary:
			key, contentType, disposition = rk.Summary, "application/json; charset=utf-8", "inline"
		}
		// A job finished before receipts had a history has only the latest
		// keys, which a later upload with the same name replaces: serve them
		// only if the summary beside them is this job's.
		var summary bytes.Buffer
		if _, err := s.objects.Download(r.Context(), rk.Summary, "", &summary); err == nil {
			var sm struct {
				JobID string `json:"job_id"`
			}
			if json.Unmarshal(summary.Bytes(), &sm) == nil && sm.JobID != j.ID {
				writeJSON(w, http.StatusNotFound, errorBody{Error: "a later upload with the same name replaced this receipt"})
				return
			}
		}
		if _, err := s.objects.Head(r.Context(), key); err != nil {
			if lessee.ErrorCode(err) == lessee.ENOTFOUND {
				writeJSON(w, http.StatusNotFound, errorBody{Error: "the receipt is no longer stored"})
				return
			}
			s.log.Error("receipt api: head", "err", ident.MaskText(err.Error()))
			writeJSON(w, http.StatusBadGateway, errorBody{Error: "could not read the receipt"})
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": path.Base(key)}))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// Streamed: a receipt of two million rows is hundreds of megabytes.
		if _, err := s.objects.Download(r.Context(), key, "", w); err != nil {
			s.log.Error("receipt api: download", "err", ident.MaskText(err.Error()))
		}
	})
}

// parseLimit reads ?limit=, 1 to maxJobLimit, default defaultJobLimit.
func parseLimit(r *http.Request) (int, error) {
	q := r.URL.Query().Get("limit")
	if q == "" {
		return defaultJobLimit, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > maxJobLimit {
		return 0, fmt.Errorf("limit must be a number from 1 to %d", maxJobLimit)
	}
	return n, nil
}

// jobViews loads the newest limit jobs. Its error is fit for a response;
// the cause is logged.
func (s *Server) jobViews(ctx context.Context, limit int) ([]JobView, error) {
	jobs, err := s.jobs.ListJobs(ctx, limit)
	if err != nil {
		s.log.Error("job api: list jobs", "err", ident.MaskText(err.Error()))
		return nil, errors.New("could not list jobs")
	}
	now := s.now()
	views := make([]JobView, len(jobs))
	for i, j := range jobs {
		views[i] = NewJobView(j, now)
	}
	return views, nil
}

type errorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v as an uncached JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
