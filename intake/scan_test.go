package intake_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/intake"
	"github.com/fleetreg/lessee/objectkey"
)

const testBucket = "lessee"

// Submitters with valid organisation numbers, and folders below inbox/
// that name no valid submitter (a wrong check digit, not digits).
const (
	subA      = "912345602"
	subB      = "923609016"
	subC      = "974760673"
	badCheck  = "910000001"
	notDigits = "acme"
)

var errBoom = errors.New("boom")

// base is the modification time the test objects count from.
var base = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// at is base plus sec seconds and ms milliseconds: listings report
// milliseconds, HEAD whole seconds.
func at(sec, ms int) time.Time {
	return base.Add(time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond)
}

// obj is a stored object at key modified at t, as a listing reports it.
func obj(key string, t time.Time) lessee.Object {
	return lessee.Object{Key: key, Size: int64(100 + len(key)), ETag: fmt.Sprintf("%032x", len(key)*7919+int(t.UnixMilli()%7919)), LastModified: t}
}

// memObjects is an in-memory Objects: List walks keys in order, as S3
// does, with milliseconds; Head reports whole seconds in GMT and a version
// id, as S3 does for a versioned bucket, and an ENOTFOUND error for a
// missing key.
type memObjects struct {
	mu      sync.Mutex
	objs    map[string]lessee.Object
	heads   int
	lists   int
	headErr map[string]error // by key
	listErr error            // every List fails with it
	// failLists makes the next failLists Lists fail with errBoom.
	failLists int
	// listAll makes List ignore its prefix, as a careless store might, so
	// that the scan's own filter is what keeps other keys out.
	listAll bool
}

var _ intake.Objects = (*memObjects)(nil)

func newObjects(objs ...lessee.Object) *memObjects {
	m := &memObjects{objs: map[string]lessee.Object{}, headErr: map[string]error{}}
	for _, o := range objs {
		m.objs[o.Key] = o
	}
	return m
}

func (m *memObjects) List(ctx context.Context, prefix string, fn func(lessee.Object) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	m.mu.Lock()
	m.lists++
	if m.failLists > 0 {
		m.failLists--
		m.mu.Unlock()
		return fmt.Errorf("list %s: %w", prefix, errBoom)
	}
	if m.listErr != nil {
		m.mu.Unlock()
		return fmt.Errorf("list %s: %w", prefix, m.listErr)
	}
	var objs []lessee.Object
	for k, o := range m.objs {
		if m.listAll || strings.HasPrefix(k, prefix) {
			objs = append(objs, o)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(objs, func(a, b lessee.Object) int { return strings.Compare(a.Key, b.Key) })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

func (m *memObjects) Head(ctx context.Context, key string) (lessee.Object, error) {
	if err := ctx.Err(); err != nil {
		return lessee.Object{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.heads++
	if err := m.headErr[key]; err != nil {
		return lessee.Object{}, err
	}
	o, ok := m.objs[key]
	if !ok {
		return lessee.Object{}, lessee.Errorf(lessee.ENOTFOUND, "head %s: no such key", key)
	}
	return headed(o), nil
}

// headed is o as HEAD reports it.
func headed(o lessee.Object) lessee.Object {
	o.LastModified = o.LastModified.Truncate(time.Second).In(time.FixedZone("GMT", 0))
	o.VersionID = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY." + o.ETag[:6]
	return o
}

func (m *memObjects) remove(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
}

func (m *memObjects) headCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heads
}

// memQueue is an in-memory Queue: it records uploads in order, reports
// false for one whose job it holds already and fails for chosen keys.
type memQueue struct {
	mu     sync.Mutex
	queued []lessee.Upload
	ids    map[string]bool
	fail   map[string]error // by key
	calls  int
	// after is called, outside the lock, after every Enqueue.
	after func(lessee.Upload)
}

var _ intake.Queue = (*memQueue)(nil)

func newQueue() *memQueue {
	return &memQueue{ids: map[string]bool{}, fail: map[string]error{}}
}

func (q *memQueue) Enqueue(ctx context.Context, u lessee.Upload) (bool, error) {
	ok, err := q.enqueue(u)
	if q.after != nil {
		q.after(u)
	}
	return ok, err
}

func (q *memQueue) enqueue(u lessee.Upload) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if err := q.fail[u.Key]; err != nil {
		return false, fmt.Errorf("enqueue %s: %w", u.Key, err)
	}
	id := intake.JobID(u.Bucket, u.Key, u.Version)
	if q.ids[id] {
		return false, nil
	}
	q.ids[id] = true
	q.queued = append(q.queued, u)
	return true, nil
}

// seed makes the queue hold the jobs of objs already, as if queued by an
// earlier scan.
func (q *memQueue) seed(objs ...lessee.Object) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range objs {
		u := intake.UploadOf(testBucket, o)
		q.ids[intake.JobID(u.Bucket, u.Key, u.Version)] = true
	}
}

// keys returns the keys queued, in order.
func (q *memQueue) keys() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var keys []string
	for _, u := range q.queued {
		keys = append(keys, u.Key)
	}
	return keys
}

// recoveringQueue is a memQueue with the Recoverer capability.
type recoveringQueue struct {
	*memQueue
	results   map[string]recoverResult // by key; absent: (false, nil)
	recovered []string                 // keys Recover was called for
}

type recoverResult struct {
	ok  bool
	err error
}

var _ intake.Recoverer = (*recoveringQueue)(nil)

func (q *recoveringQueue) Recover(ctx context.Context, u lessee.Upload) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.recovered = append(q.recovered, u.Key)
	r := q.results[u.Key]
	if r.ok {
		q.queued = append(q.queued, u)
	}
	return r.ok, r.err
}

