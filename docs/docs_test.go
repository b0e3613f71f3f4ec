package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetreg/lessee"
)

// TestContractListsEveryCode: the product contract names every code the
// service can give, and the README's table explains each.
func TestContractListsEveryCode(t *testing.T) {
	t.Parallel()
	spec := read(t, "spec.md")
	readme := read(t, "../README.md")
	for _, c := range lessee.Codes() {
		if !regexp.MustCompile(`\b` + string(c) + `\b`).MatchString(spec) {
			t.Errorf("docs/spec.md does not name code %s", c)
		}
		if !regexp.MustCompile(`(?m)^\|[^\n]*\b` + string(c) + `\b[^\n]*\| (row|file|row / file) \|`).MatchString(readme) {
			t.Errorf("the README's Codes table does not explain %s", c)
		}
	}
}

// TestLinksStayInRepo: every relative link of the README and the docs
// names a file of the repository, and a heading of it when it names one;
// nothing points outside the clone.
func TestLinksStayInRepo(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		text := read(t, f)
		if strings.Contains(text, "shared/SPEC") {
			t.Errorf("%s refers to shared/SPEC.md, which no clone has", f)
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			file := f
			if path != "" {
				file = filepath.Join(filepath.Dir(f), path)
			}
			st, err := os.Stat(file)
			if err != nil {
				t.Errorf("%s links to %s, which does not exist", f, target)
				continue
			}
			if frag == "" || st.IsDir() {
				continue
			}
			if !headings(t, file)[frag] {
				t.Errorf("%s links to %s, which has no heading #%s", f, file, frag)
			}
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// headings returns the anchors GitHub gives the Markdown headings of
// file, outside code blocks.
func headings(t *testing.T, file string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	inCode := false
	for _, line := range strings.Split(read(t, file), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}
