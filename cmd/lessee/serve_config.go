package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/apiauth"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/storage/sqlstore"
	"github.com/fleetreg/lessee/worker"
)

// This file is the configuration of `lessee serve`: its flags (each with
// its environment variable) and their checks.

// Embedded-mode S3 credentials, used when none are configured. The embedded
// endpoint is for one machine; production uses real S3 or MinIO credentials.
const (
	defaultAccessKey = "lessee"
	defaultSecretKey = "lessee-secret"
)

// serveConfig is the configuration of `lessee serve`.
type serveConfig struct {
	Data           string
	Listen         string
	S3Listen       string
	Bucket         string
	RedisURL       string
	RedisCluster   string
	DatabaseURL    string
	S3Endpoint     string
	S3AccessKey    string
	S3SecretKey    string
	S3Region       string
	S3AllowRemote  bool
	ScanInterval   time.Duration
	Demo           bool
	TestRegistry   bool
	ChunkSize      int
	ChunksInFlight int
	MaxFileBytes   int64
	MaxRows        int
	SmallWorkers   int
	LargeWorkers   int
	SmallFile      int64
	LogFormat      string
	LogLevel       string
	Role           string
	Migrate        bool
	StartTimeout   time.Duration
	ResumeAfter    time.Duration
	// ReceiptRetention is how long every job's own receipts are kept.
	ReceiptRetention time.Duration
	// SnapshotMaxRemovals is the percent of a fleet's vehicles with a
	// lessee that a snapshot may remove by leaving them out.
	SnapshotMaxRemovals float64
	SFTPListen          string
	// DefaultLanguage is what receipts and API answers are written in
	// for an enterprise that names no language: nb or en.
	DefaultLanguage string
	// The single-change API.
	APIListen     string
	APIRate       float64
	TokenIssuer   string
	TokenAudience string
	TokenScope    string
	TokenJWKSURL  string
	SFTPUsers     string

	DBMaxConns     int
	DBMaxIdleConns int

	WebhookSecret    string
	OperatorUser     string
	OperatorPassword string
}

// Process roles: the HTTP side and the workers scale separately.
const (
	roleAll    = "all"    // worker, inbox scan and HTTP
	roleWorker = "worker" // worker and inbox scan; HTTP serves only health
	roleHTTP   = "http"   // webhook, UI, API, metrics; no worker
)