func newIntake(tb testing.TB, objects intake.Objects, queue intake.Queue, maxPerSubmitter int) *intake.Intake {
	tb.Helper()
	return intake.New(objects, queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: maxPerSubmitter}, slog.New(slog.DiscardHandler))
}

// faultCount is an intake.Counter.
type faultCount int

func (c *faultCount) Inc() { *c++ }

// inbox is the key of submitter's upload called name.
func inbox(submitter, name string) string { return "inbox/" + submitter + "/" + name }

func TestScan(t *testing.T) {
	t.Parallel()
	a := func(name string) string { return inbox(subA, name) }
	b := func(name string) string { return inbox(subB, name) }
	c := func(name string) string { return inbox(subC, name) }
	for _, tt := range []struct {
		name    string
		objs    []lessee.Object
		max     int
		listAll bool
		want    []string // keys queued, in order
	}{
		{
			// Submitters take turns in the key order of their folders,
			// each with its oldest file first: C's file from before A's
			// still waits for A's first, and B's one file is not queued
			// after all of A's.
			name: "OKRoundRobin",
			objs: []lessee.Object{
				obj(a("1.csv"), at(1, 0)), obj(a("2.csv"), at(2, 0)), obj(a("3.csv"), at(3, 0)),
				obj(b("1.csv"), at(10, 0)),
				obj(c("1.csv"), at(0, 0)), obj(c("2.csv"), at(5, 0)),
			},
			max:  4,
			want: []string{a("1.csv"), b("1.csv"), c("1.csv"), a("2.csv"), c("2.csv"), a("3.csv")},
		},
		{
			// By modification time to the second, then by key: d.csv is
			// 800 ms older than b.csv but in the same second.
			name: "OKOldestFirst",
			objs: []lessee.Object{
				obj(a("a.csv"), at(30, 500)), obj(a("b.csv"), at(10, 900)),
				obj(a("c.csv"), at(20, 0)), obj(a("d.csv"), at(10, 100)),
			},
			max:  4,
			want: []string{a("b.csv"), a("d.csv"), a("c.csv"), a("a.csv")},
		},
		{
			name: "OKCapPerSubmitter",
			objs: []lessee.Object{
				obj(a("6.csv"), at(6, 0)), obj(a("5.csv"), at(5, 0)), obj(a("4.csv"), at(4, 0)),
				obj(a("3.csv"), at(3, 0)), obj(a("2.csv"), at(2, 0)), obj(a("1.csv"), at(1, 0)),
				obj(b("1.csv"), at(9, 0)),
			},
			max:  2,
			want: []string{a("1.csv"), b("1.csv"), a("2.csv")},
		},
		{
			name: "OKNoCap",
			objs: []lessee.Object{
				obj(a("6.csv"), at(6, 0)), obj(a("5.csv"), at(5, 0)), obj(a("4.csv"), at(4, 0)),
				obj(a("3.csv"), at(3, 0)), obj(a("2.csv"), at(2, 0)), obj(a("1.csv"), at(1, 0)),
			},
			max:  0,
			want: []string{a("1.csv"), a("2.csv"), a("3.csv"), a("4.csv"), a("5.csv"), a("6.csv")},
		},
		{
			// Folder markers and keys outside inbox/ are no uploads, even
			// from a store that lists more than the prefix asked for.
			name: "OKIgnoresMarkersAndOtherKeys",
			objs: []lessee.Object{
				obj("inbox/", at(0, 0)), obj(inbox(subA, ""), at(0, 0)), obj(a("sub/"), at(0, 0)),
				obj("receipts/"+subA+"/x.csv.receipt.csv", at(0, 0)), obj("archive/"+subA+"/y.csv", at(0, 0)),
				obj("failed/"+subA+"/z.csv", at(0, 0)), obj("inboxes/"+subA+"/w.csv", at(0, 0)),
				obj(a("x.csv"), at(5, 0)),
			},
			max:     1,
			listAll: true,
			want:    []string{a("x.csv")},
		},
		{
			// Keys that name no valid submitter share one lane, and its cap.
			name: "OKNoSubmitterSharesOneLane",
			objs: []lessee.Object{
				obj(inbox(badCheck, "a.csv"), at(3, 0)),
				obj(inbox(notDigits, "b.csv"), at(1, 0)),
				obj("inbox/loose.csv", at(2, 0)),
				obj(a("x.csv"), at(9, 0)),
			},
			max:  2,
			want: []string{inbox(notDigits, "b.csv"), a("x.csv"), "inbox/loose.csv"},
		},
		{
			// A key in a sub-folder still belongs to its submitter's lane.
			name: "OKSubFolderInSubmitterLane",
			objs: []lessee.Object{
				obj(a("a.csv"), at(1, 0)), obj(a("sub/b.csv"), at(2, 0)), obj(a("c.csv"), at(3, 0)),
			},
			max:  2,
			want: []string{a("a.csv"), a("sub/b.csv")},
		},
		{
			name: "OKEmpty",
			objs: []lessee.Object{obj("receipts/"+subA+"/x.csv.receipt.csv", at(0, 0))},
			max:  4,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objects, queue := newObjects(tt.objs...), newQueue()
			objects.listAll = tt.listAll
			n, err := newIntake(t, objects, queue, tt.max).Scan(t.Context())
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if got := queue.keys(); !slices.Equal(got, tt.want) {
				t.Errorf("queued\n%q\nwant\n%q", got, tt.want)
			}
			if n != len(tt.want) {
				t.Errorf("Scan = %d, want %d", n, len(tt.want))
			}
			for _, u := range queue.queued {
				o := tt.objs[slices.IndexFunc(tt.objs, func(o lessee.Object) bool { return o.Key == u.Key })]
				if want := intake.UploadOf(testBucket, o); u != want {
					t.Errorf("queued %+v, want %+v", u, want)
				}
			}
		})
	}
}

