package bench

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fleetreg/lessee/api"
	"github.com/fleetreg/lessee/apiauth"
	"github.com/fleetreg/lessee/gen"
	"github.com/fleetreg/lessee/internal/slogmask"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/storage/sqlstore/sqlstoretest"
)

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	p50, p95, p99, top := percentiles(lat)
	if p50 != 50*time.Millisecond || p95 != 95*time.Millisecond || p99 != 99*time.Millisecond || top != 100*time.Millisecond {
		t.Errorf("percentiles = %s %s %s %s, want 50ms 95ms 99ms 100ms", p50, p95, p99, top)
	}
	if a, b, c, d := percentiles(nil); a+b+c+d != 0 {
		t.Errorf("percentiles(nil) = %s %s %s %s", a, b, c, d)
	}
}

func TestStatCPU(t *testing.T) {
	t.Parallel()
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
	line := []byte("4242 (postgres) S 1 4242 4242 0 -1 4194560 100 200 0 0 150 50 1000 300 20 0 1 0 100 0\n")
	if name, cpu := statCPU(line, false); name != "postgres" || cpu != 2*time.Second {
		t.Errorf("statCPU = %q %s, want postgres 2s", name, cpu)
	}
	if _, cpu := statCPU(line, true); cpu != 15*time.Second {
		t.Errorf("statCPU with children = %s, want 15s", cpu)
	}
	if name, _ := statCPU([]byte("7 (a) b) S 1 2 3"), false); name != "a) b" {
		t.Errorf("a command with a parenthesis: %q", name)
	}
}

// benchAuth is the API's Authenticator over an apiauth.Validator, as
// `lessee serve` wires it.
type benchAuth struct{ v *apiauth.Validator }

func (a benchAuth) Authenticate(ctx context.Context, authorization string) (string, error) {
	p, err := a.v.Validate(ctx, authorization)
	if err != nil {
		return "", api.ErrUnauthenticated
	}
	return p.OrgNr, nil
}

// BenchmarkAPIPath serves the single-change API in process, wired as
// `lessee serve` wires it (the development issuer's tokens, the JSON log
// to a file, metrics, the store's pool of 20 with 5 idle), on PostgreSQL
// and drives it with `lessee bench --api`'s closed loop of
// LESSEE_BENCH_CLIENTS clients (default 16) for LESSEE_BENCH_SECONDS
// (default 10), for `go test -cpuprofile`: the API's own CPU and the
// bench client's in one profile, without the process boundary.
func BenchmarkAPIPath(b *testing.B) {
	clients, seconds := 16, 10
	if n, err := strconv.Atoi(os.Getenv("LESSEE_BENCH_CLIENTS")); err == nil {
		clients = n
	}
	if n, err := strconv.Atoi(os.Getenv("LESSEE_BENCH_SECONDS")); err == nil {
		seconds = n
	}
	ctx := context.Background()
	dir := b.TempDir()
	regDir := filepath.Join(dir, "registry")
	reg, err := gen.WriteRegistry(regDir, gen.RegistryConfig{Seed: 1, Enterprises: 50, Vehicles: 100000})
	if err != nil {
		b.Fatal(err)
	}
	url := sqlstoretest.PostgresURL(b)
	if err := importRegistry(ctx, url, regDir); err != nil {
		b.Fatal(err)
	}
	s, err := sqlstore.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	s.SetPool(20, 5, 30*time.Minute)
	dev, err := apiauth.LoadOrCreateDevIssuer(dir, apiauth.DefaultDevIssuer, apiauth.DefaultAudience)
	if err != nil {
		b.Fatal(err)
	}
	v, err := apiauth.NewValidator(ctx, apiauth.Config{Issuer: apiauth.DefaultDevIssuer, Audience: apiauth.DefaultAudience,
		Scope: apiauth.DefaultScope}, dev.PublicKeys())
	if err != nil {
		b.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		b.Fatal(err)
	}
	metrics := api.NewMetrics(prometheus.NewRegistry())
	srv := api.New(s, benchAuth{v}, api.Config{Location: oslo, Metrics: metrics},
		slog.New(slogmask.New(slog.NewJSONHandler(logf, nil))))
	mux := http.NewServeMux()
	srv.Routes(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	fleet := reg.LargestFleet()
	ab := &apiBench{cfg: APIConfig{Clients: []int{clients}, ContentionClients: 1}, applied: map[string]appliedChange{}}
	var pool []*apiVehicle
	for i := range reg.Vehicles {
		for _, p := range reg.Vehicles[i].Periods {
			ab.lessees = append(ab.lessees, p.LesseeID)
		}
		if reg.Vehicles[i].Owner == fleet {
			pool = append(pool, newAPIVehicle(&reg.Vehicles[i]))
		}
	}
	if err := ab.connect(ln.Addr().String(), dir, fleet, ab.cfg); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		r := ab.closedLoop(ctx, clients, time.Duration(seconds)*time.Second, pool)
		if r.Unexpected > 0 {
			b.Fatalf("%d unexpected answers, first %s", r.Unexpected, r.FirstUnexpected)
		}
		b.ReportMetric(r.ChangesPerSec(), "changes/s")
		b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99-ms")
		// How many changes shared a transaction, on average.
		var m dto.Metric
		if err := metrics.Grouped.Write(&m); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(m.Histogram.GetSampleSum()/float64(max(1, m.Histogram.GetSampleCount())), "changes/tx")
	}
}