// validate checks the configuration before anything starts, so that a
// mistake is reported as the flag it is.
func (c *serveConfig) validate() error {
	switch c.Role {
	case roleAll, roleWorker, roleHTTP:
	default:
		return fmt.Errorf("--role must be all, worker or http, not %q", c.Role)
	}
	if c.RedisURL != "" && c.RedisCluster != "" {
		return fmt.Errorf("give --redis-url or --redis-cluster, not both")
	}
	if c.Role != roleAll && ((c.RedisURL == "" && c.RedisCluster == "") || c.DatabaseURL == "" || c.S3Endpoint == "") {
		return fmt.Errorf("--role %s shares work with other processes, so it needs --redis-url, --database-url and --s3-endpoint (embedded services are per process)", c.Role)
	}
	if (c.OperatorUser == "") != (c.OperatorPassword == "") {
		return fmt.Errorf("--operator-user and --operator-password go together")
	}
	if c.S3Endpoint == "" && !c.S3AllowRemote && !loopback(c.S3Listen) {
		return fmt.Errorf("--s3-listen %s is reachable from the network, but the embedded S3 endpoint checks no credentials; listen on loopback, use --s3-endpoint with real S3 or MinIO, or accept the risk with --s3-allow-remote", c.S3Listen)
	}
	if c.Role != roleWorker && c.OperatorUser == "" && !loopback(c.Listen) {
		return fmt.Errorf("--listen %s is reachable from the network, so the job pages, API and asynqmon need --operator-user and --operator-password", c.Listen)
	}
	if c.SFTPListen != "" && c.SFTPUsers == "" {
		return fmt.Errorf("--sftp-listen needs --sftp-users")
	}
	if c.ScanInterval <= 0 {
		return fmt.Errorf("--scan-interval must be positive")
	}
	if c.ChunkSize < 0 || c.ChunkSize > 10000 {
		return fmt.Errorf("--chunk-size must be between 1 and 10000, or 0 for the database's default")
	}
	if c.ChunksInFlight < 1 || c.ChunksInFlight > 8 {
		return fmt.Errorf("--chunks-in-flight must be between 1 and 8")
	}
	if c.ResumeAfter < minResumeAfter {
		return fmt.Errorf("--resume-after must be at least %s: workers renew their claim on a file every 5 s, and a shorter wait would hand a live worker's file to a second one", minResumeAfter)
	}
	if c.ReceiptRetention < time.Hour {
		return fmt.Errorf("--receipt-retention must be at least 1h (e.g. 90d or 2160h)")
	}
	if c.APIRate < 0 {
		return fmt.Errorf("--api-rate must not be negative")
	}
	if c.APIListen != "" && c.TokenJWKSURL == "" && !loopback(c.APIListen) {
		return fmt.Errorf("--api-listen %s is reachable from the network, but without --token-jwks-url the service issues its own development tokens (lessee token) to anyone with its data folder; set --token-jwks-url to Maskinporten's, or listen on loopback", c.APIListen)
	}
	if c.SnapshotMaxRemovals <= 0 || c.SnapshotMaxRemovals > 100 {
		return fmt.Errorf("--snapshot-max-removals must be a percentage above 0 and at most 100")
	}
	if l, ok := lessee.ParseLanguage(c.DefaultLanguage); !ok || l == "" {
		return fmt.Errorf("--default-language must be nb or en, not %q", c.DefaultLanguage)
	}
	if c.SmallWorkers < 1 || c.LargeWorkers < 1 {
		return fmt.Errorf("--small-workers and --large-workers must be at least 1")
	}
	if c.Data == "" {
		return fmt.Errorf("--data must name a directory")
	}
	if c.Bucket == "" {
		return fmt.Errorf("--bucket must not be empty")
	}
	for _, err := range []error{
		checkDatabaseURL(c.DatabaseURL),
		positive("max-rows", c.MaxRows),
		positive("max-file-bytes", c.MaxFileBytes),
		atLeast("small-file-bytes", c.SmallFile, 0),
		positive("start-timeout", c.StartTimeout),
		positive("db-max-conns", c.DBMaxConns),
		atLeast("db-max-idle-conns", c.DBMaxIdleConns, 0),
		oneOf("log-format", c.LogFormat, "text", "json"),
		oneOf("log-level", strings.ToLower(c.LogLevel), "debug", "info", "warn", "error"),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	limits := ingest.DefaultLimits()
	fs.StringVar(&c.Data, "data", "./lessee-data", "directory for embedded state (SQLite, S3 objects, temporary files)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "HTTP address: job list /jobs, /api/jobs, asynqmon under /monitoring/, /metrics, /healthz, /hooks/s3")
	fs.StringVar(&c.S3Listen, "s3-listen", "127.0.0.1:9000", "address of the embedded S3 endpoint (when --s3-endpoint is empty)")
	fs.StringVar(&c.Bucket, "bucket", "lessee", "S3 bucket")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis URL, e.g. redis://127.0.0.1:6379/0; empty runs an in-process Redis")
	fs.StringVar(&c.RedisCluster, "redis-cluster", "", "comma-separated Redis Cluster node addresses (instead of --redis-url); Sentinel uses --redis-url redis-sentinel://host1:26379,host2:26379?master=NAME")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL, e.g. postgres://user@host/db; empty uses SQLite under --data")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", "", "S3 or MinIO endpoint URL; empty runs an embedded endpoint on --s3-listen")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", "", "S3 access key (embedded default: "+defaultAccessKey+")")
	fs.StringVar(&c.S3SecretKey, "s3-secret-key", "", "S3 secret key (embedded default: "+defaultSecretKey+")")
	fs.StringVar(&c.S3Region, "s3-region", "us-east-1", "S3 region")
	fs.BoolVar(&c.S3AllowRemote, "s3-allow-remote", false, "let the embedded S3 endpoint listen beyond loopback; it checks no signatures, so anyone who reaches it reads and writes every company's files")
	fs.DurationVar(&c.ScanInterval, "scan-interval", 2*time.Second, "how often inbox/ is scanned for uploads")
	fs.BoolVar(&c.Demo, "demo", true, "load the demo registry from examples/ when the embedded registry is empty")
	fs.BoolVar(&c.TestRegistry, "test-registry", false, "accept synthetic test identity numbers (month + 40 or + 80)")
	fs.IntVar(&c.ChunkSize, "chunk-size", 0, "rows per transaction; 0: 1000 on PostgreSQL, 4000 on SQLite (one writer, and a commit rewrites every page a chunk touched)")
	fs.IntVar(&c.ChunksInFlight, "chunks-in-flight", 2, "chunks of a change file applied at once on PostgreSQL (each locks, decides and writes while the one before commits)")
	fs.Int64Var(&c.MaxFileBytes, "max-file-bytes", limits.MaxBytes, "largest accepted file")
	fs.IntVar(&c.MaxRows, "max-rows", limits.MaxRows, "most data rows in one file")
	fs.IntVar(&c.SmallWorkers, "small-workers", 2, "concurrent workers for small files")
	fs.IntVar(&c.LargeWorkers, "large-workers", 1, "concurrent workers for large files")
	fs.Int64Var(&c.SmallFile, "small-file-bytes", 1<<20, "files up to this size use the small-file queue")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.Role, "role", roleAll, "what this process runs: all, worker (worker and inbox scan) or http (webhook, UI, API, metrics)")
	fs.DurationVar(&c.StartTimeout, "start-timeout", 30*time.Second, "how long to retry reaching the database, Redis and S3 at start before exiting")
	fs.Float64Var(&c.SnapshotMaxRemovals, "snapshot-max-removals", worker.DefaultSnapshotMaxRemovals,
		"refuse a snapshot (TOO_MANY_REMOVALS) that would remove the lessees of more than this percent of its fleet's vehicles with a lessee by leaving them out")
	c.ReceiptRetention = worker.DefaultReceiptRetention
	fs.Var((*daysDuration)(&c.ReceiptRetention), "receipt-retention", "how long every job's own receipts are kept under receipts/<orgnr>/history/<job id>/, in days (90d) or as a Go duration (2160h)")
	fs.StringVar(&c.DefaultLanguage, "default-language", string(lessee.Norwegian),
		"language of receipts and API messages for an enterprise whose language is empty, or unknown to the registry: nb (Norwegian bokmål) or en")
	fs.DurationVar(&c.ResumeAfter, "resume-after", 30*time.Second, "how long a worker may go without a heartbeat before another worker resumes its file (at least 10s; the file then resumes within a few seconds more)")
	fs.StringVar(&c.APIListen, "api-listen", "127.0.0.1:8081", "address of the single-change API (/api/v1/...); empty disables it")
	fs.Float64Var(&c.APIRate, "api-rate", 50, "API requests per second one organisation may make (bursts of as many); 0 means no limit")
	fs.StringVar(&c.TokenIssuer, "token-issuer", apiauth.DefaultDevIssuer, "the iss every API token must carry (Maskinporten's issuer URL in production)")
	fs.StringVar(&c.TokenAudience, "token-audience", apiauth.DefaultAudience, "the aud every API token must carry")
	fs.StringVar(&c.TokenScope, "token-scope", apiauth.DefaultScope, "the scope every API token must carry")
	fs.StringVar(&c.TokenJWKSURL, "token-jwks-url", "", "JWKS of the token issuer (Maskinporten's jwks_uri); empty makes the service its own development issuer, with its key under --data and its JWKS at /.well-known/jwks.json on --api-listen")
	fs.StringVar(&c.SFTPListen, "sftp-listen", "", "SFTP drop address, e.g. 0.0.0.0:2022; empty disables SFTP")
	fs.StringVar(&c.SFTPUsers, "sftp-users", "", "SFTP users file: user:orgnr:bcrypt-hash or user:orgnr:ssh-public-key per line")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", 20, "PostgreSQL connection pool size per process")
	fs.IntVar(&c.DBMaxIdleConns, "db-max-idle-conns", 20, "idle PostgreSQL connections kept per process (as many as --db-max-conns: a burst then finds its connections open, their statements prepared)")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "shared secret of /hooks/s3 (Authorization: Bearer, or the Basic password); empty disables the webhook")
	fs.StringVar(&c.OperatorUser, "operator-user", "", "HTTP Basic user for /jobs, /api/ and /monitoring/; empty means no authentication")
	fs.StringVar(&c.OperatorPassword, "operator-password", "", "HTTP Basic password of --operator-user")
	fs.BoolVar(&c.Migrate, "migrate", true, "apply database migrations at start; set false when 'lessee migrate' runs them")
}