func TestScanRepeat(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		objects := newObjects(
			obj(inbox(subA, "1.csv"), at(1, 0)), obj(inbox(subA, "2.csv"), at(2, 0)),
			obj(inbox(subA, "3.csv"), at(3, 0)), obj(inbox(subB, "1.csv"), at(4, 0)),
		)
		queue := newQueue()
		in := newIntake(t, objects, queue, 2)
		if n, err := in.Scan(t.Context()); err != nil || n != 3 {
			t.Fatalf("first Scan = %d, %v; want 3, nil", n, err)
		}
		calls := queue.calls
		if n, err := in.Scan(t.Context()); err != nil || n != 0 {
			t.Fatalf("repeat Scan = %d, %v; want 0, nil", n, err)
		}
		if got := len(queue.queued); got != 3 {
			t.Errorf("repeat Scan queued %d more", got-3)
		}
		if queue.calls != 2*calls {
			t.Errorf("repeat Scan offered %d files, want the same %d again", queue.calls-calls, calls)
		}
	})
	t.Run("OKNextAfterFinish", func(t *testing.T) {
		t.Parallel()
		// A finished file leaves the inbox, which frees its place under
		// the cap for the submitter's next file.
		objects := newObjects(
			obj(inbox(subA, "1.csv"), at(1, 0)), obj(inbox(subA, "2.csv"), at(2, 0)),
			obj(inbox(subA, "3.csv"), at(3, 0)),
		)
		queue := newQueue()
		in := newIntake(t, objects, queue, 2)
		if n, err := in.Scan(t.Context()); err != nil || n != 2 {
			t.Fatalf("first Scan = %d, %v; want 2, nil", n, err)
		}
		objects.remove(inbox(subA, "1.csv"))
		if n, err := in.Scan(t.Context()); err != nil || n != 1 {
			t.Fatalf("Scan after a file finished = %d, %v; want 1, nil", n, err)
		}
		want := []string{inbox(subA, "1.csv"), inbox(subA, "2.csv"), inbox(subA, "3.csv")}
		if got := queue.keys(); !slices.Equal(got, want) {
			t.Errorf("queued %q, want %q", got, want)
		}
	})
}

