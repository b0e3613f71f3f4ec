package objectkey

import (
	"strings"
	"testing"

	"github.com/fleetreg/lessee/objectkey/objectkeytest"
)

// Demo registry enterprises the adversarial tests play against each other.
const advSubmitter = "912345602" // Nordlys Leasing: the attacker in these tests

// TestParseAdversarial feeds Parse the keys an attacker would try:
// traversal (plain and percent-encoded), absolute paths, backslashes,
// control characters, look-alike digits in the orgnr, over-long names and
// nested prefixes.
func TestParseAdversarial(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n-len(".csv")) + ".csv" }
	for _, tc := range []struct {
		name      string
		key       string
		verdict   Verdict
		submitter string
	}{
		// Traversal, plain.
		{"ErrDotDotIntoCompetitorInbox", "inbox/912345602/../912345610/x.csv", BadName, advSubmitter},
		{"ErrDotDotIntoCompetitorReceipts", "inbox/912345602/../../receipts/912345610/x.csv", BadName, advSubmitter},
		{"ErrDotDotAsOrgnr", "inbox/../912345610/x.csv", NoSubmitter, ""},
		{"ErrDotDotName", "inbox/912345602/..", BadName, advSubmitter},
		{"ErrDotName", "inbox/912345602/.", BadName, advSubmitter},
		{"ErrDotSegment", "inbox/912345602/./x.csv", BadName, advSubmitter},
		{"ErrDotDotInsideName", "inbox/912345602/x..csv", BadName, advSubmitter},
		// Traversal, percent-encoded: "..%2f" still holds "..".
		{"ErrEncodedSlashAfterDotDot", "inbox/912345602/..%2f912345610%2fx.csv", BadName, advSubmitter},
		{"ErrEncodedBackslashAfterDotDot", "inbox/912345602/..%5c912345610%5cx.csv", BadName, advSubmitter},
		{"ErrEncodedOrgnr", "inbox/%2e%2e/912345610/x.csv", NoSubmitter, ""},
		{"ErrEncodedDigitsInOrgnr", "inbox/%39%31%32%33%34%35%36%30%32/x.csv", NoSubmitter, ""},
		// Overlong UTF-8 for "../" is not valid UTF-8.
		{"ErrOverlongUTF8DotDotSlash", "inbox/912345602/\xc0\xae\xc0\xae\xc0\xafx.csv", BadName, advSubmitter},
		{"ErrInvalidUTF8", "inbox/912345602/\xff\xfe.csv", BadName, advSubmitter},
		// Absolute paths and empty segments.
		{"IgnoredAbsolute", "/inbox/912345602/x.csv", NotInbox, ""},
		{"IgnoredAbsoluteEtc", "/etc/passwd", NotInbox, ""},
		{"ErrEmptyOrgnrSegment", "inbox//912345602/x.csv", NoSubmitter, ""},
		{"ErrEmptyNameSegment", "inbox/912345602//x.csv", BadName, advSubmitter},
		{"ErrFolderMarker", "inbox/912345602/", BadName, advSubmitter},
		{"ErrNoFolder", "inbox/912345602", NoSubmitter, ""},
		// Backslashes.
		{"ErrBackslashName", "inbox/912345602/..\\912345610\\x.csv", BadName, advSubmitter},
		{"ErrWindowsPath", "inbox/912345602/C:\\x.csv", BadName, advSubmitter},
		{"ErrBackslashAfterOrgnr", "inbox/912345602\\x.csv", NoSubmitter, ""},
		{"IgnoredBackslashPrefix", "inbox\\912345602\\x.csv", NotInbox, ""},
		// Control characters: C0, DEL, C1, Unicode line separators.
		{"ErrNUL", "inbox/912345602/x\x00.csv", BadName, advSubmitter},
		{"ErrTab", "inbox/912345602/x\t.csv", BadName, advSubmitter},
		{"ErrCR", "inbox/912345602/x\r.csv", BadName, advSubmitter},
		{"ErrLF", "inbox/912345602/x\n.csv", BadName, advSubmitter},
		{"ErrEscape", "inbox/912345602/\x1b[2Jx.csv", BadName, advSubmitter},
		{"ErrDEL", "inbox/912345602/x\x7f.csv", BadName, advSubmitter},
		{"ErrNEL", "inbox/912345602/x\u0085.csv", BadName, advSubmitter},
		{"ErrLineSeparator", "inbox/912345602/x\u2028.csv", BadName, advSubmitter},
		{"ErrParagraphSeparator", "inbox/912345602/x\u2029.csv", BadName, advSubmitter},
		{"ErrControlInOrgnr", "inbox/912345602\x00/x.csv", NoSubmitter, ""},
		// Look-alike digits and padding in the orgnr.
		{"ErrFullWidthDigits", "inbox/９１２３４５６０２/x.csv", NoSubmitter, ""},
		{"ErrOneFullWidthDigit", "inbox/91234560２/x.csv", NoSubmitter, ""},
		{"ErrArabicIndicDigits", "inbox/٩١٢٣٤٥٦٠٢/x.csv", NoSubmitter, ""},
		{"ErrExtendedArabicIndicDigits", "inbox/۹۱۲۳۴۵۶۰۲/x.csv", NoSubmitter, ""},
		{"ErrDevanagariDigits", "inbox/९१२३४५६०२/x.csv", NoSubmitter, ""},
		{"ErrMathBoldDigits", "inbox/𝟗𝟏𝟐𝟑𝟒𝟓𝟔𝟎𝟐/x.csv", NoSubmitter, ""},
		{"ErrSuperscriptDigit", "inbox/91234560²/x.csv", NoSubmitter, ""},
		{"ErrZeroWidthSpace", "inbox/912345602\u200b/x.csv", NoSubmitter, ""},
		{"ErrLeadingSpace", "inbox/ 912345602/x.csv", NoSubmitter, ""},
		{"ErrTrailingSpace", "inbox/912345602 /x.csv", NoSubmitter, ""},
		{"ErrSpacedOrgnr", "inbox/912 345 602/x.csv", NoSubmitter, ""},
		{"ErrPlusSign", "inbox/+912345602/x.csv", NoSubmitter, ""},
		{"ErrLeadingZero", "inbox/0912345602/x.csv", NoSubmitter, ""},
		{"ErrBadCheckDigit", "inbox/912345603/x.csv", NoSubmitter, ""},
		{"ErrPersonalNumberAsOrgnr", "inbox/12128822249/x.csv", NoSubmitter, ""},
		{"IgnoredUpperCasePrefix", "INBOX/912345602/x.csv", NotInbox, ""},
		// Over-long names: the limit is 235 bytes (255 less the longest
		// receipt suffix, ".dryrun.summary.json"), counted in bytes.
		{"OKName235Bytes", "inbox/912345602/" + long(235), OK, advSubmitter},
		{"ErrName236Bytes", "inbox/912345602/" + long(236), BadName, advSubmitter},
		{"ErrName256Bytes", "inbox/912345602/" + long(256), BadName, advSubmitter},
		{"ErrName256BytesMultibyte", "inbox/912345602/" + strings.Repeat("æ", 128), BadName, advSubmitter},
		{"ErrName4KiB", "inbox/912345602/" + long(4096), BadName, advSubmitter},
		// Nested prefixes.
		{"ErrSubFolder", "inbox/912345602/sub/x.csv", BadName, advSubmitter},
		{"ErrCompetitorFolderBelowOwn", "inbox/912345602/912345610/x.csv", BadName, advSubmitter},
		{"ErrInboxBelowOwn", "inbox/912345602/inbox/912345610/x.csv", BadName, advSubmitter},
		{"ErrReceiptsBelowOwn", "inbox/912345602/receipts/912345610/x.csv", BadName, advSubmitter},
		// Kept literally: S3 keys are never URL-decoded, so these are plain
		// names in the submitter's own folder (see the threat model).
		{"OKPercentEncodedIsLiteral", "inbox/912345602/%2e%2e%2f912345610%2fx.csv", OK, advSubmitter},
		{"OKFullWidthSolidusIsLiteral", "inbox/912345602/a／b.csv", OK, advSubmitter},
		{"OKTwoDotLeaderIsLiteral", "inbox/912345602/‥x.csv", OK, advSubmitter},
		{"OKSQLLookingName", "inbox/912345602/x'; DROP TABLE jobs; --.csv", OK, advSubmitter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Parse(tc.key)
			if got.Verdict != tc.verdict || got.Submitter != tc.submitter {
				t.Fatalf("Parse(%q) = verdict %d submitter %q (%s); want verdict %d submitter %q",
					tc.key, got.Verdict, got.Submitter, got.Reason, tc.verdict, tc.submitter)
			}
			if got.Verdict != OK && got.Reason == "" {
				t.Errorf("Parse(%q): refused without a reason", tc.key)
			}
			if got.Verdict == OK && (strings.ContainsAny(got.Name, "/\\") || got.Name != strings.TrimPrefix(tc.key, Inbox+got.Submitter+"/")) {
				t.Errorf("Parse(%q): accepted name %q is not the literal last segment", tc.key, got.Name)
			}
		})
	}
}

