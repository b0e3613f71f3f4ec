package sftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/objectkey"
)

// Errors sent to the client. They carry SFTP status codes and say what is
// allowed; they never name bucket keys of other organisations.
var (
	errDenied = fmt.Errorf("%w: only /inbox, /snapshot, /dryrun and /dryrun-snapshot are writable and only /receipts and /exports readable", sftp.ErrSSHFxPermissionDenied)
	// Unwrapped: pkg/sftp recognises not-found with os.IsNotExist, which
	// does not follow %w.
	errNoSuch   = os.ErrNotExist
	errReadOnly = fmt.Errorf("%w: upload folders are write-only; receipts are in /receipts", sftp.ErrSSHFxPermissionDenied)
	errNotDir   = fmt.Errorf("%w: not a folder", sftp.ErrSSHFxFailure)
	errBusy     = fmt.Errorf("%w: too many files open at once; close one first", sftp.ErrSSHFxFailure)
	errStore    = fmt.Errorf("%w: storage is unavailable; try again later", sftp.ErrSSHFxFailure)
)

// kind is what a virtual path names.
type kind int

const (
	kindRoot kind = iota
	kindInbox
	kindReceipts
	kindInboxFile
	kindReceiptFile
)

// target is a resolved virtual path.
type target struct {
	kind   kind
	name   string           // file name for kindInboxFile and kindReceiptFile
	source objectkey.Source // for kindInbox and kindInboxFile: the upload folder
	read   string           // for kindReceipts and kindReceiptFile: "receipts" or "exports"
}

// readFolders are the read-only folders of the virtual tree: the user's
// receipts and its fleet's export.
var readFolders = []string{"receipts", "exports"}

// uploadFolders maps the upload folders of the virtual tree, in the order
// the root lists them, to their bucket prefixes: changes, snapshots and
// their dry runs (see objectkey).
var uploadFolders = []struct {
	name   string
	source objectkey.Source
}{
	{"inbox", objectkey.Inbox},
	{"snapshot", objectkey.Snapshot},
	{"dryrun", objectkey.DryRun},
	{"dryrun-snapshot", objectkey.DryRunSnapshot},
}

// uploadSource returns the bucket prefix of the upload folder dir.
func uploadSource(dir string) (objectkey.Source, bool) {
	for _, f := range uploadFolders {
		if f.name == dir {
			return f.source, true
		}
	}
	return "", false
}

// folderName is the virtual folder of an upload source.
func folderName(src objectkey.Source) string { return strings.TrimSuffix(string(src), "/") }

// resolve maps a client path onto the virtual tree. pkg/sftp already cleans
// paths against "/", but resolve does not rely on that: it cleans again, so
// ".." can never climb above the root, and anything deeper than
// /folder/file does not exist.
func resolve(p string) (target, error) {
	if strings.ContainsRune(p, 0) {
		return target{}, errNoSuch
	}
	p = path.Clean("/" + p)
	if p == "/" {
		return target{kind: kindRoot}, nil
	}
	dir, name, _ := strings.Cut(p[1:], "/")
	if strings.Contains(name, "/") {
		return target{}, errNoSuch
	}
	src, upload := uploadSource(dir)
	read := slices.Contains(readFolders, dir)
	switch {
	case upload && name == "":
		return target{kind: kindInbox, source: src}, nil
	case read && name == "":
		return target{kind: kindReceipts, read: dir}, nil
	case upload:
		return target{kind: kindInboxFile, name: name, source: src}, nil
	case read:
		return target{kind: kindReceiptFile, name: name, read: dir}, nil
	}
	return target{}, errNoSuch
}

// session is one user's SFTP session; it implements the pkg/sftp handlers.
type session struct {
	srv   *Server
	ctx   context.Context
	orgnr string
	log   *slog.Logger

	mu      sync.Mutex
	uploads int // open upload handles
}

func (sess *session) uploadKey(t target) string {
	return t.source.Key(sess.orgnr, t.name)
}

func (sess *session) receiptsDir() string { return objectkey.ReceiptsOf(sess.orgnr) }

