package s3store

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// diskUploads keeps multipart uploads on disk, one folder per upload:
// uploads/<id>/upload.json and one file per part named
// "<part number, 5 digits>-<md5 hex>", written to a temporary name first and
// renamed, so a part file is always whole. gofakes3's own fallback holds all
// parts in memory and copies them once more on completion.
//
// Upload ids are a hex timestamp plus random bits, so they sort in
// initiation order and can be checked against a strict pattern before they
// touch a path.
type diskUploads struct {
	dir string
	// put stores the assembled object (the s3afero backend's PutObject; the
	// parts are already local, so no spooling is needed).
	put func(bucket, object string, meta map[string]string, input io.Reader, size int64, conds *gofakes3.PutConditions) (gofakes3.PutObjectResult, error)
	// mu guards renames and removals inside upload folders; bodies are
	// written without it.
	mu sync.Mutex
}

type uploadInfo struct {
	Bucket    string            `json:"bucket"`
	Object    string            `json:"object"`
	Meta      map[string]string `json:"meta"`
	Initiated time.Time         `json:"initiated"`
}

type partFile struct {
	number  int
	etag    string // md5 hex, no quotes
	path    string
	size    int64
	modTime time.Time
}

var uploadIDPattern = regexp.MustCompile(`^[0-9a-f]{16}[0-9a-f]{16}$`)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

func (u *diskUploads) uploadDir(id gofakes3.UploadID) (string, error) {
	if !uploadIDPattern.MatchString(string(id)) {
		return "", gofakes3.ErrNoSuchUpload
	}
	return filepath.Join(u.dir, string(id)), nil
}

func (u *diskUploads) create(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	now := time.Now().UTC()
	id := gofakes3.UploadID(fmt.Sprintf("%016x%s", now.UnixNano(), randomHex(8)))
	dir := filepath.Join(u.dir, string(id))
	if err := os.Mkdir(dir, 0o750); err != nil {
		return "", err
	}
	data, err := json.Marshal(uploadInfo{Bucket: bucket, Object: object, Meta: meta, Initiated: now})
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, "upload.json"), data); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return id, nil
}

func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp-" + randomHex(6)
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// load returns the upload's folder and info, checking that it belongs to
// bucket/object.
func (u *diskUploads) load(bucket, object string, id gofakes3.UploadID) (string, uploadInfo, error) {
	var info uploadInfo
	dir, err := u.uploadDir(id)
	if err != nil {
		return "", info, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "upload.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", info, gofakes3.ErrNoSuchUpload
	} else if err != nil {
		return "", info, err
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return "", info, err
	}
	if info.Bucket != bucket || info.Object != object {
		return "", info, gofakes3.ErrNoSuchUpload
	}
	return dir, info, nil
}

func (u *diskUploads) uploadPart(bucket, object string, id gofakes3.UploadID, partNumber int, contentLength int64, input io.Reader) (string, error) {
	if partNumber < 1 || partNumber > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	dir, _, err := u.load(bucket, object, id)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), input)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if n != contentLength {
		return "", gofakes3.ErrIncompleteBody
	}
	etag := hex.EncodeToString(h.Sum(nil))

	u.mu.Lock()
	defer u.mu.Unlock()
	// The upload may have been aborted or completed meanwhile.
	if _, err := os.Stat(filepath.Join(dir, "upload.json")); err != nil {
		return "", gofakes3.ErrNoSuchUpload
	}
	old, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%05d-*", partNumber)))
	if err != nil {
		return "", err
	}
	for _, o := range old {
		if err := os.Remove(o); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("%05d-%s", partNumber, etag))); err != nil {
		return "", err
	}
	return `"` + etag + `"`, nil
}

