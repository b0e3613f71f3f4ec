package s3store

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"time"

	"github.com/spf13/afero"
)

// maxElement is the longest file name element the file systems we run on
// take (NAME_MAX on Linux).
const maxElement = 255

// shortNameFs keeps the embedded endpoint's metadata files within the
// file system's name limit. gofakes3 names an object's metadata file after
// the whole key with its slashes flattened, so any key over about 220
// bytes (a receipt of a long upload name) could not be stored. Elements
// over the limit are cut and given a hash of the whole element; shorter
// names, so every file already on disk, are left as they are.
type shortNameFs struct{ afero.Fs }

var _ afero.Fs = shortNameFs{}

// shorten maps each element of name over maxElement bytes to a prefix of it
// plus a hash of the whole element.
func shorten(name string) string {
	if len(name) <= maxElement {
		return name
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if len(p) > maxElement {
			sum := sha256.Sum256([]byte(p))
			parts[i] = strings.ToValidUTF8(p[:maxElement-65], "") + "-" + hex.EncodeToString(sum[:])
		}
	}
	return strings.Join(parts, "/")
}

func (s shortNameFs) Create(name string) (afero.File, error) { return s.Fs.Create(shorten(name)) }
func (s shortNameFs) Mkdir(name string, perm os.FileMode) error {
	return s.Fs.Mkdir(shorten(name), perm)
}
func (s shortNameFs) MkdirAll(name string, perm os.FileMode) error {
	return s.Fs.MkdirAll(shorten(name), perm)
}
func (s shortNameFs) Open(name string) (afero.File, error) { return s.Fs.Open(shorten(name)) }
func (s shortNameFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	return s.Fs.OpenFile(shorten(name), flag, perm)
}
func (s shortNameFs) Remove(name string) error    { return s.Fs.Remove(shorten(name)) }
func (s shortNameFs) RemoveAll(name string) error { return s.Fs.RemoveAll(shorten(name)) }
func (s shortNameFs) Rename(oldname, newname string) error {
	return s.Fs.Rename(shorten(oldname), shorten(newname))
}
func (s shortNameFs) Stat(name string) (os.FileInfo, error) { return s.Fs.Stat(shorten(name)) }
func (s shortNameFs) Chmod(name string, mode os.FileMode) error {
	return s.Fs.Chmod(shorten(name), mode)
}
func (s shortNameFs) Chown(name string, uid, gid int) error {
	return s.Fs.Chown(shorten(name), uid, gid)
}
func (s shortNameFs) Chtimes(name string, atime, mtime time.Time) error {
	return s.Fs.Chtimes(shorten(name), atime, mtime)
}
