package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

//go:embed *.html
var pageFS embed.FS

// pages holds the page templates, parsed once; html/template escapes every
// value by context, so a hostile file name stays text.
var pages = template.Must(template.New("pages").Funcs(template.FuncMap{
	"fmtTime":     fmtTime,
	"fmtDate":     func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"fmtClock":    func(t time.Time) string { return t.UTC().Format(time.TimeOnly) },
	"fmtSize":     fmtSize,
	"fmtDuration": fmtDuration,
	"fmtCount":    fmtCount,
	"percent":     func(p float64) string { return fmt.Sprintf("%d%%", int(p*100)) },
	"modeLabel":   ModeLabel,
	"finished":    finished,
}).ParseFS(pageFS, "*.html"))

// refreshSeconds is how often a page showing an unfinished job reloads.
const refreshSeconds = 3

// jobListPage is the job list's page size: fixed, so that a page costs the
// same whatever is asked.
const jobListPage = 50

// jobsData is what jobs.html shows.
type jobsData struct {
	Jobs []JobView
	// The filters as asked, and their choices.
	Submitter string
	State     lessee.JobState
	Code      lessee.Code
	States    []lessee.JobState
	Codes     []lessee.Code
	Filtered  bool
	// Older is the link to the next page; empty on the last.
	Older   string
	Paged   bool // not the first page
	Newest  string
	Refresh int // seconds; 0: no job shown is unfinished
	Nonce   string
}

// jobStates lists the states a job can be in, for the filter.
var jobStates = []lessee.JobState{lessee.JobQueued, lessee.JobRunning, lessee.JobCompleted, lessee.JobRefused}

// jobsPage serves GET /jobs: the job list as HTML, newest first, filtered
// by ?submitter=, ?state= and ?code=, a page of jobListPage at a time
// (?before=<job id>: the jobs after that one).
func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := jobsData{
		Submitter: strings.TrimSpace(q.Get("submitter")),
		State:     lessee.JobState(q.Get("state")),
		Code:      lessee.Code(q.Get("code")),
		States:    jobStates,
		Codes:     lessee.Codes(),
		Nonce:     rand.Text(),
	}
	before := q.Get("before")
	var problems []string
	if d.Submitter != "" && !isOrgNr(d.Submitter) {
		problems = append(problems, "submitter must be an organisation number of nine digits")
	}
	if d.State != "" && !slices.Contains(jobStates, d.State) {
		problems = append(problems, fmt.Sprintf("state must be one of %s", joinStates(jobStates)))
	}
	if d.Code != "" && !slices.Contains(d.Codes, d.Code) {
		problems = append(problems, "code must be one of the codes a receipt carries (see the list)")
	}
	if len(problems) > 0 {
		s.pageError(w, http.StatusBadRequest, "Bad filter", strings.Join(problems, "; ")+".")
		return
	}
	d.Filtered = d.Submitter != "" || d.State != "" || d.Code != ""
	jobs, err := s.jobs.FindJobs(r.Context(), d.Submitter, d.State, d.Code, before, jobListPage+1)
	if err != nil {
		s.log.Error("jobs page: find jobs", "err", ident.MaskText(err.Error()))
		s.pageError(w, http.StatusInternalServerError, "Could not list jobs", "The job list could not be read; the service log says why.")
		return
	}
	filters := url.Values{}
	for k, v := range map[string]string{"submitter": d.Submitter, "state": string(d.State), "code": string(d.Code)} {
		if v != "" {
			filters.Set(k, v)
		}
	}
	d.Newest = "/jobs" + query(filters)
	if len(jobs) > jobListPage {
		jobs = jobs[:jobListPage]
		older := url.Values{}
		for k, v := range filters {
			older[k] = v
		}
		older.Set("before", jobs[len(jobs)-1].ID)
		d.Older = "/jobs" + query(older)
	}
	d.Paged = before != ""
	now := s.now()
	for _, j := range jobs {
		v := NewJobView(j, now)
		if !finished(v.State) {
			d.Refresh = refreshSeconds
		}
		d.Jobs = append(d.Jobs, v)
	}
	s.render(w, http.StatusOK, "jobs.html", d.Nonce, d)
}

// query is "?" and the encoded values, or "" for none.
func query(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// render executes the named page template into a buffer first, so that a
// failed render is a clean 500, and sends it with headers that keep the
// page out of caches and frames and allow only its own nonce'd style.
func (s *Server) render(w http.ResponseWriter, status int, name, nonce string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("render page", "page", name, "err", ident.MaskText(err.Error()))
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// No script at all; forms only submit to this origin (GET filters).
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'none'; style-src 'nonce-"+nonce+
		"'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// errorData is what error.html shows.
type errorData struct {
	Title, Message string
	Nonce          string
}

// pageError answers with an HTML page saying what went wrong.
func (s *Server) pageError(w http.ResponseWriter, status int, title, message string) {
	d := errorData{Title: title, Message: ident.MaskText(message), Nonce: rand.Text()}
	s.render(w, status, "error.html", d.Nonce, d)
}

// finished reports whether a job in state st is done (completed or
// refused).
func finished(st lessee.JobState) bool {
	return st == lessee.JobCompleted || st == lessee.JobRefused
}

// isOrgNr reports whether s is nine ASCII digits, the shape of an
// organisation number (the filter matches, it does not validate).
func isOrgNr(s string) bool {
	if len(s) != 9 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func joinStates(states []lessee.JobState) string {
	parts := make([]string, len(states))
	for i, st := range states {
		parts[i] = string(st)
	}
	return strings.Join(parts, ", ")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime)
}

func fmtSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func fmtDuration(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	s := (ms + 500) / 1000
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	}
	return fmt.Sprintf("%d h %d min", s/3600, s%3600/60)
}

// fmtCount writes n with thin spaces between thousands (1 000 000), which
// reads in every locale.
func fmtCount(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
