// Package objectkey owns the bucket's key layout: every prefix the service
// reads or writes, the naming rule an upload's key must follow, and the keys
// derived from an upload (receipts, archive, failed, quarantine). Every path
// that builds or parses a key calls it, so the layout is written once.
//
//	inbox/<orgnr>/<name>                   uploads (change files)
//	snapshot/<orgnr>/<name>                snapshots of a fleet
//	dryrun/<orgnr>/<name>                  dry runs of change files
//	dryrun-snapshot/<orgnr>/<name>         dry runs of snapshots
//	archive/<orgnr>/<name>                 processed uploads from inbox/
//	archive/<source>/<orgnr>/<name>        from the other sources (snapshot/ ...)
//	failed/<orgnr>/<name>                  refused uploads (failed/<source>/... likewise)
//	quarantine/<job id>-<name>             keys that name no valid submitter
//	receipts/<orgnr>/<name>.receipt.csv    receipt (and .receipt.xlsx)
//	receipts/<orgnr>/<name>.summary.json   summary, written last
//	receipts/<orgnr>/<name>.dryrun.receipt.csv, .dryrun.summary.json   a dry run's
//	receipts/<orgnr>/history/<job id>/<name>.receipt.csv ...  every job's own receipts
//	pinned/<job id>                        the upload's bytes a job reads (private)
//	staging/<job id>/<attempt>/...         an attempt's receipts before it wins (private)
//	exports/<orgnr>/fleet.csv              a fleet owner's fleet, a valid snapshot
//
// An organisation number is nine digits, so archive/snapshot/ can never be
// mistaken for an inbox folder's archive.
package objectkey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/fleetreg/lessee"
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
	// Pinned and Staging are private: no upload, receipt or SFTP folder
	// is below them.
	Pinned  = "pinned/"
	Staging = "staging/"
)

// Source is one of the prefixes uploads arrive under: Inbox, Snapshot,
// DryRun or DryRunSnapshot.
type Source string

// Sources lists every prefix the service takes uploads from.
var Sources = []Source{Inbox, Snapshot, DryRun, DryRunSnapshot}

// Mode is how the source's files state what they want.
func (s Source) Mode() lessee.Mode {
	if s == Snapshot || s == DryRunSnapshot {
		return lessee.ModeSnapshot
	}
	return lessee.ModeChanges
}

// DryRun reports whether the source's files are dry runs.
func (s Source) DryRun() bool { return s == DryRun || s == DryRunSnapshot }

// SourceOf returns the source of a job's mode and dry-run flag.
func SourceOf(mode lessee.Mode, dryRun bool) Source {
	switch {
	case mode == lessee.ModeSnapshot && dryRun:
		return DryRunSnapshot
	case mode == lessee.ModeSnapshot:
		return Snapshot
	case dryRun:
		return DryRun
	}
	return Inbox
}

// MaxNameBytes bounds an upload's name: its receipt keys add up to 20
// bytes (".dryrun.summary.json"), and S3-compatible stores on file
// systems, MinIO included, take no key segment over 255 bytes, so a longer
// name would get no receipt at all.
const MaxNameBytes = 255 - len(".dryrun.summary.json")

// Verdict says what to do with an object key.
type Verdict int

// Key verdicts.
const (
	OK          Verdict = iota // inbox/<orgnr>/<name>
	NotInbox                   // outside inbox/: not an upload
	NoSubmitter                // names no valid submitter: quarantine
	BadName                    // valid submitter, a name that breaks the rule: refuse
)

// Parsed is an upload's key split into source, submitter and name.
type Parsed struct {
	Verdict   Verdict
	Source    Source
	Submitter string
	Name      string // as uploaded; for BadName the raw rest of the key
	Reason    string // why a key is not OK
}

// SourceOfKey returns the source prefix key is under, or false.
func SourceOfKey(key string) (Source, bool) {
	for _, s := range Sources {
		if strings.HasPrefix(key, string(s)) {
			return s, true
		}
	}
	return "", false
}

// IsUpload reports whether key is under one of the upload prefixes and
// names an object rather than a folder marker.
func IsUpload(key string) bool {
	_, ok := SourceOfKey(key)
	return ok && !strings.HasSuffix(key, "/")
}

