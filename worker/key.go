package worker

import (
	"strings"
	"unicode/utf8"

	"github.com/fleetreg/lessee/ident"
)

// InboxPrefix is where uploads land: inbox/<submitter-orgnr>/<name>.
const InboxPrefix = "inbox/"

// maxNameBytes bounds an object name so derived keys stay under S3's limit.
const maxNameBytes = 255

// KeyVerdict says what to do with an object key.
type KeyVerdict int

// Key verdicts.
const (
	KeyOK          KeyVerdict = iota // inbox/<orgnr>/<name>
	KeyNotInbox                      // outside inbox/: not ours to process
	KeyNoSubmitter                   // names no valid submitter: quarantine
	KeyBadName                       // valid submitter, name breaks the rules: refuse
)

// ParsedKey is an inbox key split into submitter and name.
type ParsedKey struct {
	Verdict   KeyVerdict
	Submitter string
	Name      string // as uploaded; for KeyBadName the raw rest of the key
	Reason    string // why a key is not OK
}

// ParseKey applies the naming rule inbox/<orgnr>/<name>. The submitter's
// identity comes only from this prefix, which storage credentials confine
// each company to.
func ParseKey(key string) ParsedKey {
	if !strings.HasPrefix(key, InboxPrefix) {
		return ParsedKey{Verdict: KeyNotInbox, Reason: "not under inbox/"}
	}
	rest := key[len(InboxPrefix):]
	orgnr, name, found := strings.Cut(rest, "/")
	if !found || !isASCIIDigits(orgnr) || ident.OrgNr(orgnr) != nil {
		return ParsedKey{Verdict: KeyNoSubmitter, Name: rest, Reason: "the folder below inbox/ is not a valid organisation number"}
	}
	p := ParsedKey{Verdict: KeyBadName, Submitter: orgnr, Name: name}
	switch {
	case name == "":
		p.Reason = "the object has no file name"
	case !utf8.ValidString(name):
		p.Reason = "the file name is not valid UTF-8"
	case len(name) > maxNameBytes:
		p.Reason = "the file name is longer than 255 bytes"
	case strings.Contains(name, "/"):
		p.Reason = "files must be placed directly in inbox/<orgnr>/, not in sub-folders"
	case strings.Contains(name, "\\"):
		p.Reason = "the file name contains a backslash"
	case name == "." || strings.Contains(name, ".."):
		p.Reason = "the file name contains '..'"
	case strings.IndexFunc(name, isControl) >= 0:
		p.Reason = "the file name contains control characters"
	default:
		p.Verdict, p.Reason = KeyOK, ""
	}
	return p
}

func isASCIIDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029' ||
		// Bidirectional overrides make a name display as something else.
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f'
}
