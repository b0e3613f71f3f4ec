// Package objectkeytest holds checks that tests of several packages make on
// the object keys the service derives.
package objectkeytest

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// UnsafeDerivedKey says what is wrong with a key the service writes, or
// "": it must lie directly inside one of the allowed folders, as a clean
// path of valid UTF-8 without backslashes or control characters.
func UnsafeDerivedKey(k string, allowed []string) string {
	// The folder k is in: the longest of allowed it begins with.
	folder := ""
	for _, p := range allowed {
		if strings.HasPrefix(k, p) && len(p) > len(folder) {
			folder = p
		}
	}
	switch {
	case folder == "":
		return fmt.Sprintf("is outside %q", allowed)
	case path.Clean(k) != k:
		return "is not a clean path (\".\" or \"..\" segments, empty segments)"
	case strings.Count(k, "/") != strings.Count(folder, "/"):
		return "is not directly inside its folder"
	case strings.ContainsRune(k, '\\'):
		return "holds a backslash"
	case !utf8.ValidString(k):
		return "is not valid UTF-8"
	case strings.IndexFunc(k, isC0Control) >= 0:
		return "holds a control character"
	case len(k) > 1024:
		return "is longer than S3 allows"
	case len(path.Base(k)) > 255:
		return "has a last segment longer than file-backed stores (MinIO) take"
	}
	return ""
}

// isC0Control reports C0 controls and DEL, which no derived key may hold.
// (SafeName replaces C1 controls, U+2028/U+2029 and bidi controls too; a
// key that is checked here may come from elsewhere.)
func isC0Control(r rune) bool { return r < 0x20 || r == 0x7f }
