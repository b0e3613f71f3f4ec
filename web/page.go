package web

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed jobs.html
var jobsHTML string

// jobsTemplate is parsed once; html/template escapes every value by
// context, so a hostile file name stays text.
var jobsTemplate = template.Must(template.New("jobs").Funcs(template.FuncMap{
	"fmtTime":     fmtTime,
	"fmtSize":     fmtSize,
	"fmtDuration": fmtDuration,
	"percent":     func(p float64) string { return fmt.Sprintf("%d%%", int(p*100)) },
	"topCodes":    topCodes,
	"modeLabel":   ModeLabel,
}).Parse(jobsHTML))

type pageData struct {
	Jobs  []JobView
	Limit int
	Nonce string // CSP nonce of the inline style and script
}

// jobsPage serves GET /jobs: the job list as HTML. The inline script polls
// /api/jobs and redraws the rows with DOM text nodes only.
func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	limit, err := parseLimit(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	views, err := s.jobViews(r.Context(), limit)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	data := pageData{Jobs: views, Limit: limit, Nonce: rand.Text()}
	var buf bytes.Buffer
	if err := jobsTemplate.Execute(&buf, data); err != nil {
		s.log.Error("jobs page: render", "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+data.Nonce+"'; style-src 'nonce-"+data.Nonce+
		"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = buf.WriteTo(w)
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
	if s < 60 {
		return fmt.Sprintf("%d s", s)
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}

// topCodes names the three most frequent row codes.
func topCodes(codes []CodeCount) string {
	parts := make([]string, 0, 3)
	for i, c := range codes {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", c.Code, c.Count))
	}
	return strings.Join(parts, ", ")
}