func TestScanQueueError(t *testing.T) {
	t.Parallel()
	objs := []lessee.Object{
		obj(inbox(subA, "1.csv"), at(1, 0)), obj(inbox(subA, "2.csv"), at(2, 0)),
		obj(inbox(subB, "1.csv"), at(3, 0)), obj(inbox(subC, "1.csv"), at(4, 0)),
	}
	for _, tt := range []struct {
		name string
		fail []string
		want []string
	}{
		{
			name: "ErrFirstFile",
			fail: []string{inbox(subA, "1.csv")},
			want: []string{inbox(subB, "1.csv"), inbox(subC, "1.csv"), inbox(subA, "2.csv")},
		},
		{
			name: "ErrLastFile",
			fail: []string{inbox(subA, "2.csv")},
			want: []string{inbox(subA, "1.csv"), inbox(subB, "1.csv"), inbox(subC, "1.csv")},
		},
		{
			name: "ErrTwoFiles",
			fail: []string{inbox(subA, "1.csv"), inbox(subC, "1.csv")},
			want: []string{inbox(subB, "1.csv"), inbox(subA, "2.csv")},
		},
		{
			name: "ErrEveryFile",
			fail: []string{inbox(subA, "1.csv"), inbox(subA, "2.csv"), inbox(subB, "1.csv"), inbox(subC, "1.csv")},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			queue := newQueue()
			for _, k := range tt.fail {
				queue.fail[k] = errBoom
			}
			var faults faultCount
			in := intake.New(newObjects(objs...), queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: 4, Faults: &faults}, slog.New(slog.DiscardHandler))
			n, err := in.Scan(t.Context())
			if !errors.Is(err, errBoom) {
				t.Fatalf("Scan error = %v, want %v", err, errBoom)
			}
			if int(faults) != len(tt.fail) {
				t.Errorf("faults counted %d, want %d", faults, len(tt.fail))
			}
			for _, k := range tt.fail {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("Scan error %q does not name %s", err, k)
				}
			}
			if n != len(tt.want) {
				t.Errorf("Scan = %d, want the %d others", n, len(tt.want))
			}
			if got := queue.keys(); !slices.Equal(got, tt.want) {
				t.Errorf("queued %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScanListError(t *testing.T) {
	t.Parallel()
	objects, queue := newObjects(obj(inbox(subA, "1.csv"), at(1, 0))), newQueue()
	objects.listErr = errBoom
	var faults faultCount
	in := intake.New(objects, queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: 4, Faults: &faults}, slog.New(slog.DiscardHandler))
	n, err := in.Scan(t.Context())
	if !errors.Is(err, errBoom) || n != 0 || int(faults) != len(objectkey.Sources) {
		t.Fatalf("Scan = %d, %v, %d faults; want 0, %v, %d", n, err, faults, errBoom, len(objectkey.Sources))
	}
	if queue.calls != 0 {
		t.Errorf("Scan offered %d files after a failed listing", queue.calls)
	}
}

// TestScanOnePrefixFails: the inbox cannot be listed, and the files under
// the other upload prefixes are queued all the same.
func TestScanOnePrefixFails(t *testing.T) {
	t.Parallel()
	snap := "snapshot/" + subA + "/fleet.csv"
	dry := "dryrun/" + subB + "/changes.csv"
	objects := newObjects(obj(inbox(subA, "1.csv"), at(1, 0)), obj(snap, at(2, 0)), obj(dry, at(3, 0)))
	objects.failLists = 1 // the first listing, inbox/
	queue := newQueue()
	var faults faultCount
	in := intake.New(objects, queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: 4, Faults: &faults}, slog.New(slog.DiscardHandler))
	n, err := in.Scan(t.Context())
	if !errors.Is(err, errBoom) || n != 2 || faults != 1 {
		t.Fatalf("Scan = %d, %v, %d faults; want 2, %v, 1", n, err, faults, errBoom)
	}
	if got, want := queue.keys(), []string{snap, dry}; !slices.Equal(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}
}

