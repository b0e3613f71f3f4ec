package worker

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key       string
		verdict   KeyVerdict
		submitter string
		name      string
	}{
		{"inbox/912345602/januar.csv", KeyOK, "912345602", "januar.csv"},
		{"inbox/912345602/leietakere æøå 2026.xlsx", KeyOK, "912345602", "leietakere æøå 2026.xlsx"},
		{"archive/912345602/januar.csv", KeyNotInbox, "", ""},
		{"receipts/912345602/x.csv", KeyNotInbox, "", ""},
		{"inbox/912345603/x.csv", KeyNoSubmitter, "", ""}, // bad check digit
		{"inbox/91234560/x.csv", KeyNoSubmitter, "", ""},  // 8 digits
		{"inbox/９12345602/x.csv", KeyNoSubmitter, "", ""}, // full-width digit look-alike
		{"inbox/x.csv", KeyNoSubmitter, "", ""},
		{"inbox/../912345602/x.csv", KeyNoSubmitter, "", ""},
		{"inbox/912345602/", KeyBadName, "912345602", ""},
		{"inbox/912345602/sub/x.csv", KeyBadName, "912345602", "sub/x.csv"},
		{"inbox/912345602/../912345610/x.csv", KeyBadName, "912345602", "../912345610/x.csv"},
		{"inbox/912345602/..", KeyBadName, "912345602", ".."},
		{"inbox/912345602/a\\b.csv", KeyBadName, "912345602", "a\\b.csv"},
		{"inbox/912345602/a\x00b.csv", KeyBadName, "912345602", "a\x00b.csv"},
		{"inbox/912345602/a\nb.csv", KeyBadName, "912345602", "a\nb.csv"},
		{"inbox/912345602/" + strings.Repeat("a", 256), KeyBadName, "912345602", strings.Repeat("a", 256)},
	} {
		got := ParseKey(tc.key)
		if got.Verdict != tc.verdict || got.Submitter != tc.submitter || (tc.verdict != KeyNotInbox && tc.verdict != KeyNoSubmitter && got.Name != tc.name) {
			t.Errorf("ParseKey(%q) = %+v, want verdict %d submitter %q name %q", tc.key, got, tc.verdict, tc.submitter, tc.name)
		}
		if got.Verdict != KeyOK && got.Reason == "" {
			t.Errorf("ParseKey(%q): no reason given", tc.key)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"inbox/912345602/a.csv", "inbox/912345602/../x", "inbox//x", "inbox/912345602/a/b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p := ParseKey(key)
		if p.Verdict != KeyOK {
			return
		}
		// An accepted key is exactly inbox/<submitter>/<name> with a safe name.
		if key != InboxPrefix+p.Submitter+"/"+p.Name {
			t.Fatalf("accepted %q but it is not inbox/%s/%s", key, p.Submitter, p.Name)
		}
		if len(p.Submitter) != 9 || strings.ContainsAny(p.Name, "/\\") || strings.Contains(p.Name, "..") ||
			!utf8.ValidString(p.Name) || p.Name == "" || len(p.Name) > maxNameBytes {
			t.Fatalf("accepted unsafe key %q", key)
		}
		for _, r := range p.Name {
			if isControl(r) {
				t.Fatalf("accepted control character in %q", key)
			}
		}
	})
}
