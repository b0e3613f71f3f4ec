package web

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// rejectedPage is how many rejected rows the job page shows at once: fixed,
// so the page of a million-row job loads as fast as that of a small one.
const rejectedPage = 100

// jobData is what job.html shows.
type jobData struct {
	Job     JobView
	Refresh int // seconds; 0 once the job is finished
	Nonce   string
	// Statuses are the rows by outcome, one stacked bar; Codes and
	// Operations one bar each, scaled to the largest.
	Statuses   []bar
	Codes      []bar
	Operations []bar
	Timings    []timing
	Receipts   []receiptLink
	// ReceiptNote says why there are no receipt links, when there are none.
	ReceiptNote string
	Rejected    rejectedRows
}

// bar is one bar of a chart: Width is its share, 0 to 100.
type bar struct {
	Label string
	Count int
	Width float64
	// X is where a stacked bar's segment starts, 0 to 100.
	X     float64
	Class string
	Href  string // rows of this code, for a code's bar
}

type timing struct {
	Label, Value, Note string
}

type receiptLink struct {
	Label, Href, Key string
}

// rejectedRows is one page of a job's rejected rows.
type rejectedRows struct {
	Code  lessee.Code // the filter; "" for every code
	Codes []CodeCount // the codes to filter by
	Total int         // rejected rows of Code (all codes: every rejected row)
	Rows  []rejectedRow
	// First is set when this is not the first page; Next when there is
	// another after it.
	First, Next string
	// FirstLine and LastLine are the file's row numbers of the page's
	// first and last rows.
	FirstLine, LastLine int
	PerPage             int
}

type rejectedRow struct {
	Line                    int
	Code                    lessee.Code
	Message                 string
	Reference, Operation    string
	RegistrationNumber, VIN string
	Lessee                  string
	CodeHref                string
}

// jobPage serves GET /jobs/{id}: one job's page. ?code= shows only the
// rejected rows of that code, ?after= those after a row index.
func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := s.jobs.Job(r.Context(), id)
	switch {
	case lessee.ErrorCode(err) == lessee.ENOTFOUND:
		s.pageError(w, http.StatusNotFound, "No such job",
			fmt.Sprintf("There is no job with id %q. It may be mistyped, or the job list (/jobs) may name another.", id))
		return
	case err != nil:
		s.log.Error("job page: load job", "err", ident.MaskText(err.Error()))
		s.pageError(w, http.StatusInternalServerError, "Could not load the job", "The job could not be read; the service log says why.")
		return
	}
	q := r.URL.Query()
	code := lessee.Code(q.Get("code"))
	if code != "" && !slices.Contains(lessee.Codes(), code) {
		s.pageError(w, http.StatusBadRequest, "Bad filter", fmt.Sprintf("code %q is not a code a receipt carries.", string(code)))
		return
	}
	after := -1
	if a := q.Get("after"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 {
			s.pageError(w, http.StatusBadRequest, "Bad page", fmt.Sprintf("after must be a row index, 0 or more, not %q.", a))
			return
		}
		after = n
	}

	v := NewJobView(j, s.now())
	d := jobData{Job: v, Nonce: rand.Text()}
	if !finished(v.State) {
		d.Refresh = refreshSeconds
	}
	d.Statuses = statusBars(v)
	d.Codes = countBars(v.Codes, func(c CodeCount) (string, int) { return string(c.Code), c.Count }, func(c CodeCount) string {
		return codeHref(v.ID, c.Code)
	})
	ops := make([]CodeCount, 0, len(v.Operations))
	for op, n := range v.Operations {
		ops = append(ops, CodeCount{Code: lessee.Code(op), Count: n})
	}
	slices.SortFunc(ops, func(a, b CodeCount) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code)) })
	d.Operations = countBars(ops, func(c CodeCount) (string, int) { return string(c.Code), c.Count }, nil)
	d.Timings = timings(v, s.now())
	d.Receipts, d.ReceiptNote = receiptLinks(j, v)

	rows, err := s.jobs.RejectedRows(r.Context(), j.ID, code, after, rejectedPage+1)
	if err != nil {
		s.log.Error("job page: rejected rows", "err", ident.MaskText(err.Error()))
		s.pageError(w, http.StatusInternalServerError, "Could not load the job", "The job's rejected rows could not be read; the service log says why.")
		return
	}
	rr := rejectedRows{Code: code, Codes: v.Codes, Total: v.Rejected}
	if code != "" {
		rr.Total = j.Codes[code]
	}
	page := url.Values{}
	if code != "" {
		page.Set("code", string(code))
	}
	if after >= 0 {
		rr.First = "/jobs/" + url.PathEscape(j.ID) + query(page) + "#rejected"
	}
	if len(rows) > rejectedPage {
		rows = rows[:rejectedPage]
		page.Set("after", strconv.Itoa(rows[len(rows)-1].Index))
		rr.Next = "/jobs/" + url.PathEscape(j.ID) + query(page) + "#rejected"
	}
	for _, res := range rows {
		rr.Rows = append(rr.Rows, rejectedRow{
			Line:               res.Line,
			Code:               res.Code,
			Message:            ident.MaskText(res.Message),
			Reference:          ident.MaskText(res.Echo.Reference),
			Operation:          ident.MaskText(res.Echo.Operation),
			RegistrationNumber: ident.MaskText(res.Echo.RegistrationNumber),
			VIN:                ident.MaskText(res.Echo.VIN),
			Lessee:             ident.MaskText(res.Echo.Lessee),
			CodeHref:           codeHref(j.ID, res.Code),
		})
	}
	if len(rr.Rows) > 0 {
		rr.FirstLine, rr.LastLine = rr.Rows[0].Line, rr.Rows[len(rr.Rows)-1].Line
	}
	rr.PerPage = rejectedPage
	d.Rejected = rr
	s.render(w, http.StatusOK, "job.html", d.Nonce, d)
}

