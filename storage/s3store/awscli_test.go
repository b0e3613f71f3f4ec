package s3store

import (
	"bytes"
	"context"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsCLIs returns the distinct AWS CLI executables on this machine: the
// one on PATH and Debian's /usr/bin/aws (v2), which may differ when a v1
// CLI is installed with pip.
func awsCLIs() []string {
	var out []string
	seen := map[string]bool{}
	cands := []string{"/usr/bin/aws"}
	if p, err := exec.LookPath("aws"); err == nil {
		cands = append([]string{p}, cands...)
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err != nil || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}

// TestAWSCLI drives the embedded server with each installed AWS CLI: cp up
// and down (single and multipart), ls, and keys with spaces and æøå.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	clis := awsCLIs()
	if len(clis) == 0 {
		t.Skip("aws CLI not installed (apt-get install awscli); skipping the CLI compatibility test")
	}
	for _, bin := range clis {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Logf("skipping %s: %v", bin, err)
			continue
		}
		version, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
		t.Run(version+"/http", func(t *testing.T) {
			t.Parallel()
			testAWSCLI(t, bin, false)
		})
		// Over HTTPS recent CLIs send aws-chunked bodies with CRC32 trailers.
		t.Run(version+"/https", func(t *testing.T) {
			t.Parallel()
			testAWSCLI(t, bin, true)
		})
	}
}

func testAWSCLI(t *testing.T, awsBin string, useTLS bool) {
	dir := t.TempDir()
	srv, err := NewServer(ServerConfig{Dir: dir, Bucket: testBucket, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ts := httptest.NewUnstartedServer(rec.wrap(srv.Handler()))
	if useTLS {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	baseArgs := []string{"--endpoint-url", ts.URL}
	if useTLS {
		baseArgs = append(baseArgs, "--no-verify-ssl")
	}
	t.Cleanup(func() {
		t.Logf("aws-chunked requests seen: %d of %d", len(rec.matching("aws-chunked")), len(rec.matching("")))
	})
	home := t.TempDir()

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append(baseArgs, args...)...)
		cmd.Env = []string{
			"HOME=" + home,
			"PATH=" + os.Getenv("PATH"),
			"AWS_ACCESS_KEY_ID=test",
			"AWS_SECRET_ACCESS_KEY=test",
			"AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_PAGER=",
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	c := newTestClient(t, ts.URL, func(o *s3.Options) { o.HTTPClient = ts.Client() })

	tests := []struct {
		name string
		key  string
		size int
	}{
		{"OK/Small", "inbox/923609016/x.csv", 2000},
		{"OK/SpacesAndÆØÅ", "inbox/923609016/bil og båt æøå.csv", 3000},
		{"OK/Multipart", "inbox/923609016/big.csv", 9<<20 + 1}, // above the CLI's 8 MiB multipart threshold
	}
	for _, tt := range tests {
		if useTLS && tt.name == "OK/SpacesAndÆØÅ" {
			continue // the HTTPS run is about aws-chunked uploads; keep it short
		}
		t.Run(tt.name, func(t *testing.T) {
			data := randomBytes(tt.size)
			src := filepath.Join(t.TempDir(), "upload.csv")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			run(t, "s3", "cp", src, "s3://"+testBucket+"/"+tt.key)
			if got, _ := download(t, c, tt.key); !bytes.Equal(got, data) {
				t.Fatal("object differs from the uploaded file")
			}
			if useTLS {
				return
			}
			dst := filepath.Join(t.TempDir(), "download.csv")
			run(t, "s3", "cp", "s3://"+testBucket+"/"+tt.key, dst)
			if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("downloaded file differs: %v", err)
			}
		})
	}

	if useTLS {
		return
	}
	t.Run("OK/Ls", func(t *testing.T) {
		if out := run(t, "s3", "ls"); !strings.Contains(out, testBucket) {
			t.Fatalf("aws s3 ls: %q", out)
		}
		out := run(t, "s3", "ls", "--recursive", "s3://"+testBucket+"/inbox/")
		for _, tt := range tests {
			if !strings.Contains(out, tt.key) {
				t.Errorf("aws s3 ls is missing %q:\n%s", tt.key, out)
			}
		}
	})
}