func TestScanRecover(t *testing.T) {
	t.Parallel()
	a1, a2 := obj(inbox(subA, "1.csv"), at(1, 0)), obj(inbox(subA, "2.csv"), at(2, 0))
	for _, tt := range []struct {
		name          string
		seed          []lessee.Object // tasks that exist already
		fail          map[string]error
		results       map[string]recoverResult
		wantN         int
		wantRecovered []string
		wantErr       error
	}{
		{
			name:  "OKNewNotRecovered",
			wantN: 2,
		},
		{
			name:          "OKExistsRecovered",
			seed:          []lessee.Object{a1},
			results:       map[string]recoverResult{a1.Key: {ok: true}},
			wantN:         2,
			wantRecovered: []string{a1.Key},
		},
		{
			name:          "OKExistsLeftAlone",
			seed:          []lessee.Object{a1},
			wantN:         1,
			wantRecovered: []string{a1.Key},
		},
		{
			name:          "OKBothExist",
			seed:          []lessee.Object{a1, a2},
			results:       map[string]recoverResult{a2.Key: {ok: true}},
			wantN:         1,
			wantRecovered: []string{a1.Key, a2.Key},
		},
		{
			name:    "ErrEnqueueNotRecovered",
			fail:    map[string]error{a1.Key: errBoom},
			wantN:   1,
			wantErr: errBoom,
		},
		{
			name:          "ErrRecover",
			seed:          []lessee.Object{a1},
			results:       map[string]recoverResult{a1.Key: {err: errBoom}},
			wantN:         1,
			wantRecovered: []string{a1.Key},
			wantErr:       errBoom,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			queue := &recoveringQueue{memQueue: newQueue(), results: tt.results}
			queue.seed(tt.seed...)
			for k, err := range tt.fail {
				queue.fail[k] = err
			}
			n, err := newIntake(t, newObjects(a1, a2), queue, 4).Scan(t.Context())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Scan error = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantN {
				t.Errorf("Scan = %d, want %d", n, tt.wantN)
			}
			if !slices.Equal(queue.recovered, tt.wantRecovered) {
				t.Errorf("Recover called for %q, want %q", queue.recovered, tt.wantRecovered)
			}
		})
	}
}

func TestScanCancel(t *testing.T) {
	t.Parallel()
	objs := []lessee.Object{
		obj(inbox(subA, "1.csv"), at(1, 0)), obj(inbox(subB, "1.csv"), at(2, 0)),
		obj(inbox(subC, "1.csv"), at(3, 0)),
	}
	t.Run("ErrCanceledBefore", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		queue := newQueue()
		n, err := newIntake(t, newObjects(objs...), queue, 4).Scan(ctx)
		if !errors.Is(err, context.Canceled) || n != 0 {
			t.Fatalf("Scan = %d, %v; want 0, %v", n, err, context.Canceled)
		}
		if queue.calls != 0 {
			t.Errorf("a canceled Scan offered %d files", queue.calls)
		}
	})
	t.Run("ErrCanceledMidway", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		queue := newQueue()
		queue.after = func(lessee.Upload) { cancel() }
		n, err := newIntake(t, newObjects(objs...), queue, 4).Scan(ctx)
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Fatalf("Scan = %d, %v; want 1, %v", n, err, context.Canceled)
		}
		if queue.calls != 1 {
			t.Errorf("Scan offered %d files after the context was canceled", queue.calls-1)
		}
	})
	t.Run("ErrCanceledKeepsFileErrors", func(t *testing.T) {
		t.Parallel()
		// The error of a file tried before the cancellation is still
		// returned with it.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		queue := newQueue()
		queue.fail[objs[0].Key] = errBoom
		queue.after = func(u lessee.Upload) {
			if u.Key == objs[1].Key {
				cancel()
			}
		}
		n, err := newIntake(t, newObjects(objs...), queue, 4).Scan(ctx)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) || n != 1 {
			t.Fatalf("Scan = %d, %v; want 1 and both %v and %v", n, err, context.Canceled, errBoom)
		}
	})
}

