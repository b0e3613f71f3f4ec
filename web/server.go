package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
)

// JobLister reads jobs.
type JobLister interface {
	ListJobs(ctx context.Context, limit int) ([]lessee.Job, error)
	// Job returns an error with code lessee.ENOTFOUND for an unknown id.
	Job(ctx context.Context, id string) (lessee.Job, error)
}

// JobBrowser pages through jobs and through one job's rejected rows, for
// the job list and the job page.
type JobBrowser interface {
	// FindJobs returns up to limit jobs, newest first, matching each
	// filter that is not empty (code: refused with it or rows with it),
	// after the job beforeID in that order when it is not empty.
	FindJobs(ctx context.Context, submitter string, state lessee.JobState, code lessee.Code, beforeID string, limit int) ([]lessee.Job, error)
	// RejectedRows returns up to limit rejected rows of a job after row
	// index after (-1: from the first), in row order, of one code when
	// code is not empty.
	RejectedRows(ctx context.Context, jobID string, code lessee.Code, after, limit int) ([]lessee.Result, error)
}

// Jobs is what the server reads jobs through; *sqlstore.Store is one.
type Jobs interface {
	JobLister
	JobBrowser
}

// Objects reads objects and their metadata. A missing object is an error
// with code lessee.ENOTFOUND.
type Objects interface {
	Head(ctx context.Context, key string) (lessee.Object, error)
	Download(ctx context.Context, key, ifMatchETag string, w io.Writer) (lessee.Object, error)
}

// Intake queues the upload an S3 event names; *intake.Intake satisfies it.
type Intake interface {
	Seen(ctx context.Context, key string) (intake.Sighting, error)
}

var _ Intake = (*intake.Intake)(nil)

// Config configures a Server.
type Config struct {
	// Bucket is the bucket whose inbox/ events are accepted.
	Bucket string
	// WebhookSecret authenticates /hooks/s3; empty disables the webhook.
	WebhookSecret string
	// OperatorUser and OperatorPassword, both set, put the job pages, the
	// API and whatever RequireOperator wraps behind HTTP Basic auth.
	OperatorUser, OperatorPassword string
	// WebhookFaults, if set, counts event records the webhook dropped
	// because it could not queue them (the inbox scan queues them instead).
	WebhookFaults interface{ Inc() }
}

// Server serves the webhook, the job list and metrics.
type Server struct {
	cfg     Config
	jobs    Jobs
	objects Objects
	intake  Intake
	metrics http.Handler
	log     *slog.Logger
	now     func() time.Time // the clock for running jobs' durations
}

// New returns a server. metrics may be nil (no /metrics route); see
// MetricsHandler.
func New(cfg Config, jobs Jobs, objects Objects, in Intake, metrics http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, jobs: jobs, objects: objects, intake: in, metrics: metrics, log: log, now: time.Now}
}

// Routes registers the server's routes on mux.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /hooks/s3", s.hookS3)
	// MinIO probes a webhook target with HEAD before it sends events.
	mux.HandleFunc("HEAD /hooks/s3", s.hookS3Probe)
	mux.Handle("GET /api/jobs", s.RequireOperator(http.HandlerFunc(s.apiJobs)))
	mux.Handle("GET /api/jobs/{id}", s.RequireOperator(http.HandlerFunc(s.apiJob)))
	mux.Handle("GET /api/jobs/{id}/receipt", s.RequireOperator(s.receiptFile(receiptCSV)))
	mux.Handle("GET /api/jobs/{id}/receipt.xlsx", s.RequireOperator(s.receiptFile(receiptXLSX)))
	mux.Handle("GET /api/jobs/{id}/summary", s.RequireOperator(s.receiptFile(receiptSummary)))
	mux.Handle("GET /jobs", s.RequireOperator(http.HandlerFunc(s.jobsPage)))
	mux.Handle("GET /jobs/{id}", s.RequireOperator(http.HandlerFunc(s.jobPage)))
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
}

// RequireOperator wraps h in HTTP Basic auth when an operator user and
// password are configured, and returns h as it is otherwise.
func (s *Server) RequireOperator(h http.Handler) http.Handler {
	if s.cfg.OperatorUser == "" || s.cfg.OperatorPassword == "" {
		return h
	}
	wantUser := sha256.Sum256([]byte(s.cfg.OperatorUser))
	wantPass := sha256.Sum256([]byte(s.cfg.OperatorPassword))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		// Compare fixed-size hashes so neither length nor content leaks
		// through timing; evaluate both before deciding.
		u := sha256.Sum256([]byte(user))
		p := sha256.Sum256([]byte(pass))
		match := subtle.ConstantTimeCompare(u[:], wantUser[:]) & subtle.ConstantTimeCompare(p[:], wantPass[:])
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="lessee operator", charset="UTF-8"`)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "operator authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// secretEqual compares got with the configured secret in constant time.
func secretEqual(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