// codeHref links the job page's rejected rows of one code.
func codeHref(id string, code lessee.Code) string {
	return "/jobs/" + url.PathEscape(id) + "?" + url.Values{"code": {string(code)}}.Encode() + "#rejected"
}

// statusBars is the stacked bar of a job's rows by outcome.
func statusBars(v JobView) []bar {
	total := v.Applied + v.Unchanged + v.Rejected
	out := []bar{
		{Label: "applied", Count: v.Applied, Class: "applied"},
		{Label: "unchanged", Count: v.Unchanged, Class: "unchanged"},
		{Label: "rejected", Count: v.Rejected, Class: "rejected"},
	}
	x := 0.0
	for i := range out {
		if total > 0 {
			out[i].Width = 100 * float64(out[i].Count) / float64(total)
		}
		out[i].X = x
		x += out[i].Width
	}
	return out
}

// countBars is one bar per item, the largest full width.
func countBars[T any](items []T, labelCount func(T) (string, int), href func(T) string) []bar {
	largest := 0
	for _, it := range items {
		_, n := labelCount(it)
		largest = max(largest, n)
	}
	out := make([]bar, 0, len(items))
	for _, it := range items {
		label, n := labelCount(it)
		b := bar{Label: label, Count: n}
		if largest > 0 {
			// At least a sliver, so a code of one row among millions shows.
			b.Width = max(0.5, 100*float64(n)/float64(largest))
		}
		if href != nil {
			b.Href = href(it)
		}
		out = append(out, b)
	}
	return out
}

// timings are when the job was uploaded, started and finished, and how
// long it waited and ran.
func timings(v JobView, now time.Time) []timing {
	var out []timing
	if v.Uploaded != nil {
		out = append(out, timing{Label: "Uploaded", Value: fmtTime(*v.Uploaded) + " UTC"})
	}
	if !v.Started.IsZero() {
		t := timing{Label: "Started", Value: fmtTime(v.Started) + " UTC"}
		if v.Uploaded != nil && v.Started.After(*v.Uploaded) {
			t.Note = "after " + fmtDuration(v.Started.Sub(*v.Uploaded).Milliseconds()) + " in the queue"
		}
		out = append(out, t)
	}
	switch {
	case v.Finished != nil:
		out = append(out, timing{Label: "Finished", Value: fmtTime(*v.Finished) + " UTC",
			Note: "ran " + fmtDuration(v.DurationMS) + rate(v.RowsDone, v.DurationMS)})
		if v.Uploaded != nil && v.Finished.After(*v.Uploaded) {
			out = append(out, timing{Label: "Upload to receipt", Value: fmtDuration(v.Finished.Sub(*v.Uploaded).Milliseconds())})
		}
	case !v.Started.IsZero():
		out = append(out, timing{Label: "Running for", Value: fmtDuration(v.DurationMS), Note: "as of " + fmtTime(now) + " UTC" + rate(v.RowsDone, v.DurationMS)})
	}
	return out
}

// rate is ", n rows/s" for rows done in ms, or "" when too short to say.
func rate(rows int, ms int64) string {
	perSecond := float64(rows) * 1000 / float64(ms)
	if ms < 1000 || perSecond < 1 {
		return ""
	}
	return ", " + fmtCount(int(perSecond)) + " rows/s"
}

// receiptLinks lists the job's receipt files, or says why there are none.
func receiptLinks(j lessee.Job, v JobView) ([]receiptLink, string) {
	base := "/api/jobs/" + url.PathEscape(v.ID)
	switch {
	case !finished(v.State):
		return nil, "The receipts are written when the job finishes."
	case j.Submitter == "":
		return nil, "No receipt: the upload's key names no valid submitter, so it was quarantined."
	case v.HistoryRemoved:
		return nil, "The receipts were removed after the retention time (--receipt-retention)."
	case v.Receipt == "":
		return nil, "The receipts are being published; reload in a moment."
	}
	links := []receiptLink{{Label: "Receipt CSV", Href: base + "/receipt", Key: v.Receipt}}
	if v.ReceiptXLSX != "" {
		links = append(links, receiptLink{Label: "Receipt XLSX", Href: base + "/receipt.xlsx", Key: v.ReceiptXLSX})
	}
	links = append(links, receiptLink{Label: "Summary JSON", Href: base + "/summary", Key: v.Summary})
	return links, ""
}