// TestVerifyAPI checks that the database check finds what it is for: an
// applied answer without its audit entry or period (lost), an audit entry
// no answer names (doubled), and overlapping periods.
func TestVerifyAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := sqlstoretest.PostgresURL(t)
	s, err := sqlstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	for _, q := range []string{
		// The database would refuse the overlapping periods the check
		// must find: it is for a schema without that constraint too.
		`ALTER TABLE lessee_periods DROP CONSTRAINT lessee_periods_no_overlap`,
		`INSERT INTO audit_log (change_id, job_id, row_line, submitter, on_behalf_of, file_key, operation, vin, created_at, source) VALUES
			('api-a-0', 'api-a', 2, '1', '1', 'api', 'add', 'V1', 'now', 'api'),
			('api-b-0', 'api-b', 2, '1', '1', 'api', 'remove', 'V1', 'now', 'api'),
			('api-x-0', 'api-x', 2, '1', '1', 'api', 'add', 'V2', 'now', 'api'),
			('file-0', 'job', 2, '1', '1', 'inbox/1/f.csv', 'add', 'V2', 'now', 'file')`,
		`INSERT INTO lessee_periods (id, vin, lessee_id, start_date, end_date) VALUES
			('import-1', 'V1', 'L1', '2025-01-01', '2026-01-10'),
			('api-a-0', 'V1', 'L2', '2026-01-05', NULL),
			('import-2', 'V2', 'L3', '2025-01-01', '2025-02-01'),
			('api-x-0', 'V2', 'L3', '2025-02-01', NULL)`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	applied := map[string]appliedChange{
		"api-a-0": {vin: "V1", add: true},
		"api-b-0": {vin: "V1"},
		"api-c-0": {vin: "V2", add: true}, // no audit entry, no period
	}
	c, err := verifyAPI(ctx, db, applied, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Lost: api-c-0's audit entry and its period. Doubled: api-x-0's audit
	// entry. Periods: 4 found, as many as 2 imported + 2 added (api-x-0's
	// stands in for api-c-0's, which the per-answer check catches).
	// Overlaps: api-a-0 begins before import-1 ends.
	want := APICheck{Applied: 3, Audit: 3, Lost: 2, Doubled: 1, Periods: 4, WantPeriods: 4, Overlaps: 1}
	c.First = ""
	if c != want {
		t.Errorf("whole schema: %+v, want %+v", c, want)
	}
	c, err = verifyAPI(ctx, db, map[string]appliedChange{"api-b-0": {vin: "V2"}}, 1, []string{"V2"})
	if err != nil {
		t.Fatal(err)
	}
	// On V2: api-x-0 named by no answer (doubled), api-b-0's entry is on
	// V1 (lost), one period more than imported (doubled).
	want = APICheck{Applied: 1, Audit: 1, Lost: 1, Doubled: 2, Periods: 2, WantPeriods: 1}
	if c.First == "" {
		t.Error("no first problem named")
	}
	c.First = ""
	if c != want {
		t.Errorf("on V2: %+v, want %+v", c, want)
	}
}