func TestSeen(t *testing.T) {
	t.Parallel()
	// A's five files, the fifth with four older ones; B's one.
	objs := []lessee.Object{
		obj(inbox(subA, "1.csv"), at(1, 250)), obj(inbox(subA, "2.csv"), at(2, 0)),
		obj(inbox(subA, "3.csv"), at(3, 999)), obj(inbox(subA, "4.csv"), at(4, 1)),
		obj(inbox(subA, "5.csv"), at(4, 0)), // in 4.csv's second: after it by key
		obj(inbox(subB, "1.csv"), at(9, 0)),
		// B's older snapshot counts against its cap on inbox files too.
		obj("snapshot/"+subB+"/fleet.csv", at(8, 0)),
		obj(inbox(notDigits, "1.csv"), at(0, 0)), obj(inbox(notDigits, "2.csv"), at(9, 0)),
		obj(inbox(subA, "sub/"), at(0, 0)),
		obj("receipts/"+subA+"/1.csv.receipt.csv", at(9, 0)),
	}
	head := func(key string) lessee.Object {
		return headed(objs[slices.IndexFunc(objs, func(o lessee.Object) bool { return o.Key == key })])
	}
	found := func(key string) intake.Sighting {
		return intake.Sighting{Upload: intake.UploadOf(testBucket, head(key)), Found: true}
	}
	for _, tt := range []struct {
		name      string
		key       string
		max       int
		seed      bool            // the key's task exists already
		headErr   error           // Head fails with it
		listErr   error           // List fails with it
		fail      error           // Enqueue fails with it
		want      intake.Sighting // Upload, Found and Deferred; Enqueued is wantQueue
		wantHead  bool            // Head is called
		wantErr   error           // errors.Is
		wantQueue bool            // the key is queued
	}{
		{name: "OK", key: inbox(subA, "1.csv"), max: 4, want: found(inbox(subA, "1.csv")), wantHead: true, wantQueue: true},
		{name: "OKUnderCap", key: inbox(subA, "4.csv"), max: 4, want: found(inbox(subA, "4.csv")), wantHead: true, wantQueue: true},
		{
			name: "OKDeferred", key: inbox(subA, "5.csv"), max: 4, wantHead: true,
			want: intake.Sighting{Upload: intake.UploadOf(testBucket, head(inbox(subA, "5.csv"))), Found: true, Deferred: true},
		},
		{name: "OKDeferredSmallCap", key: inbox(subA, "2.csv"), max: 1, wantHead: true, want: intake.Sighting{Upload: intake.UploadOf(testBucket, head(inbox(subA, "2.csv"))), Found: true, Deferred: true}},
		{name: "OKNoCap", key: inbox(subA, "5.csv"), max: 0, want: found(inbox(subA, "5.csv")), wantHead: true, wantQueue: true},
		{name: "OKOtherSubmitterUncounted", key: inbox(subB, "1.csv"), max: 2, want: found(inbox(subB, "1.csv")), wantHead: true, wantQueue: true},
		{
			name: "OKDeferredBehindOtherPrefix", key: inbox(subB, "1.csv"), max: 1, wantHead: true,
			want: intake.Sighting{Upload: intake.UploadOf(testBucket, head(inbox(subB, "1.csv"))), Found: true, Deferred: true},
		},
		{name: "OKSnapshot", key: "snapshot/" + subB + "/fleet.csv", max: 1, want: found("snapshot/" + subB + "/fleet.csv"), wantHead: true, wantQueue: true},
		{
			// The scan shares one lane among keys that name no valid
			// submitter; an event does not list the whole inbox to apply
			// its cap (such keys are quarantined when processed).
			name: "OKNoSubmitterUncapped", key: inbox(notDigits, "2.csv"), max: 1,
			want: found(inbox(notDigits, "2.csv")), wantHead: true, wantQueue: true,
		},
		{name: "OKRepeat", key: inbox(subA, "1.csv"), max: 4, seed: true, want: found(inbox(subA, "1.csv")), wantHead: true},
		{name: "OKNotUploadReceipt", key: "receipts/" + subA + "/1.csv.receipt.csv", max: 4},
		{name: "OKNotUploadFolderMarker", key: inbox(subA, "sub/"), max: 4},
		{name: "OKNotUploadSubmitterFolder", key: inbox(subA, ""), max: 4},
		{name: "OKNotUploadInbox", key: "inbox/", max: 4},
		{name: "OKNotUploadEmpty", key: "", max: 4},
		{name: "OKGone", key: inbox(subA, "gone.csv"), max: 4, wantHead: true},
		{
			name: "OKGoneWrapped", key: inbox(subA, "1.csv"), max: 4, wantHead: true,
			headErr: fmt.Errorf("head %s: %w", inbox(subA, "1.csv"), lessee.Errorf(lessee.ENOTFOUND, "no such key")),
		},
		{name: "ErrHead", key: inbox(subA, "1.csv"), max: 4, headErr: errBoom, wantHead: true, wantErr: errBoom},
		{
			name: "ErrHeadConflict", key: inbox(subA, "1.csv"), max: 4, wantHead: true,
			headErr: lessee.Errorf(lessee.ECONFLICT, "replaced"), wantErr: lessee.Errorf(lessee.ECONFLICT, "replaced"),
		},
		{name: "ErrList", key: inbox(subA, "1.csv"), max: 4, listErr: errBoom, wantHead: true, wantErr: errBoom, want: found(inbox(subA, "1.csv"))},
		{name: "ErrEnqueue", key: inbox(subA, "1.csv"), max: 4, fail: errBoom, wantHead: true, wantErr: errBoom, want: found(inbox(subA, "1.csv"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objects, queue := newObjects(objs...), newQueue()
			if tt.headErr != nil {
				objects.headErr[tt.key] = tt.headErr
			}
			objects.listErr = tt.listErr
			if tt.seed {
				queue.seed(objs[slices.IndexFunc(objs, func(o lessee.Object) bool { return o.Key == tt.key })])
			}
			if tt.fail != nil {
				queue.fail[tt.key] = tt.fail
			}
			got, err := newIntake(t, objects, queue, tt.max).Seen(t.Context(), tt.key)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Seen: %v", err)
			case tt.wantErr != nil && !errorsMatch(err, tt.wantErr):
				t.Fatalf("Seen error = %v, want %v", err, tt.wantErr)
			}
			want := tt.want
			want.Enqueued = tt.wantQueue
			if got != want {
				t.Errorf("Seen =\n%+v\nwant\n%+v", got, want)
			}
			if h := objects.headCount(); (h > 0) != tt.wantHead || h > 1 {
				t.Errorf("Seen made %d HEAD calls, want HEAD %v", h, tt.wantHead)
			}
			var wantKeys []string
			if tt.wantQueue {
				wantKeys = []string{tt.key}
			}
			if keys := queue.keys(); !slices.Equal(keys, wantKeys) {
				t.Errorf("queued %q, want %q", keys, wantKeys)
			}
		})
	}
}

