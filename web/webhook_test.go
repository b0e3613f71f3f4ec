package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
	"github.com/fleetreg/lessee/worker"
)

var bearer = "Bearer " + testSecret

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestHookS3OneJobPerUpload posts real MinIO and AWS payloads for uploads
// in the embedded S3 store and checks that each upload is one task, however
// often it is announced and whether or not the inbox scan sees it too.
func TestHookS3OneJobPerUpload(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	ctx := context.Background()

	uploads := []struct {
		name, file, key, auth string
	}{
		{"MinIOPutSpace", "minio-put-space.json", "inbox/912345602/all outcomes 2024.csv", bearer},
		{"MinIOMultipartÆØÅ", "minio-multipart-aeoeaa.json", "inbox/912345602/Bilær øst år.csv", bearer},
		{"AWSPutÆØÅ", "aws-put.json", "inbox/912345602/leasing måned æøå.csv", bearer},
		{"AWSMultipartPlus", "aws-multipart-plus.json", "inbox/912345629/a+b (kopi).csv", bearer},
		{"AWSViaSNS", "aws-sns-notification.json", "inbox/912345637/fra flåtesystem.csv", basic("sns", testSecret)},
	}
	for i, u := range uploads {
		t.Run(u.name, func(t *testing.T) {
			b.upload(t, u.key, fmt.Sprintf("operation;vin\nadd;%d\n", i))
			body := testdata(t, u.file)
			for range 2 { // a redelivered event is no new job
				if rec := b.post(t, "/hooks/s3", u.auth, body); rec.Code != http.StatusNoContent {
					t.Fatalf("status %d, want 204: %s", rec.Code, rec.Body)
				}
			}
			tasks := b.tasks(t)
			if len(tasks) != i+1 {
				t.Fatalf("%d tasks after %d uploads, want one each", len(tasks), i+1)
			}
			info := taskFor(t, tasks, u.key)
			if want := intake.JobID(testBucket, u.key, scanVersionOf(t, b, u.key)); info.ID != want {
				t.Errorf("task id %s, want the scan's job id %s", info.ID, want)
			}
			if info.Queue != worker.QueueSmall || info.Type != worker.TypeIngestFile {
				t.Errorf("task %s in queue %s, want %s in %s", info.Type, info.Queue, worker.TypeIngestFile, worker.QueueSmall)
			}
		})
	}

	n, err := b.intake.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("scan after the events enqueued %d tasks, want 0", n)
	}
	if got := len(b.tasks(t)); got != len(uploads) {
		t.Errorf("%d tasks in all, want %d", got, len(uploads))
	}
}

// TestHookS3ScanFirst checks the other order: the scan enqueues, then the
// event arrives.
func TestHookS3ScanFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	b.upload(t, "inbox/912345602/all outcomes 2024.csv", "operation;vin\n")
	if n, err := b.intake.Scan(context.Background()); err != nil || n != 1 {
		t.Fatalf("scan enqueued %d (%v), want 1", n, err)
	}
	if rec := b.post(t, "/hooks/s3", bearer, testdata(t, "minio-put-space.json")); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := len(b.tasks(t)); got != 1 {
		t.Errorf("%d tasks, want 1", got)
	}
}

func TestHookS3Ignored(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	// Objects exist, so only the event decides that nothing is enqueued.
	b.upload(t, "inbox/912345602/all outcomes 2024.csv", "x")
	b.upload(t, "receipts/912345602/all outcomes 2024.csv.summary.json", "{}")
	b.upload(t, "inbox/912345602/leasing måned æøå.csv", "x")

	for _, file := range []string{
		"minio-delete.json",           // not ObjectCreated
		"minio-put-receipts.json",     // outside inbox/
		"aws-put-other-bucket.json",   // another bucket
		"aws-test-event.json",         // AWS's test message on configuration
		"aws-sns-subscription.json",   // SNS asks for confirmation
		"minio-multipart-aeoeaa.json", // in the inbox but not in the store: gone
	} {
		t.Run(strings.TrimSuffix(file, ".json"), func(t *testing.T) {
			if rec := b.post(t, "/hooks/s3", bearer, testdata(t, file)); rec.Code != http.StatusNoContent {
				t.Fatalf("status %d, want 204: %s", rec.Code, rec.Body)
			}
			if got := len(b.tasks(t)); got != 0 {
				t.Errorf("%d tasks, want 0", got)
			}
		})
	}
	if !strings.Contains(b.logs.String(), "SubscribeURL") || !strings.Contains(b.logs.String(), "Action=ConfirmSubscription") {
		t.Errorf("the SNS subscription URL is not logged for the operator:\n%s", b.logs)
	}
}

