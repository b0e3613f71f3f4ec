// Package objectkey owns the bucket's key layout: every prefix the service
// reads or writes, the naming rule an upload's key must follow, and the keys
// derived from an upload (receipts, archive, failed, quarantine). Every path
// that builds or parses a key calls it, so the layout is written once.
//
//	inbox/<orgnr>/<name>                   uploads (change files)
//	archive/<orgnr>/<name>                 processed uploads
//	failed/<orgnr>/<name>                  refused uploads
//	quarantine/<job id>-<name>             keys that name no valid submitter
//	receipts/<orgnr>/<name>.receipt.csv    receipt (and .receipt.xlsx)
//	receipts/<orgnr>/<name>.summary.json   summary, written last
//
// The reconciling prefixes of the product contract (dryrun/,
// dryrun-snapshot/, snapshot/, exports/) and the receipt history have
// their constants here too, so that their layout lands in this one place.
package objectkey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/fleetreg/lessee/ident"
)

// Prefixes of the bucket.
const (
	Inbox          = "inbox/"
	Archive        = "archive/"
	Failed         = "failed/"
	Quarantine     = "quarantine/"
	Receipts       = "receipts/"
	DryRun         = "dryrun/"
	DryRunSnapshot = "dryrun-snapshot/"
	Snapshot       = "snapshot/"
	Exports        = "exports/"
	// History is the folder below receipts/<orgnr>/ that keeps every job's
	// receipt under its job id.
	History = "history/"
)

// MaxNameBytes bounds an upload's name: its receipt keys add up to 13
// bytes (".summary.json"), and S3-compatible stores on file systems, MinIO
// included, take no key segment over 255 bytes, so a longer name would get
// no receipt at all.
const MaxNameBytes = 255 - len(".summary.json")

// Verdict says what to do with an object key.
type Verdict int

// Key verdicts.
const (
	OK          Verdict = iota // inbox/<orgnr>/<name>
	NotInbox                   // outside inbox/: not an upload
	NoSubmitter                // names no valid submitter: quarantine
	BadName                    // valid submitter, a name that breaks the rule: refuse
)

// Parsed is an upload's key split into submitter and name.
type Parsed struct {
	Verdict   Verdict
	Submitter string
	Name      string // as uploaded; for BadName the raw rest of the key
	Reason    string // why a key is not OK
}

// Parse applies the naming rule inbox/<orgnr>/<name>. The submitter's
// identity comes only from this prefix, which storage credentials confine
// each company to.
func Parse(key string) Parsed {
	if !strings.HasPrefix(key, Inbox) {
		return Parsed{Verdict: NotInbox, Reason: "not under " + Inbox}
	}
	rest := key[len(Inbox):]
	orgnr, name, found := strings.Cut(rest, "/")
	if !found || !isASCIIDigits(orgnr) || ident.OrgNr(orgnr) != nil {
		return Parsed{Verdict: NoSubmitter, Name: rest, Reason: "the folder below inbox/ is not a valid organisation number"}
	}
	p := Parsed{Verdict: BadName, Submitter: orgnr, Name: name, Reason: NameFault(name)}
	if p.Reason == "" {
		p.Verdict = OK
	}
	return p
}

// NameFault says why name breaks the naming rule of an upload's name, or
// returns "" when it keeps it.
func NameFault(name string) string {
	switch {
	case name == "":
		return "the object has no file name"
	case !utf8.ValidString(name):
		return "the file name is not valid UTF-8"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("the file name is longer than %d bytes", MaxNameBytes)
	case strings.Contains(name, "/"):
		return "files must be placed directly in inbox/<orgnr>/, not in sub-folders"
	case strings.Contains(name, "\\"):
		return "the file name contains a backslash"
	case name == "." || strings.Contains(name, ".."):
		return "the file name contains '..'"
	case strings.IndexFunc(name, isControl) >= 0:
		return "the file name contains control characters"
	}
	return ""
}

// InboxKey is the key of an upload called name from submitter.
func InboxKey(submitter, name string) string { return Inbox + submitter + "/" + name }

// InboxOf is the folder of submitter's uploads.
func InboxOf(submitter string) string { return Inbox + submitter + "/" }

// ReceiptsOf is the folder of submitter's receipts.
func ReceiptsOf(submitter string) string { return Receipts + submitter + "/" }

// ReceiptCSV is the key of the receipt CSV of the upload called name.
func ReceiptCSV(submitter, name string) string {
	return path.Join(Receipts, submitter, name) + ".receipt.csv"
}

// ReceiptXLSX is the key of the XLSX receipt of an XLSX upload called name.
func ReceiptXLSX(submitter, name string) string {
	return path.Join(Receipts, submitter, name) + ".receipt.xlsx"
}

// Summary is the key of the summary JSON of the upload called name.
func Summary(submitter, name string) string {
	return path.Join(Receipts, submitter, name) + ".summary.json"
}

// Archived is where a processed upload moves.
func Archived(submitter, name string) string { return path.Join(Archive, submitter, name) }

// FailedKey is where a refused upload moves.
func FailedKey(submitter, name string) string { return path.Join(Failed, submitter, name) }

// Quarantined is where an upload that names no valid submitter moves; the
// job id keeps two such uploads with one name apart.
func Quarantined(jobID, name string) string { return Quarantine + SafeName(jobID+"-"+name) }

// SafeName turns an object name into one that is safe to use as the last
// element of a derived key (receipt, archive): no slashes, no control or
// bidirectional-override characters, no "..", at most MaxNameBytes. Names
// the inbox accepts pass through unchanged.
func SafeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == '/' || r == '\\' || isControl(r) {
			b.WriteByte('_')
		} else {
			b.WriteRune(r)
		}
	}
	s := strings.ReplaceAll(b.String(), "..", "__")
	if s == "" || s == "." {
		s = "_"
	}
	if len(s) > MaxNameBytes {
		// Keep distinct long names distinct: cut, then add a hash of the whole.
		sum := sha256.Sum256([]byte(name))
		s = strings.ToValidUTF8(s[:MaxNameBytes-17], "") + "-" + hex.EncodeToString(sum[:8])
	}
	return s
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

// isControl reports the characters no name may hold: C0 and C1 controls,
// line and paragraph separators, and the bidirectional embedding, override
// and isolate controls, which make a name display as something else.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f'
}