// FuzzDerivedKeysStayInPrefix checks, for any key, that every object key
// the handler derives from it (receipt, summary, XLSX receipt, archive,
// failed, quarantine) is a clean path inside the prefix the verdict
// allows: the submitter's own folders, or quarantine/.
func FuzzDerivedKeysStayInPrefix(f *testing.F) {
	for _, s := range []string{
		"inbox/912345602/a.csv", "inbox/912345602/../912345610/x.csv", "inbox/../912345610/x.csv",
		"inbox/912345602/..%2f912345610%2fx.csv", "inbox/912345602/.", "inbox/912345602/", "inbox//x",
		"inbox/912345602/\xc0\xae\xc0\xae/x", "inbox/９１２３４５６０２/x.csv", "inbox/912345602/a\\..\\b",
		"inbox/912345602/" + strings.Repeat("..", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p := Parse(key)
		var derived []string
		var allowed []string
		switch p.Verdict {
		case NotInbox:
			return // not processed: nothing is written
		case NoSubmitter:
			derived = []string{Quarantined("abcdefghijklmnopqrstuvwx", p.Name)}
			allowed = []string{"quarantine/"}
		case OK, BadName:
			name := SafeName(p.Name)
			derived = []string{ReceiptCSV(p.Submitter, name), Summary(p.Submitter, name), ReceiptXLSX(p.Submitter, name),
				Archived(p.Submitter, name), FailedKey(p.Submitter, name)}
			allowed = []string{"receipts/" + p.Submitter + "/", "archive/" + p.Submitter + "/", "failed/" + p.Submitter + "/"}
			if len(p.Submitter) != 9 || !isASCIIDigits(p.Submitter) {
				t.Fatalf("verdict %d with submitter %q", p.Verdict, p.Submitter)
			}
		}
		for _, d := range derived {
			if msg := objectkeytest.UnsafeDerivedKey(d, allowed); msg != "" {
				t.Fatalf("key %q: derived %q %s", key, d, msg)
			}
		}
	})
}