// Parse applies the naming rule <source>/<orgnr>/<name>. The submitter's
// identity comes only from this prefix, which storage credentials confine
// each company to.
func Parse(key string) Parsed {
	src, ok := SourceOfKey(key)
	if !ok {
		return Parsed{Verdict: NotInbox, Reason: "not under " + Inbox + " or another upload prefix"}
	}
	rest := key[len(src):]
	orgnr, name, found := strings.Cut(rest, "/")
	if !found || !isASCIIDigits(orgnr) || ident.OrgNr(orgnr) != nil {
		return Parsed{Verdict: NoSubmitter, Source: src, Name: rest,
			Reason: "the folder below " + string(src) + " is not a valid organisation number"}
	}
	p := Parsed{Verdict: BadName, Source: src, Submitter: orgnr, Name: name, Reason: NameFault(name)}
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
		return "files must be placed directly in inbox/<orgnr>/ (or snapshot/<orgnr>/, dryrun/<orgnr>/, dryrun-snapshot/<orgnr>/), not in sub-folders"
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

// Key is the key of an upload called name from submitter under source.
func (s Source) Key(submitter, name string) string { return string(s) + submitter + "/" + name }

// InboxOf is the folder of submitter's uploads.
func InboxOf(submitter string) string { return Inbox + submitter + "/" }

// FolderOf is the folder of submitter's uploads under source.
func (s Source) FolderOf(submitter string) string { return string(s) + submitter + "/" }

// Export is the key of a fleet owner's fleet export.
func Export(orgnr string) string { return Exports + orgnr + "/fleet.csv" }

// ReceiptKeys are the keys a job's receipt is published under.
type ReceiptKeys struct {
	CSV, XLSX, Summary string
}

// ReceiptsFor returns the receipt keys of the upload called name from
// submitter; a dry run's carry ".dryrun" before their suffixes, so that
// a dry run never replaces the receipt of a real upload.
func ReceiptsFor(submitter, name string, dryRun bool) ReceiptKeys {
	base := path.Join(Receipts, submitter, name)
	if dryRun {
		base += ".dryrun"
	}
	return ReceiptKeys{CSV: base + ".receipt.csv", XLSX: base + ".receipt.xlsx", Summary: base + ".summary.json"}
}

// HistoryOf is the folder that keeps the receipts of job jobID.
func HistoryOf(submitter, jobID string) string {
	return Receipts + submitter + "/" + History + jobID + "/"
}

// HistoryFor returns the keys of job jobID's own receipts: those of
// ReceiptsFor, in the job's history folder.
func HistoryFor(submitter, jobID, name string, dryRun bool) ReceiptKeys {
	return ReceiptsFor(submitter, name, dryRun).In(HistoryOf(submitter, jobID))
}

// StagingOf is the private folder attempt of job jobID writes its receipts
// to before it may publish them.
func StagingOf(jobID string, attempt int) string {
	return fmt.Sprintf("%s%s/%d/", Staging, jobID, attempt)
}

// In returns the keys with the same file names in folder.
func (k ReceiptKeys) In(folder string) ReceiptKeys {
	return ReceiptKeys{CSV: folder + path.Base(k.CSV), XLSX: folder + path.Base(k.XLSX), Summary: folder + path.Base(k.Summary)}
}

// PinnedKey is the private copy of job jobID's upload that its attempts
// read.
func PinnedKey(jobID string) string { return Pinned + jobID }

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

// Archived is where a processed upload from inbox/ moves.
func Archived(submitter, name string) string { return path.Join(Archive, submitter, name) }

// FailedKey is where a refused upload from inbox/ moves.
func FailedKey(submitter, name string) string { return path.Join(Failed, submitter, name) }

// ArchivedFrom is where a processed upload from source moves: beside the
// inbox's archive for inbox/, below archive/<source>/ for the others.
func ArchivedFrom(source Source, submitter, name string) string {
	return moved(Archive, source, submitter, name)
}

// FailedFrom is where a refused upload from source moves.
func FailedFrom(source Source, submitter, name string) string {
	return moved(Failed, source, submitter, name)
}

func moved(folder string, source Source, submitter, name string) string {
	if source == Inbox || source == "" {
		return path.Join(folder, submitter, name)
	}
	return path.Join(folder, strings.TrimSuffix(string(source), "/"), submitter, name)
}

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
