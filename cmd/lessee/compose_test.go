package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/fleetreg/lessee"
)

// serveEnvNames returns the environment variable of every serve flag.
func serveEnvNames() map[string]bool {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.flags(fs)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[envName(f.Name)] = true })
	return names
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"},
		cli.WithWorkingDirectory("../.."), cli.WithName("lessee"), cli.WithEnv([]string{}), cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with the Compose specification loader: %v", err)
	}
	return p
}

// TestComposeFile checks that docker-compose.yml starts what production
// needs: the services, their health checks and the variables the binary
// reads.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	service := func(name string) types.ServiceConfig {
		t.Helper()
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s missing: %v", name, err)
		}
		return s
	}
	for _, name := range []string{"postgres", "redis", "minio"} {
		if hc := service(name).HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
	}
	init := service("minio-init")
	if cmd := strings.Join(init.Command, " "); !strings.Contains(cmd, "mc mb") || !strings.Contains(cmd, "mc event add") {
		t.Errorf("minio-init must create the bucket and the event notification, got %q", cmd)
	}
	if ep := service("minio").Environment["MINIO_NOTIFY_WEBHOOK_ENDPOINT_LESSEE"]; ep == nil || !strings.HasSuffix(*ep, "/hooks/s3") {
		t.Error("minio must send object-created events to the webhook /hooks/s3")
	}
	if !slices.Equal(service("migrate").Command, types.ShellCommand{"migrate"}) {
		t.Errorf("migrate service runs %q, want lessee migrate", service("migrate").Command)
	}

	flags := serveEnvNames()
	roles := map[string]string{"http": roleHTTP, "worker-1": roleWorker, "worker-2": roleWorker}
	for name, role := range roles {
		s := service(name)
		if s.Build == nil || s.Build.Context == "" {
			t.Errorf("%s is not built from the Dockerfile", name)
		}
		if hc := s.HealthCheck; hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "healthcheck") {
			t.Errorf("%s has no 'lessee healthcheck' health check", name)
		}
		env := s.Environment
		for _, v := range []string{"LESSEE_DATABASE_URL", "LESSEE_REDIS_URL", "LESSEE_S3_ENDPOINT", "LESSEE_S3_ACCESS_KEY", "LESSEE_S3_SECRET_KEY", "LESSEE_BUCKET"} {
			if env[v] == nil || *env[v] == "" {
				t.Errorf("%s lacks %s", name, v)
			}
		}
		if r := env["LESSEE_ROLE"]; r == nil || *r != role {
			t.Errorf("%s: LESSEE_ROLE should be %s", name, role)
		}
		if m := env["LESSEE_MIGRATE"]; m == nil || *m != "false" {
			t.Errorf("%s must leave migrations to the migrate service (LESSEE_MIGRATE=false)", name)
		}
		for v := range env {
			if strings.HasPrefix(v, "LESSEE_") && !flags[v] {
				t.Errorf("%s sets %s, which no serve flag reads", name, v)
			}
		}
		for _, dep := range []string{"migrate", "redis"} {
			if _, ok := s.DependsOn[dep]; !ok {
				t.Errorf("%s does not wait for %s", name, dep)
			}
		}
	}
	if secret := service("http").Environment["LESSEE_WEBHOOK_SECRET"]; secret == nil || *secret == "" {
		t.Error("the http service needs LESSEE_WEBHOOK_SECRET for MinIO's events")
	}
	published := false
	for _, port := range service("http").Ports {
		published = published || port.Target == 8080
	}
	if !published {
		t.Error("the http service does not publish port 8080")
	}
	if _, err := os.Stat("../../Dockerfile"); err != nil {
		t.Errorf("Dockerfile: %v", err)
	}
}

// allFlagNames returns the environment variable of every flag of every
// command, read from the commands' own help output.
func allFlagNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	flagLine := regexp.MustCompile(`(?m)^\s+--([a-z0-9][a-z0-9-]*)`)
	for _, cmd := range [][]string{{"serve"}, {"submit"}, {"receipt"}, {"status"}, {"registry", "import"}, {"migrate"},
		{"gen", "registry"}, {"gen", "changes"}, {"bench"}, {"healthcheck"}, {"export"}, {"token"}} {
		var out bytes.Buffer
		_ = run(context.Background(), append(cmd, "-h"), func(string) string { return "" }, &out, &out)
		found := flagLine.FindAllStringSubmatch(out.String(), -1)
		if len(found) == 0 {
			t.Fatalf("lessee %s -h lists no flags:\n%s", strings.Join(cmd, " "), out.String())
		}
		for _, m := range found {
			names[envName(m[1])] = true
		}
	}
	return names
}

// TestReadmeVariablesExist checks that every LESSEE_ variable and flag
// the README names is one the code reads, and that every serve flag is in
// the README.
func TestReadmeVariablesExist(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	flags := allFlagNames(t)
	for _, v := range regexp.MustCompile(`\bLESSEE_[A-Z0-9_]+`).FindAllString(string(readme), -1) {
		switch v {
		case "LESSEE_FLAG", "LESSEE_TEST_ARTIFACTS", "LESSEE_CRASH_ROWS", "LESSEE_MINIO_BIN":
			continue // a placeholder and test-only variables
		case string(lessee.CodeLesseeConflict), string(lessee.CodeLesseeMismatch):
			continue // row codes, not variables
		}
		if !flags[v] {
			t.Errorf("README names %s, which no flag reads", v)
		}
	}
	for _, m := range regexp.MustCompile("`(--[a-z0-9-]+)").FindAllStringSubmatch(string(readme), -1) {
		if !flags[envName(strings.TrimPrefix(m[1], "--"))] {
			t.Errorf("README names flag %s, which no command defines", m[1])
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.flags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(readme), "`--"+f.Name+"`") {
			t.Errorf("serve flag --%s is not documented in the README", f.Name)
		}
	})
}
