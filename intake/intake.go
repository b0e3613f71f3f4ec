// Package intake is the one path by which an upload becomes a job: it names
// the upload (its version and job id), applies the per-submitter fairness
// rule and hands it to the queue. The inbox scan, the S3 webhook, the SFTP
// server and `lessee submit` all come through here, so every sighting of one
// upload names the same job and the same rule decides who goes first.
package intake

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
	"github.com/fleetreg/lessee/objectkey"
)

// ObjectVersion returns the version that identifies an upload: the S3
// version id when the bucket has versioning, otherwise the ETag and the
// modification time to the second (listings and HEAD report it with
// different precision), so that re-uploading identical bytes is still a new
// upload.
func ObjectVersion(versionID, etag string, modified time.Time) string {
	if versionID != "" && versionID != "null" {
		return versionID
	}
	return etag + "@" + strconv.FormatInt(modified.UTC().Unix(), 10)
}

// VersionOf is the version of an upload as every sighting sees it: the
// scan (ListObjectsV2 reports no version ids), an S3 event (after a HEAD),
// SFTP and lessee submit must all name the same job, so the version id is
// not used even where HEAD reports one.
func VersionOf(o lessee.Object) string {
	return ObjectVersion("", o.ETag, o.LastModified)
}

// VersionTime returns the modification time inside a version made by
// ObjectVersion, and false for an S3 version id.
func VersionTime(version string) (time.Time, bool) {
	_, secs, ok := strings.Cut(version, "@")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// VersionETag returns the ETag inside a version made by ObjectVersion, and
// false for an S3 version id.
func VersionETag(version string) (string, bool) {
	etag, _, ok := strings.Cut(version, "@")
	return etag, ok && etag != ""
}

// JobID derives the job id of an object version. Every sighting of the same
// upload (scan, event, redelivery) gets the same id.
func JobID(bucket, key, version string) string {
	h := sha256.New()
	for _, s := range []string{bucket, key, version} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	// Letters only: logs mask every 11-digit run (it could be a
	// fødselsnummer), and a hex id can hold one.
	sum := h.Sum(nil)
	id := make([]byte, 24)
	for i := range id {
		id[i] = 'a' + sum[i]%26
	}
	return string(id)
}

// UploadOf names the upload of a stored object in bucket.
func UploadOf(bucket string, o lessee.Object) lessee.Upload {
	return lessee.Upload{Bucket: bucket, Key: o.Key, ETag: o.ETag, Size: o.Size, Version: VersionOf(o)}
}

// Older is the fairness order of one submitter's uploads: by modification
// time to the second (the precision every sighting sees), ties broken by
// key, so that the scan and an event agree on which files go first.
func Older(a, b lessee.Object) bool { return compareAge(a, b) < 0 }

// compareAge orders a and b as Older does, for sorting.
func compareAge(a, b lessee.Object) int {
	return cmp.Or(a.LastModified.Truncate(time.Second).Compare(b.LastModified.Truncate(time.Second)),
		strings.Compare(a.Key, b.Key))
}

// Queue takes uploads to process.
type Queue interface {
	// Enqueue queues the upload's task and reports false when it already
	// exists (the same upload seen before).
	Enqueue(ctx context.Context, u lessee.Upload) (bool, error)
}

// Recoverer is a Queue that can also requeue an upload whose task exists
// but will never run again (archived, or lost with the queue's data). The
// scan uses it when Enqueue reports the task exists.
type Recoverer interface {
	Recover(ctx context.Context, u lessee.Upload) (bool, error)
}

// Objects lists and inspects stored objects.
type Objects interface {
	List(ctx context.Context, prefix string, fn func(lessee.Object) error) error
	Head(ctx context.Context, key string) (lessee.Object, error)
}

// DefaultMaxPerSubmitter is the default of Config.MaxPerSubmitter.
const DefaultMaxPerSubmitter = 4

// Config tunes an Intake.
type Config struct {
	Bucket string
	// MaxPerSubmitter caps how many of one submitter's inbox files are
	// queued at once (oldest first, see Older), so that one company's
	// flood of files cannot starve another's single file. 0 means no cap.
	MaxPerSubmitter int
	// Faults, if set, counts what a scan could not do: a failed listing,
	// a file it could not queue (lessee_intake_faults_total{path="scan"}).
	Faults Counter
}

// Counter counts events; a Prometheus counter satisfies it.
type Counter interface{ Inc() }

// Intake turns sightings of uploads into queued jobs.
type Intake struct {
	objects Objects
	queue   Queue
	cfg     Config
	log     *slog.Logger
}

// New returns an intake over objects that queues on queue.
func New(objects Objects, queue Queue, cfg Config, log *slog.Logger) *Intake {
	return &Intake{objects: objects, queue: queue, cfg: cfg, log: log}
}

// isUploadKey reports whether key can be an upload: under one of the
// upload prefixes (inbox/, snapshot/, dryrun/, dryrun-snapshot/) and not a
// folder marker some clients create.
func isUploadKey(key string) bool { return objectkey.IsUpload(key) }

// Run scans at once and then every interval until ctx is done. Failed scans
// are logged and retried at the next tick.
func (in *Intake) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := in.Scan(ctx); err != nil && ctx.Err() == nil {
			in.log.Warn("inbox scan failed; the next scan tries again", "enqueued", n, "err", ident.MaskText(err.Error()))
		} else if n > 0 {
			in.log.Info("inbox scan enqueued files", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan lists the inbox once and returns how many new tasks it enqueued.
// Each submitter gets at most MaxPerSubmitter of its oldest files queued;
// files finish and leave the inbox, so the next scans queue the rest.
// Submitters take turns, oldest file first: a newcomer's file is queued
// before a flooding submitter's next one. Re-enqueueing is harmless, since
// the queue refuses a task that exists; when it can, the scan recovers a
// task that exists but will never run again. A file that cannot be queued
// does not stop the scan: its error is returned with the others'.
func (in *Intake) Scan(ctx context.Context) (int, error) {
	bySubmitter := map[string][]lessee.Object{}
	var order []string
	var listErrs []error
	for _, src := range objectkey.Sources {
		err := in.objects.List(ctx, string(src), func(o lessee.Object) error {
			if !isUploadKey(o.Key) || !strings.HasPrefix(o.Key, string(src)) {
				return nil
			}
			// Keys that name no valid submitter share one lane under "".
			sub := objectkey.Parse(o.Key).Submitter
			if _, seen := bySubmitter[sub]; !seen {
				order = append(order, sub)
			}
			bySubmitter[sub] = append(bySubmitter[sub], o)
			return nil
		})
		if err != nil {
			// One prefix that cannot be listed keeps no other from the queue.
			in.countFault()
			listErrs = append(listErrs, fmt.Errorf("scan %s: %w", src, err))
		}
	}
	if len(listErrs) == len(objectkey.Sources) {
		return 0, errors.Join(listErrs...)
	}
	var lanes [][]lessee.Object
	for _, sub := range order {
		files := bySubmitter[sub]
		slices.SortFunc(files, compareAge)
		if n := in.cfg.MaxPerSubmitter; n > 0 && len(files) > n {
			files = files[:n]
		}
		lanes = append(lanes, files)
	}
	var next []lessee.Object
	for round := 0; ; round++ {
		n := len(next)
		for _, files := range lanes {
			if round < len(files) {
				next = append(next, files[round])
			}
		}
		if len(next) == n {
			break
		}
	}
	recoverer, _ := in.queue.(Recoverer)
	enqueued := 0
	errs := listErrs
	for _, o := range next {
		if err := ctx.Err(); err != nil {
			// Stop, but keep the errors of the files tried already.
			return enqueued, errors.Join(append(errs, err)...)
		}
		u := UploadOf(in.cfg.Bucket, o)
		ok, err := in.queue.Enqueue(ctx, u)
		if err == nil && !ok && recoverer != nil {
			ok, err = recoverer.Recover(ctx, u)
		}
		if err != nil {
			// One file's trouble must not keep the others from the queue.
			in.countFault()
			errs = append(errs, fmt.Errorf("scan inbox: %w", err))
			continue
		}
		if ok {
			enqueued++
		}
	}
	return enqueued, errors.Join(errs...)
}

func (in *Intake) countFault() {
	if in.cfg.Faults != nil {
		in.cfg.Faults.Inc()
	}
}

// Sighting is what Seen found of one key.
type Sighting struct {
	Upload   lessee.Upload
	Found    bool // the key is an upload still in the inbox
	Deferred bool // left to the scan: the submitter has older files queued
	Enqueued bool // a new task was queued (false: it existed already)
}

// Seen handles one sighting of key outside the scan (an S3 event, an SFTP
// upload, a submit): if it is an upload still in the inbox and within its
// submitter's cap, its task is queued. An object gone already (processed
// and moved, or deleted) is not an error.
func (in *Intake) Seen(ctx context.Context, key string) (Sighting, error) {
	if !isUploadKey(key) {
		return Sighting{}, nil
	}
	obj, err := in.objects.Head(ctx, key)
	if lessee.ErrorCode(err) == lessee.ENOTFOUND {
		return Sighting{}, nil
	}
	if err != nil {
		return Sighting{}, fmt.Errorf("head %s: %w", key, err)
	}
	obj.Key = key
	s := Sighting{Upload: UploadOf(in.cfg.Bucket, obj), Found: true}
	if ok, err := in.underCap(ctx, obj); err != nil {
		return s, err
	} else if !ok {
		s.Deferred = true
		return s, nil
	}
	s.Enqueued, err = in.queue.Enqueue(ctx, s.Upload)
	return s, err
}

// underCap applies the scan's per-submitter cap to one upload: it is queued
// only if fewer than MaxPerSubmitter of the submitter's inbox files are
// older, so events cannot let one company's flood jump the queue.
func (in *Intake) underCap(ctx context.Context, obj lessee.Object) (bool, error) {
	limit := in.cfg.MaxPerSubmitter
	sub := objectkey.Parse(obj.Key).Submitter
	if limit <= 0 || sub == "" {
		return true, nil
	}
	// Counted over all the submitter's upload folders, as the scan
	// counts: files under another prefix do not let a flood jump the
	// queue.
	older := 0
	for _, src := range objectkey.Sources {
		err := in.objects.List(ctx, src.FolderOf(sub), func(o lessee.Object) error {
			if o.Key != obj.Key && isUploadKey(o.Key) && Older(o, obj) {
				older++
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("list submitter's %s: %w", src, err)
		}
		if older >= limit {
			return false, nil
		}
	}
	return true, nil
}
