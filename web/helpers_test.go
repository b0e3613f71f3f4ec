package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/storage/s3store"
	"github.com/fleetreg/lessee/worker"
)

const (
	testBucket = "lessee"
	testSecret = "s3cr3t-webhook-token"
)

// bundle is a server over real components: miniredis with a real asynq
// client, the embedded S3 server with the real S3 client.
type bundle struct {
	srv     *Server
	mux     *http.ServeMux
	objects *s3store.Client
	queue   *asynq.Client
	insp    *asynq.Inspector
	intake  *intake.Intake
	logs    *bytes.Buffer
}

// setup starts the components; cfg's Bucket is filled in.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	ctx := context.Background()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	mr := miniredis.RunT(t)
	redisOpt := asynq.RedisClientOpt{Addr: mr.Addr()}
	queue := asynq.NewClient(redisOpt)
	t.Cleanup(func() { queue.Close() })
	insp := asynq.NewInspector(redisOpt)
	t.Cleanup(func() { insp.Close() })

	s3srv, err := s3store.NewServer(s3store.ServerConfig{Dir: t.TempDir(), Bucket: testBucket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s3srv.Handler())
	t.Cleanup(ts.Close)
	objects, err := s3store.NewClient(ctx, s3store.Config{Endpoint: ts.URL, AccessKey: "k", SecretKey: "s", Bucket: testBucket})
	if err != nil {
		t.Fatal(err)
	}

	cfg.Bucket = testBucket
	in := newIntake(objects, queue, log)
	srv := New(cfg, nil, objects, in, nil, log)
	mux := http.NewServeMux()
	srv.Routes(mux)
	return &bundle{srv: srv, mux: mux, objects: objects, queue: queue, insp: insp, logs: logs, intake: in}
}

// newIntake is the service's intake over objects, queueing with client as
// the worker's Queue does.
func newIntake(objects intake.Objects, client interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}, log *slog.Logger) *intake.Intake {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	queue := worker.NewQueue(client, worker.DefaultOptions(), log)
	return intake.New(objects, queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: intake.DefaultMaxPerSubmitter}, log)
}

// upload stores body at key.
func (b *bundle) upload(t *testing.T, key, body string) {
	t.Helper()
	if err := b.objects.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), "text/csv"); err != nil {
		t.Fatalf("upload %s: %v", key, err)
	}
}

// tasks returns every task in every queue, sorted by key.
func (b *bundle) tasks(t *testing.T) []*asynq.TaskInfo {
	t.Helper()
	queues, err := b.insp.Queues()
	if err != nil {
		t.Fatal(err)
	}
	var all []*asynq.TaskInfo
	for _, q := range queues {
		pending, err := b.insp.ListPendingTasks(q)
		if err != nil {
			t.Fatalf("list %s: %v", q, err)
		}
		all = append(all, pending...)
	}
	sort.Slice(all, func(i, j int) bool { return string(all[i].Payload) < string(all[j].Payload) })
	return all
}

// post sends body to path with the given Authorization header (none when
// empty) and returns the response.
func (b *bundle) post(t *testing.T, path, auth string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	return serve(t, b.mux, http.MethodPost, path, auth, body)
}

func serve(t *testing.T, h http.Handler, method, path, auth string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