// defaultLanguage is --default-language as a Language (validate checked
// it).
func (c *serveConfig) defaultLanguage() lessee.Language {
	l, _ := lessee.ParseLanguage(c.DefaultLanguage)
	return l.Or(lessee.Norwegian)
}

// minResumeAfter is the shortest --resume-after: two of Asynq's 5 s
// heartbeats.
const minResumeAfter = 10 * time.Second

// defaultServeConfig returns the configuration with every flag at its default.
func defaultServeConfig() serveConfig {
	var cfg serveConfig
	cfg.flags(flag.NewFlagSet("serve", flag.ContinueOnError))
	return cfg
}

// daysDuration is a flag value that takes a number of days ("90d") or a Go
// duration ("2160h").
type daysDuration time.Duration

func (d *daysDuration) String() string {
	if d == nil {
		return ""
	}
	if t := time.Duration(*d); t%(24*time.Hour) == 0 && t > 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return time.Duration(*d).String()
}

func (d *daysDuration) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return fmt.Errorf("%q: want a number of days (90d) or a duration (2160h)", s)
		}
		*d = daysDuration(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want a number of days (90d) or a duration (2160h)", s)
	}
	*d = daysDuration(t)
	return nil
}

// chunking returns the rows per chunk and the chunks in flight for a
// database dialect: SQLite has one writer, so its chunks go one at a time.
func (c serveConfig) chunking(dialect string) (size, inFlight int) {
	sqlite := dialect == sqlstore.DialectSQLite
	size, inFlight = c.ChunkSize, c.ChunksInFlight
	if sqlite {
		inFlight = 1
	}
	if size == 0 {
		size = worker.DefaultChunkSize(sqlite)
	}
	return size, inFlight
}