func TestHookS3Auth(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	b.upload(t, "inbox/912345602/all outcomes 2024.csv", "x")
	body := testdata(t, "minio-put-space.json")
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"ErrNoHeader", "", http.StatusUnauthorized},
		{"ErrWrongBearer", "Bearer wrong", http.StatusUnauthorized},
		{"ErrSecretPrefix", "Bearer " + testSecret[:5], http.StatusUnauthorized},
		{"ErrSecretSuffix", bearer + "x", http.StatusUnauthorized},
		{"ErrEmptyBearer", "Bearer ", http.StatusUnauthorized},
		{"ErrBasicWrongPassword", basic("sns", "wrong"), http.StatusUnauthorized},
		{"ErrOtherScheme", "Token " + testSecret, http.StatusUnauthorized},
		{"OKBearer", bearer, http.StatusNoContent},
		{"OKBearerLowerCase", "bearer " + testSecret, http.StatusNoContent},
		{"OKBasic", basic("anyone", testSecret), http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := b.post(t, "/hooks/s3", tc.auth, body)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if got := len(b.tasks(t)); got != 1 {
		t.Errorf("%d tasks, want 1 (from the authorised posts only)", got)
	}
	// Each refused delivery is logged, without what the sender sent.
	logs := b.logs.String()
	if n := strings.Count(logs, "delivery refused"); n != 7 {
		t.Errorf("%d refused deliveries logged, want 7:\n%s", n, logs)
	}
	if strings.Contains(logs, testSecret[:5]) || strings.Contains(logs, "wrong") {
		t.Errorf("the log repeats a credential:\n%s", logs)
	}
}

func TestHookS3Disabled(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.upload(t, "inbox/912345602/all outcomes 2024.csv", "x")
	for _, method := range []string{http.MethodPost, http.MethodHead} {
		rec := serve(t, b.mux, method, "/hooks/s3", bearer, testdata(t, "minio-put-space.json"))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404 with no secret configured", method, rec.Code)
		}
	}
	if got := len(b.tasks(t)); got != 0 {
		t.Errorf("%d tasks, want 0", got)
	}
}

func TestHookS3BadRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WebhookSecret: testSecret})
	huge := `{"Records":[` + strings.Repeat(`{"eventName":"x"},`, 80_000) + `{}]}`
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"ErrMalformed", `{"Records":[`, http.StatusBadRequest},
		{"ErrNotJSON", `EventName=s3:ObjectCreated:Put`, http.StatusBadRequest},
		{"ErrRecordsNotList", `{"Records":{"eventName":"ObjectCreated:Put"}}`, http.StatusBadRequest},
		{"ErrSNSMessageNotEvent", `{"Type":"Notification","Message":"not json"}`, http.StatusBadRequest},
		{"ErrTooLarge", huge, http.StatusRequestEntityTooLarge},
		{"OKNoRecords", `{}`, http.StatusNoContent},
		{"OKBadKeyEncoding", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lessee"},"object":{"key":"inbox/912345602/%zz"}}}]}`, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec := b.post(t, "/hooks/s3", bearer, []byte(tc.body)); rec.Code != tc.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
	if rec := serve(t, b.mux, http.MethodHead, "/hooks/s3", "", nil); rec.Code != http.StatusNoContent {
		t.Errorf("HEAD probe: status %d, want 204", rec.Code)
	}
}

// TestHookS3Versioned checks that a version id from HEAD (a versioned
// bucket) does not split one upload into two jobs: the scan lists no
// version ids.
func TestHookS3Versioned(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	key := "inbox/912345602/all outcomes 2024.csv"
	modified := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	head := headerFunc(func(context.Context, string) (lessee.Object, error) {
		return lessee.Object{Key: key, Size: 1843, ETag: "2a6f1d0c3e9b8a7d6c5b4a3928170f1e",
			VersionID: "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY", LastModified: modified}, nil
	})
	srv := New(Config{Bucket: testBucket, WebhookSecret: testSecret}, nil, head, newIntake(head, b.queue, nil), nil, nil)
	mux := http.NewServeMux()
	srv.Routes(mux)
	if rec := serve(t, mux, http.MethodPost, "/hooks/s3", bearer, testdata(t, "minio-put-space.json")); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// What the scan derives from the listing of the same object.
	listed := intake.ObjectVersion("", "2a6f1d0c3e9b8a7d6c5b4a3928170f1e", modified.Add(187*time.Millisecond))
	info := taskFor(t, b.tasks(t), key)
	if want := intake.JobID(testBucket, key, listed); info.ID != want {
		t.Errorf("task id %s, want the scan's %s", info.ID, want)
	}
}