// parts lists the stored parts in part-number order.
func parts(dir string) ([]partFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []partFile
	for _, e := range entries {
		num, etag, ok := strings.Cut(e.Name(), "-")
		if !ok || len(num) != 5 || len(etag) != 32 || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, partFile{number: n, etag: etag, path: filepath.Join(dir, e.Name()), size: info.Size(), modTime: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out, nil
}

func (u *diskUploads) complete(bucket, object string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (string, error) {
	dir, info, err := u.load(bucket, object, id)
	if err != nil {
		return "", err
	}
	if len(in.Parts) == 0 {
		return "", gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "no parts in complete request")
	}

	u.mu.Lock()
	stored, err := parts(dir)
	if err != nil {
		u.mu.Unlock()
		return "", err
	}
	byNumber := make(map[int]partFile, len(stored))
	for _, p := range stored {
		byNumber[p.number] = p
	}
	var (
		files []*os.File
		size  int64
		sum   = md5.New()
		prev  int
	)
	defer func() {
		for _, f := range files {
			_ = f.Close() // only read
		}
	}()
	for _, want := range in.Parts {
		if want.PartNumber <= prev {
			u.mu.Unlock()
			return "", gofakes3.ErrInvalidPartOrder
		}
		prev = want.PartNumber
		p, ok := byNumber[want.PartNumber]
		if !ok || strings.Trim(want.ETag, `"`) != p.etag {
			u.mu.Unlock()
			return "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d not found or etag mismatch", want.PartNumber)
		}
		// Open while holding the lock: a later re-upload of the same part
		// renames over the name, but this handle keeps the bytes checked here.
		f, err := os.Open(p.path)
		if err != nil {
			u.mu.Unlock()
			return "", err
		}
		files = append(files, f)
		size += p.size
		raw, _ := hex.DecodeString(p.etag)
		sum.Write(raw)
	}
	u.mu.Unlock()

	readers := make([]io.Reader, len(files))
	for i, f := range files {
		readers[i] = f
	}
	if _, err := u.put(bucket, object, info.Meta, io.MultiReader(readers...), size, nil); err != nil {
		return "", err
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sum.Sum(nil)), len(in.Parts)), nil
}

func (u *diskUploads) abort(bucket, object string, id gofakes3.UploadID) error {
	dir, _, err := u.load(bucket, object, id)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return os.RemoveAll(dir)
}

func (u *diskUploads) listParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	dir, _, err := u.load(bucket, object, id)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	stored, err := parts(dir)
	u.mu.Unlock()
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: object, UploadID: id,
		PartNumberMarker: marker, MaxParts: limit, StorageClass: "STANDARD",
	}
	for _, p := range stored {
		if p.number <= marker {
			continue
		}
		if int64(len(res.Parts)) >= limit {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber:   p.number,
			LastModified: gofakes3.NewContentTime(p.modTime),
			ETag:         `"` + p.etag + `"`,
			Size:         p.size,
		})
		res.NextPartNumberMarker = p.number
	}
	return res, nil
}

type uploadEntry struct {
	id   gofakes3.UploadID
	info uploadInfo
}

// all reads every upload's info, sorted by object key, then id (= initiation).
func (u *diskUploads) all() ([]uploadEntry, error) {
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return nil, err
	}
	var out []uploadEntry
	for _, e := range entries {
		if !e.IsDir() || !uploadIDPattern.MatchString(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(u.dir, e.Name(), "upload.json"))
		if err != nil {
			continue // being created or removed
		}
		var info uploadInfo
		if err := json.Unmarshal(data, &info); err != nil {
			continue
		}
		out = append(out, uploadEntry{id: gofakes3.UploadID(e.Name()), info: info})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].info.Object != out[j].info.Object {
			return out[i].info.Object < out[j].info.Object
		}
		return out[i].id < out[j].id
	})
	return out, nil
}

func (u *diskUploads) list(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	all, err := u.all()
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadsResult{
		Bucket: bucket, Delimiter: prefix.Delimiter, Prefix: prefix.Prefix, MaxUploads: limit,
	}
	if marker != nil {
		res.KeyMarker, res.UploadIDMarker = marker.Object, marker.UploadID
	}
	seen := map[string]bool{}
	var match gofakes3.PrefixMatch
	var count int64
	for _, e := range all {
		if e.info.Bucket != bucket || !prefix.Match(e.info.Object, &match) {
			continue
		}
		if marker != nil {
			if e.info.Object < marker.Object ||
				(e.info.Object == marker.Object && (marker.UploadID == "" || e.id <= marker.UploadID)) {
				continue
			}
		}
		if count >= limit {
			res.IsTruncated = true
			break
		}
		if match.CommonPrefix {
			if !seen[match.MatchedPart] {
				seen[match.MatchedPart] = true
				res.CommonPrefixes = append(res.CommonPrefixes, match.AsCommonPrefix())
				count++
			}
			continue
		}
		res.Uploads = append(res.Uploads, gofakes3.ListMultipartUploadItem{
			Key: e.info.Object, UploadID: e.id, StorageClass: "STANDARD",
			Initiated: gofakes3.NewContentTime(e.info.Initiated),
		})
		res.NextKeyMarker, res.NextUploadIDMarker = e.info.Object, e.id
		count++
	}
	return res, nil
}

// removeStale removes uploads initiated before cutoff and returns how many.
func (u *diskUploads) removeStale(cutoff time.Time) (int, error) {
	all, err := u.all()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range all {
		if e.info.Initiated.Before(cutoff) {
			if err := os.RemoveAll(filepath.Join(u.dir, string(e.id))); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