// readDir is the bucket folder behind the read-only folder of t.
func (sess *session) readDir(t target) string {
	if t.read == "exports" {
		return objectkey.Exports + sess.orgnr + "/"
	}
	return sess.receiptsDir()
}

func (sess *session) refuse(op, p string, err error) error {
	sess.log.Info("sftp: refused", "op", op, "path", p, "reason", err.Error())
	return err
}

// Fileread opens a receipt for reading. The object is spooled to a
// temporary file first so that the client's random-access reads are served
// from disk and one version is read from start to end.
func (sess *session) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	t, err := resolve(r.Filepath)
	if err != nil {
		return nil, sess.refuse("get", r.Filepath, err)
	}
	switch t.kind {
	case kindReceiptFile:
	case kindInboxFile:
		return nil, sess.refuse("get", r.Filepath, errReadOnly)
	default:
		return nil, sess.refuse("get", r.Filepath, errNotFile(t))
	}
	f, err := os.CreateTemp(sess.srv.cfg.TempDir, downloadPattern)
	if err != nil {
		sess.log.Error("sftp: spool receipt", "file", t.name, "err", err)
		return nil, errStore
	}
	ctx, cancel := context.WithTimeout(sess.ctx, storeTimeout)
	defer cancel()
	obj, err := sess.srv.objects.Download(ctx, sess.readDir(t)+t.name, "", f)
	if err != nil {
		_ = f.Close()
		os.Remove(f.Name())
		if lessee.ErrorCode(err) == lessee.ENOTFOUND {
			return nil, sess.refuse("get", r.Filepath, errNoSuch)
		}
		sess.log.Error("sftp: download receipt", "file", t.name, "err", err)
		return nil, errStore
	}
	sess.log.Info("sftp: receipt read", "file", t.name, "size", obj.Size)
	return &spooled{f}, nil
}

// spooled is a downloaded file that disappears when closed.
type spooled struct{ *os.File }

func (s *spooled) Close() error {
	err := s.File.Close()
	os.Remove(s.File.Name())
	return err
}

func errNotFile(t target) error {
	if t.kind == kindRoot || t.kind == kindInbox || t.kind == kindReceipts {
		return fmt.Errorf("%w: is a folder", sftp.ErrSSHFxFailure)
	}
	return errNoSuch
}

// Filewrite opens an upload to /inbox/<name> (or another upload folder).
func (sess *session) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	t, err := resolve(r.Filepath)
	if err != nil || t.kind != kindInboxFile {
		return nil, sess.refuse("put", r.Filepath, errDenied)
	}
	key := sess.uploadKey(t)
	if pk := objectkey.Parse(key); pk.Verdict != objectkey.OK {
		return nil, sess.refuse("put", r.Filepath, fmt.Errorf("%w: %s", sftp.ErrSSHFxPermissionDenied, pk.Reason))
	}
	sess.mu.Lock()
	if sess.uploads >= maxOpenUploads {
		sess.mu.Unlock()
		return nil, sess.refuse("put", r.Filepath, errBusy)
	}
	sess.uploads++
	sess.mu.Unlock()
	f, err := os.CreateTemp(sess.srv.cfg.TempDir, uploadPattern)
	if err != nil {
		sess.doneUpload()
		sess.log.Error("sftp: spool upload", "file", t.name, "err", err)
		return nil, errStore
	}
	sess.log.Debug("sftp: upload started", "file", t.name)
	return &upload{sess: sess, name: t.name, key: key, f: f, max: sess.srv.cfg.MaxFileBytes, started: time.Now()}, nil
}

func (sess *session) doneUpload() {
	sess.mu.Lock()
	sess.uploads--
	sess.mu.Unlock()
}

// upload spools one file and stores it when the client closes the handle.
type upload struct {
	sess    *session
	name    string
	key     string
	f       *os.File
	max     int64
	started time.Time

	mu      sync.Mutex
	written int64 // bytes written, to detect gaps
	failed  error // set once: the upload is discarded on Close
	closed  bool
}

func (u *upload) fail(err error) {
	if u.failed == nil {
		u.failed = err
	}
}

