package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/fleetreg/lessee"

// TestNoAdapterImports: the domain and every package above the adapters
// depend on small interfaces over domain types, never on storage/...; only
// cmd/lessee wires the adapters in. Test files may use real adapters.
func TestNoAdapterImports(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list dependencies with")
	}
	for _, pkg := range []string{"", "/ident", "/ingest", "/validate", "/receipt", "/worker", "/web", "/sftpd", "/intake", "/objectkey", "/export", "/api"} {
		t.Run(strings.TrimPrefix(pkg, "/"), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(goBin, "list", "-deps", module+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", module+pkg, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, module+"/storage/") {
					t.Errorf("%s depends on %s", module+pkg, dep)
				}
				if pkg == "" && strings.HasPrefix(dep, module+"/") {
					t.Errorf("the domain package depends on %s", dep)
				}
			}
		})
	}
}