// TestHookS3StoreDown checks that a failing store answers 503, so the
// sender retries, and that the logged error masks identity numbers.
// TestHookS3StoreDown: a record the store fails on is dropped, logged
// (masked) and counted, and the delivery still answers 204: MinIO would
// otherwise retry it for ever, holding every later event behind it.
func TestHookS3StoreDown(t *testing.T) {
	t.Parallel()
	head := headerFunc(func(_ context.Context, key string) (lessee.Object, error) {
		return lessee.Object{}, fmt.Errorf("head %s: connection refused", key)
	})
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	faults := prometheus.NewCounter(prometheus.CounterOpts{Name: "faults"})
	srv := New(Config{Bucket: testBucket, WebhookSecret: testSecret, WebhookFaults: faults}, nil, head, newIntake(head, enqueueFunc(nil), log), nil, log)
	mux := http.NewServeMux()
	srv.Routes(mux)
	body := `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lessee"},"object":{"key":"inbox/912345602/lessee+01017012345.csv"}}},` +
		`{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"lessee"},"object":{"key":"inbox/912345610/other.csv"}}}]}`
	if rec := serve(t, mux, http.MethodPost, "/hooks/s3", bearer, []byte(body)); rec.Code != http.StatusNoContent {
		t.Fatalf("status %d, want 204", rec.Code)
	}
	if n := testutil.ToFloat64(faults); n != 2 {
		t.Errorf("faults counted: %v, want 2", n)
	}
	if !strings.Contains(logs.String(), "record dropped") || !strings.Contains(logs.String(), "other.csv") {
		t.Errorf("log does not name the dropped records:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "01017012345") || !strings.Contains(logs.String(), "*********45") {
		t.Errorf("log does not mask the identity number:\n%s", logs.String())
	}
}

func TestDecodeKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"inbox/912345602/plain.csv", "inbox/912345602/plain.csv"},
		{"inbox%2F912345602%2Fall+outcomes.csv", "inbox/912345602/all outcomes.csv"},
		{"inbox/912345602/all+outcomes.csv", "inbox/912345602/all outcomes.csv"},
		{"inbox/912345602/%C3%A6%C3%B8%C3%A5+%C3%86%C3%98%C3%85.csv", "inbox/912345602/æøå ÆØÅ.csv"},
		{"inbox/912345602/a%2Bb.csv", "inbox/912345602/a+b.csv"},
		{"inbox/912345602/100%25.csv", "inbox/912345602/100%.csv"},
	} {
		got, err := decodeKey(tc.raw)
		if err != nil || got != tc.want {
			t.Errorf("decodeKey(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
	if _, err := decodeKey("inbox/%zz"); err == nil {
		t.Error("decodeKey accepted a broken escape")
	}
}

func FuzzHookS3(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			b, err := os.ReadFile("testdata/" + e.Name())
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	head := headerFunc(func(_ context.Context, key string) (lessee.Object, error) {
		if !strings.HasPrefix(key, objectkey.Inbox) {
			return lessee.Object{}, errors.New("head outside the inbox")
		}
		return lessee.Object{Key: key, ETag: "e"}, nil
	})
	srv := New(Config{Bucket: testBucket, WebhookSecret: testSecret}, nil, head,
		newIntake(head, enqueueFunc(func(task *asynq.Task) error {
			var p worker.IngestPayload
			if err := json.Unmarshal(task.Payload(), &p); err != nil || p.Bucket != testBucket || !strings.HasPrefix(p.Key, objectkey.Inbox) {
				return fmt.Errorf("bad task payload %s", task.Payload())
			}
			return nil
		}), nil), nil, nil)
	mux := http.NewServeMux()
	srv.Routes(mux)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(t, mux, http.MethodPost, "/hooks/s3", bearer, body)
		switch rec.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// taskFor finds the task whose payload names key.
func taskFor(t *testing.T, tasks []*asynq.TaskInfo, key string) *asynq.TaskInfo {
	t.Helper()
	for _, info := range tasks {
		var p worker.IngestPayload
		if err := json.Unmarshal(info.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.Key == key {
			if p.Bucket != testBucket {
				t.Errorf("task for %s names bucket %s", key, p.Bucket)
			}
			return info
		}
	}
	t.Fatalf("no task for %q", key)
	return nil
}

// scanVersionOf lists key the way the inbox scan does and returns the
// version the scan derives.
func scanVersionOf(t *testing.T, b *bundle, key string) string {
	t.Helper()
	var version string
	err := b.objects.List(context.Background(), key, func(o lessee.Object) error {
		if o.Key == key {
			version = intake.ObjectVersion(o.VersionID, o.ETag, o.LastModified)
		}
		return nil
	})
	if err != nil || version == "" {
		t.Fatalf("list %s: %v (found %v)", key, err, version != "")
	}
	return version
}

type headerFunc func(ctx context.Context, key string) (lessee.Object, error)

func (f headerFunc) Head(ctx context.Context, key string) (lessee.Object, error) { return f(ctx, key) }

// List finds nothing: the fake inbox holds no other files.
func (f headerFunc) List(context.Context, string, func(lessee.Object) error) error { return nil }

// Download is never reached by the webhook, which only heads objects.
func (f headerFunc) Download(context.Context, string, string, io.Writer) (lessee.Object, error) {
	return lessee.Object{}, lessee.Errorf(lessee.ENOTFOUND, "not found")
}

// enqueueFunc is an Enqueuer calling fn (nil: accept everything).
type enqueueFunc func(*asynq.Task) error

func (f enqueueFunc) EnqueueContext(_ context.Context, task *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	if f != nil {
		if err := f(task); err != nil {
			return nil, err
		}
	}
	return &asynq.TaskInfo{}, nil
}
