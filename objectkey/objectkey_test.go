package objectkey

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key       string
		verdict   Verdict
		submitter string
		name      string
	}{
		{"inbox/912345602/januar.csv", OK, "912345602", "januar.csv"},
		{"inbox/912345602/leietakere æøå 2026.xlsx", OK, "912345602", "leietakere æøå 2026.xlsx"},
		{"archive/912345602/januar.csv", NotInbox, "", ""},
		{"receipts/912345602/x.csv", NotInbox, "", ""},
		{"inbox/912345603/x.csv", NoSubmitter, "", ""}, // bad check digit
		{"inbox/91234560/x.csv", NoSubmitter, "", ""},  // 8 digits
		{"inbox/９12345602/x.csv", NoSubmitter, "", ""}, // full-width digit look-alike
		{"inbox/x.csv", NoSubmitter, "", ""},
		{"inbox/../912345602/x.csv", NoSubmitter, "", ""},
		{"inbox/912345602/", BadName, "912345602", ""},
		{"inbox/912345602/sub/x.csv", BadName, "912345602", "sub/x.csv"},
		{"inbox/912345602/../912345610/x.csv", BadName, "912345602", "../912345610/x.csv"},
		{"inbox/912345602/..", BadName, "912345602", ".."},
		{"inbox/912345602/a\\b.csv", BadName, "912345602", "a\\b.csv"},
		{"inbox/912345602/a\x00b.csv", BadName, "912345602", "a\x00b.csv"},
		{"inbox/912345602/a\nb.csv", BadName, "912345602", "a\nb.csv"},
		{"inbox/912345602/" + strings.Repeat("a", 256), BadName, "912345602", strings.Repeat("a", 256)},
	} {
		got := Parse(tc.key)
		if got.Verdict != tc.verdict || got.Submitter != tc.submitter || (tc.verdict != NotInbox && tc.verdict != NoSubmitter && got.Name != tc.name) {
			t.Errorf("Parse(%q) = %+v, want verdict %d submitter %q name %q", tc.key, got, tc.verdict, tc.submitter, tc.name)
		}
		if got.Verdict != OK && got.Reason == "" {
			t.Errorf("Parse(%q): no reason given", tc.key)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"inbox/912345602/a.csv", "inbox/912345602/../x", "inbox//x", "inbox/912345602/a/b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p := Parse(key)
		if p.Verdict != OK {
			return
		}
		// An accepted key is exactly inbox/<submitter>/<name> with a safe name.
		if key != Inbox+p.Submitter+"/"+p.Name {
			t.Fatalf("accepted %q but it is not inbox/%s/%s", key, p.Submitter, p.Name)
		}
		if len(p.Submitter) != 9 || strings.ContainsAny(p.Name, "/\\") || strings.Contains(p.Name, "..") ||
			!utf8.ValidString(p.Name) || p.Name == "" || len(p.Name) > MaxNameBytes {
			t.Fatalf("accepted unsafe key %q", key)
		}
		for _, r := range p.Name {
			if isControl(r) {
				t.Fatalf("accepted control character in %q", key)
			}
		}
	})
}

func TestSafeName(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"a/b.csv", "../../etc/passwd", "x\x00y", strings.Repeat("æ", 150), "", "."} {
		got := SafeName(in)
		if strings.ContainsAny(got, "/\\\x00") || strings.Contains(got, "..") || got == "" || !utf8.ValidString(got) || len(got) > 255 {
			t.Errorf("SafeName(%q) = %q is not safe", in, got)
		}
	}
}

func TestSafeNameKeepsLongNamesDistinct(t *testing.T) {
	t.Parallel()
	a, b := strings.Repeat("x", 300)+"a.csv", strings.Repeat("x", 300)+"b.csv"
	if SafeName(a) == SafeName(b) {
		t.Errorf("two long names share the derived name %q", SafeName(a))
	}
	if ok := "Bilær øst (2026).csv"; SafeName(ok) != ok {
		t.Errorf("SafeName changed an acceptable name: %q", SafeName(ok))
	}
	if got := SafeName("invoice\u202egsc.csv"); strings.ContainsRune(got, '\u202e') {
		t.Errorf("SafeName kept a bidi override: %q", got)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	r, s := ReceiptCSV("923609016", "januar.csv"), Summary("923609016", "januar.csv")
	if r != "receipts/923609016/januar.csv.receipt.csv" || s != "receipts/923609016/januar.csv.summary.json" {
		t.Errorf("Keys = %s, %s", r, s)
	}
}

func TestReceiptXLSX(t *testing.T) {
	t.Parallel()
	if got, want := ReceiptXLSX("912345602", "fil.xlsx"), "receipts/912345602/fil.xlsx.receipt.xlsx"; got != want {
		t.Errorf("XLSXKey = %q, want %q", got, want)
	}
}