// WriteAt writes a chunk. pkg/sftp may call it concurrently and out of
// order, so gaps are checked only on Close.
func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	u.mu.Lock()
	if u.failed != nil {
		u.mu.Unlock()
		return 0, fmt.Errorf("%w: upload already failed", sftp.ErrSSHFxFailure)
	}
	if off < 0 || (u.max > 0 && off+int64(len(p)) > u.max) {
		u.fail(fmt.Errorf("file is larger than %d bytes", u.max))
		u.mu.Unlock()
		return 0, fmt.Errorf("%w: files may be at most %d bytes", sftp.ErrSSHFxFailure, u.max)
	}
	u.mu.Unlock()
	n, err := u.f.WriteAt(p, off)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.written += int64(n)
	if err != nil {
		u.fail(fmt.Errorf("spool: %w", err))
		return n, fmt.Errorf("%w: could not store the data", sftp.ErrSSHFxFailure)
	}
	return n, nil
}

// TransferError is called by pkg/sftp when the connection ends with the
// handle still open: the upload is incomplete.
func (u *upload) TransferError(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fail(fmt.Errorf("connection lost before the file was closed: %w", err))
}

// Close stores the complete file with one Put, or discards it.
func (u *upload) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	failed, written := u.failed, u.written
	u.mu.Unlock()
	defer u.sess.doneUpload()
	defer os.Remove(u.f.Name())
	defer func() { _ = u.f.Close() }() // a spool: put from, then removed
	log := u.sess.log.With("file", u.name)

	if failed != nil {
		log.Warn("sftp: upload discarded", "reason", failed.Error())
		return fmt.Errorf("%w: upload discarded", sftp.ErrSSHFxFailure)
	}
	fi, err := u.f.Stat()
	if err != nil {
		log.Error("sftp: upload spool", "err", err)
		return errStore
	}
	size := fi.Size()
	if written < size {
		log.Warn("sftp: upload discarded", "reason", "gaps in the file (resumed upload?)", "size", size, "written", written)
		return fmt.Errorf("%w: the file has gaps; resuming uploads is not supported, upload the whole file again", sftp.ErrSSHFxFailure)
	}
	if _, err := u.f.Seek(0, io.SeekStart); err != nil {
		log.Error("sftp: upload spool", "err", err)
		return errStore
	}
	ctx, cancel := context.WithTimeout(u.sess.ctx, storeTimeout)
	defer cancel()
	if err := u.sess.srv.objects.Put(ctx, u.key, u.f, size, contentType(u.name)); err != nil {
		log.Error("sftp: upload not stored", "key", u.key, "err", err)
		return errStore
	}
	log.Info("sftp: upload stored", "key", u.key, "size", size, "duration", time.Since(u.started).Round(time.Millisecond).String())
	if in := u.sess.srv.cfg.Intake; in != nil {
		// The file is stored; if queueing it fails, the inbox scan will.
		if _, err := in.Seen(ctx, u.key); err != nil {
			log.Warn("sftp: upload stored but not queued; the inbox scan will find it", "key", u.key, "err", err)
			if c := u.sess.srv.cfg.QueueFaults; c != nil {
				c.Inc()
			}
		}
	}
	return nil
}

func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return "text/csv"
	case ".xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "application/octet-stream"
}

// Filecmd refuses every change to the tree. Setstat on one's own upload
// path is accepted and ignored: clients set times and modes after uploads.
func (sess *session) Filecmd(r *sftp.Request) error {
	if r.Method == "Setstat" {
		if t, err := resolve(r.Filepath); err == nil && t.kind == kindInboxFile {
			return nil
		}
	}
	return sess.refuse(strings.ToLower(r.Method), r.Filepath, fmt.Errorf("%w: %s is not allowed", sftp.ErrSSHFxPermissionDenied, strings.ToLower(r.Method)))
}