// errorsMatch reports whether err is want, or carries want's code when want
// is a *lessee.Error.
func errorsMatch(err, want error) bool {
	var le *lessee.Error
	if errors.As(want, &le) {
		return err != nil && lessee.ErrorCode(err) == le.Code
	}
	return errors.Is(err, want)
}

// TestScanAndSeenAgree checks the one fairness rule from both sides: for
// random inboxes of one submitter, the files a scan queues are exactly the
// files an event would queue, although the scan sees the listing's
// milliseconds and the event a HEAD's whole seconds.
func TestScanAndSeenAgree(t *testing.T) {
	t.Parallel()
	const rounds = 400
	for seed := range uint64(rounds) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		limit := 1 + rng.IntN(5)
		objs := randomInbox(rng, subA, 1+rng.IntN(12))
		// Another submitter's files and a receipt must not count.
		noise := append(randomInbox(rng, subB, rng.IntN(6)), obj("receipts/"+subA+"/x.csv.receipt.csv", at(0, 0)))
		all := append(slices.Clone(objs), noise...)

		// The rule itself: fewer than limit older files of the submitter.
		var want []string
		for _, o := range objs {
			older := 0
			for _, p := range objs {
				ts, tp := o.LastModified.Unix(), p.LastModified.Unix()
				if tp < ts || (tp == ts && p.Key < o.Key) {
					older++
				}
			}
			if older < limit {
				want = append(want, o.Key)
			}
		}
		sort.Strings(want)

		queue := newQueue()
		if _, err := newIntake(t, newObjects(all...), queue, limit).Scan(t.Context()); err != nil {
			t.Fatalf("seed %d: Scan: %v", seed, err)
		}
		var scanned []lessee.Object
		for _, u := range queue.queued {
			if strings.HasPrefix(u.Key, inbox(subA, "")) {
				i := slices.IndexFunc(objs, func(o lessee.Object) bool { return o.Key == u.Key })
				scanned = append(scanned, objs[i])
			}
		}
		if !slices.IsSortedFunc(scanned, func(a, b lessee.Object) int {
			if intake.Older(a, b) {
				return -1
			}
			return 1
		}) {
			t.Errorf("seed %d: Scan queued %v, not oldest first", seed, keysOf(scanned))
		}

		var seen []string
		for _, o := range objs {
			s, err := newIntake(t, newObjects(all...), newQueue(), limit).Seen(t.Context(), o.Key)
			if err != nil {
				t.Fatalf("seed %d: Seen(%s): %v", seed, o.Key, err)
			}
			if !s.Found || s.Enqueued == s.Deferred {
				t.Errorf("seed %d: Seen(%s) = %+v, want found and either enqueued or deferred", seed, o.Key, s)
			}
			if s.Enqueued {
				seen = append(seen, o.Key)
			}
			if h := headed(o); intake.Older(o, h) || intake.Older(h, o) {
				t.Errorf("seed %d: %s listed at %v and HEADed at %v compare unequal", seed, o.Key, o.LastModified, h.LastModified)
			}
		}
		sort.Strings(seen)
		scannedKeys := keysOf(scanned)
		sort.Strings(scannedKeys)
		if !slices.Equal(scannedKeys, want) || !slices.Equal(seen, want) {
			t.Errorf("seed %d, limit %d, inbox %v:\nscan queued  %q\nevents queue %q\nrule says    %q",
				seed, limit, describe(objs), scannedKeys, seen, want)
		}
	}
}

// randomInbox returns n files of submitter with distinct random names and
// random modification times: few distinct seconds, so that files share
// one, with millisecond parts, some of them zero.
func randomInbox(rng *rand.Rand, submitter string, n int) []lessee.Object {
	names := map[string]bool{}
	var objs []lessee.Object
	for len(objs) < n {
		name := fmt.Sprintf("%c%d.csv", 'a'+rune(rng.IntN(4)), rng.IntN(20))
		if rng.IntN(8) == 0 {
			name = "sub/" + name
		}
		if names[name] {
			continue
		}
		names[name] = true
		ms := rng.IntN(1000)
		if rng.IntN(3) == 0 {
			ms = 0
		}
		objs = append(objs, obj(inbox(submitter, name), at(rng.IntN(4), ms)))
	}
	return objs
}

func keysOf(objs []lessee.Object) []string {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys
}

func describe(objs []lessee.Object) string {
	var b strings.Builder
	for _, o := range objs {
		fmt.Fprintf(&b, "\n  %s %s", o.Key, o.LastModified.Format("15:04:05.000"))
	}
	return b.String()
}

func TestRun(t *testing.T) {
	t.Parallel()
	t.Run("OKRetriesAfterFailedScan", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		objects, queue := newObjects(obj(inbox(subA, "1.csv"), at(1, 0))), newQueue()
		objects.failLists = 1
		queue.after = func(lessee.Upload) { cancel() }
		var logs bytes.Buffer
		in := intake.New(objects, queue, intake.Config{Bucket: testBucket, MaxPerSubmitter: 4}, slog.New(slog.NewTextHandler(&logs, nil)))
		done := make(chan struct{})
		go func() {
			defer close(done)
			in.Run(ctx, time.Millisecond)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context was canceled")
		}
		if got := queue.keys(); !slices.Equal(got, []string{inbox(subA, "1.csv")}) {
			t.Errorf("queued %q", got)
		}
		if !strings.Contains(logs.String(), "inbox scan failed") {
			t.Errorf("the failed scan was not logged:\n%s", logs.String())
		}
	})
	t.Run("OKCanceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		queue := newQueue()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newIntake(t, newObjects(obj(inbox(subA, "1.csv"), at(1, 0))), queue, 4).Run(ctx, time.Hour)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return with a canceled context")
		}
		if queue.calls != 0 {
			t.Errorf("Run with a canceled context offered %d files", queue.calls)
		}
	})
}
