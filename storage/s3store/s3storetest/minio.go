// Package s3storetest starts real S3-compatible servers for tests.
package s3storetest

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MinIO is a running MinIO server.
type MinIO struct {
	Endpoint             string // http://127.0.0.1:PORT
	AccessKey, SecretKey string
}

// MinIOBinary finds a MinIO server binary: $LESSEE_MINIO_BIN, or minio on
// the PATH. .ci/run builds one; without it the test is skipped, visibly.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LESSEE_MINIO_BIN"); p != "" {
		return p
	}
	p, err := exec.LookPath("minio")
	if err != nil {
		t.Skip("no MinIO server: set LESSEE_MINIO_BIN or put minio on the PATH (.ci/run builds it)")
	}
	return p
}

// StartMinIO runs a MinIO server over a temporary folder until the test
// ends. Its output is logged if the test fails. env adds settings
// (NAME=value), such as MinIO's MINIO_NOTIFY_WEBHOOK_* notification targets.
func StartMinIO(t testing.TB, env ...string) MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := MinIO{Endpoint: "http://" + addr, AccessKey: "lessee-test", SecretKey: "lessee-test-secret"}
	cmd := exec.Command(bin, "server", t.TempDir(), "--address", addr, "--console-address", "127.0.0.1:0", "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Env = append(cmd.Env, env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("minio output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio not live within 30 s: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer the server's output goroutines and the
// test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// NotifyWebhook sets bucket's notification configuration so that MinIO
// sends object-created events under prefix to the webhook target id,
// configured at start with MINIO_NOTIFY_WEBHOOK_*_<id>: what `mc event add
// ALIAS/bucket arn:minio:sqs::<id>:webhook --event put --prefix P` does.
func (m MinIO) NotifyWebhook(t testing.TB, bucket, id, prefix string) {
	t.Helper()
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	_, err := client.PutBucketNotificationConfiguration(context.Background(), &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(bucket),
		NotificationConfiguration: &types.NotificationConfiguration{
			QueueConfigurations: []types.QueueConfiguration{{
				QueueArn: aws.String("arn:minio:sqs::" + id + ":webhook"),
				Events:   []types.Event{types.EventS3ObjectCreated},
				Filter: &types.NotificationConfigurationFilter{Key: &types.S3KeyFilter{
					FilterRules: []types.FilterRule{{Name: types.FilterRuleNamePrefix, Value: aws.String(prefix)}},
				}},
			}},
		},
	})
	if err != nil {
		t.Fatalf("minio: set bucket notification: %v", err)
	}
}