// Filelist serves List, Stat and Readlink.
func (sess *session) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	t, err := resolve(r.Filepath)
	if err != nil {
		return nil, sess.refuse(strings.ToLower(r.Method), r.Filepath, err)
	}
	switch r.Method {
	case "List":
		return sess.list(r.Filepath, t)
	case "Stat":
		fi, err := sess.stat(t)
		if err != nil {
			if errors.Is(err, errStore) {
				return nil, err
			}
			return nil, sess.refuse("stat", r.Filepath, err)
		}
		return listerAt{fi}, nil
	}
	// Readlink: there are no links.
	return nil, sess.refuse(strings.ToLower(r.Method), r.Filepath, fmt.Errorf("%w: not a link", sftp.ErrSSHFxFailure))
}

// Lstat is Stat: there are no links.
func (sess *session) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	r.Method = "Stat"
	return sess.Filelist(r)
}

var _ sftp.LstatFileLister = (*session)(nil)

// Modes shown to clients: the folders' permissions say what each allows.
const (
	modeReadDir   = fs.ModeDir | 0o500
	modeInboxDir  = fs.ModeDir | 0o700
	modeReceipt   = 0o400
	modePendingUp = 0o200
)

func (sess *session) list(p string, t target) (sftp.ListerAt, error) {
	switch t.kind {
	case kindRoot:
		var root listerAt
		for _, f := range uploadFolders {
			root = append(root, dirInfo(f.name, modeInboxDir))
		}
		for _, f := range readFolders {
			root = append(root, dirInfo(f, modeReadDir))
		}
		return root, nil
	case kindInbox:
		return sess.listPrefix(t.source.FolderOf(sess.orgnr), modePendingUp)
	case kindReceipts:
		return sess.listPrefix(sess.readDir(t), modeReceipt)
	}
	if _, err := sess.stat(t); err != nil && !errors.Is(err, errStore) {
		return nil, sess.refuse("list", p, err)
	}
	return nil, sess.refuse("list", p, errNotDir)
}

// listPrefix lists the objects directly under prefix; deeper keys are not
// part of the virtual tree.
func (sess *session) listPrefix(prefix string, mode fs.FileMode) (sftp.ListerAt, error) {
	ctx, cancel := context.WithTimeout(sess.ctx, time.Minute)
	defer cancel()
	var out listerAt
	err := sess.srv.objects.List(ctx, prefix, func(o lessee.Object) error {
		name := strings.TrimPrefix(o.Key, prefix)
		if name != "" && !strings.Contains(name, "/") {
			out = append(out, &fileInfo{name: name, size: o.Size, mode: mode, mtime: o.LastModified})
		}
		return nil
	})
	if err != nil {
		sess.log.Error("sftp: list", "prefix", prefix, "err", err)
		return nil, errStore
	}
	return out, nil
}

// stat describes one virtual path.
func (sess *session) stat(t target) (os.FileInfo, error) {
	var prefix string
	var mode fs.FileMode
	switch t.kind {
	case kindRoot:
		return dirInfo("/", modeReadDir), nil
	case kindInbox:
		return dirInfo(folderName(t.source), modeInboxDir), nil
	case kindReceipts:
		return dirInfo(t.read, modeReadDir), nil
	case kindInboxFile:
		prefix, mode = t.source.FolderOf(sess.orgnr), modePendingUp
	default:
		prefix, mode = sess.readDir(t), modeReceipt
	}
	l, err := sess.listPrefixExact(prefix, t.name, mode)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// listPrefixExact finds the object prefix+name, listing with it as prefix.
func (sess *session) listPrefixExact(prefix, name string, mode fs.FileMode) (os.FileInfo, error) {
	ctx, cancel := context.WithTimeout(sess.ctx, time.Minute)
	defer cancel()
	key := prefix + name
	var found *fileInfo
	errStop := errors.New("stop")
	err := sess.srv.objects.List(ctx, key, func(o lessee.Object) error {
		if o.Key == key {
			found = &fileInfo{name: name, size: o.Size, mode: mode, mtime: o.LastModified}
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		sess.log.Error("sftp: stat", "key", key, "err", err)
		return nil, errStore
	}
	if found == nil {
		return nil, errNoSuch
	}
	return found, nil
}

// listerAt serves a directory listing from memory.
type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// fileInfo is a virtual file or folder.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func dirInfo(name string, mode fs.FileMode) *fileInfo {
	return &fileInfo{name: name, mode: mode, mtime: time.Now()}
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }
