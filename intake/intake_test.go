package intake

import (
	"strings"
	"testing"
	"time"

	"github.com/fleetreg/lessee"
)

func TestJobIDStable(t *testing.T) {
	t.Parallel()
	a := JobID("lessee", "inbox/912345602/a.csv", "etag@1")
	if a != JobID("lessee", "inbox/912345602/a.csv", "etag@1") || len(a) != 24 {
		t.Fatalf("JobID not stable: %s", a)
	}
	if strings.Trim(a, "abcdefghijklmnopqrstuvwxyz") != "" {
		t.Fatalf("JobID %s has characters other than letters; logs would mask a digit run", a)
	}
	for _, other := range []string{
		JobID("lessee", "inbox/912345602/a.csv", "etag@2"),
		JobID("lessee", "inbox/912345602/b.csv", "etag@1"),
		JobID("other", "inbox/912345602/a.csv", "etag@1"),
		JobID("lessee", "inbox/912345602/a.csv\x00", "etag@1"),
	} {
		if other == a {
			t.Errorf("different uploads share job id %s", a)
		}
	}
	if v := ObjectVersion("", "abc", time.Unix(100, 900_000_000)); v != "abc@100" {
		t.Errorf("ObjectVersion = %s; sub-second precision must be dropped (List and Head differ)", v)
	}
	if v := ObjectVersion("v1", "abc", time.Unix(100, 0)); v != "v1" {
		t.Errorf("ObjectVersion with a version id = %s", v)
	}
	if v := ObjectVersion("null", "abc", time.Unix(100, 0)); v != "abc@100" {
		t.Errorf(`ObjectVersion("null") = %s; S3 reports "null" for unversioned objects`, v)
	}
}

// listedAndHeaded returns one object as a listing reports it (milliseconds,
// UTC, no version id) and as HEAD reports it (whole seconds, GMT, and a
// version id when the bucket keeps versions).
func listedAndHeaded(tb testing.TB, key, etag string, modified time.Time, versionID string) (listed, headed lessee.Object) {
	tb.Helper()
	listed = lessee.Object{Key: key, Size: 1234, ETag: etag, LastModified: modified.UTC()}
	headed = listed
	headed.LastModified = modified.Truncate(time.Second).In(time.FixedZone("GMT", 0))
	headed.VersionID = versionID
	return listed, headed
}

func TestVersionOfListAndHead(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		modified  time.Time
		versionID string
		want      string
	}{
		{name: "OK", modified: time.Unix(1740819600, 187_000_000), want: "e1@1740819600"},
		{name: "OKWholeSecond", modified: time.Unix(1740819600, 0), want: "e1@1740819600"},
		{name: "OKLastMillisecond", modified: time.Unix(1740819600, 999_000_000), want: "e1@1740819600"},
		{name: "OKVersionedBucket", modified: time.Unix(1740819600, 500_000_000), versionID: "3HL4kqtJlcpXroDTDmJ", want: "e1@1740819600"},
		{name: "OKNullVersion", modified: time.Unix(1740819600, 1_000_000), versionID: "null", want: "e1@1740819600"},
		{name: "OKOtherZone", modified: time.Unix(1740819600, 42_000_000).In(time.FixedZone("CET", 3600)), want: "e1@1740819600"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := "inbox/912345602/a.csv"
			listed, headed := listedAndHeaded(t, key, "e1", tt.modified, tt.versionID)
			if v := VersionOf(listed); v != tt.want {
				t.Errorf("VersionOf(listed) = %s, want %s", v, tt.want)
			}
			if v := VersionOf(headed); v != tt.want {
				t.Errorf("VersionOf(headed) = %s, want %s", v, tt.want)
			}
			ul, uh := UploadOf("lessee", listed), UploadOf("lessee", headed)
			want := lessee.Upload{Bucket: "lessee", Key: key, Version: tt.want, ETag: "e1", Size: 1234}
			if ul != want || uh != want {
				t.Errorf("UploadOf(listed) = %+v\nUploadOf(headed) = %+v\nwant %+v", ul, uh, want)
			}
			if JobID(ul.Bucket, ul.Key, ul.Version) != JobID(uh.Bucket, uh.Key, uh.Version) {
				t.Error("a listing and a HEAD of one object name different jobs")
			}
		})
	}
}

func TestVersionOfNewUpload(t *testing.T) {
	t.Parallel()
	o := lessee.Object{Key: "inbox/912345602/a.csv", ETag: "e1", LastModified: time.Unix(100, 900_000_000)}
	for _, tt := range []struct {
		name  string
		other lessee.Object
	}{
		// Identical bytes uploaded again a second later are a new upload.
		{name: "OKSameBytesNextSecond", other: lessee.Object{Key: o.Key, ETag: "e1", LastModified: time.Unix(101, 0)}},
		{name: "OKOtherBytes", other: lessee.Object{Key: o.Key, ETag: "e2", LastModified: o.LastModified}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if VersionOf(o) == VersionOf(tt.other) {
				t.Errorf("VersionOf(%+v) = VersionOf(%+v) = %s", o, tt.other, VersionOf(o))
			}
		})
	}
}

func TestVersionETag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		version string
		etag    string
		ok      bool
	}{
		{name: "OK", version: ObjectVersion("", "d41d8cd98f00b204e9800998ecf8427e", time.Unix(100, 0)), etag: "d41d8cd98f00b204e9800998ecf8427e", ok: true},
		{name: "OKMultipart", version: "9b2cf535f27731c974343645a3985328-3@1740819600", etag: "9b2cf535f27731c974343645a3985328-3", ok: true},
		{name: "ErrVersionID", version: ObjectVersion("3HL4kqtJlcpXroDTDmJ", "e1", time.Unix(100, 0))},
		{name: "ErrNoETag", version: "@100"},
		{name: "ErrEmpty", version: ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			etag, ok := VersionETag(tt.version)
			if ok != tt.ok || (ok && etag != tt.etag) {
				t.Errorf("VersionETag(%q) = %q, %v; want %q, %v", tt.version, etag, ok, tt.etag, tt.ok)
			}
		})
	}
}

func TestOlder(t *testing.T) {
	t.Parallel()
	sec := func(s, ms int64) time.Time { return time.Unix(1740819600+s, ms*1_000_000) }
	for _, tt := range []struct {
		name string
		a, b lessee.Object
		want int // -1: a older, 1: b older, 0: equal
	}{
		{name: "OKEarlierSecond", a: lessee.Object{Key: "z", LastModified: sec(0, 999)}, b: lessee.Object{Key: "a", LastModified: sec(1, 0)}, want: -1},
		{name: "OKLaterSecond", a: lessee.Object{Key: "a", LastModified: sec(2, 0)}, b: lessee.Object{Key: "z", LastModified: sec(1, 999)}, want: 1},
		// Within one second the key decides, not the milliseconds a
		// listing reports and HEAD does not.
		{name: "OKSameSecondByKey", a: lessee.Object{Key: "a", LastModified: sec(0, 900)}, b: lessee.Object{Key: "b", LastModified: sec(0, 100)}, want: -1},
		{name: "OKSameSecondByKeyReversed", a: lessee.Object{Key: "b", LastModified: sec(0, 0)}, b: lessee.Object{Key: "a", LastModified: sec(0, 999)}, want: 1},
		// One object as listed and as HEADed.
		{name: "OKListedAndHeaded", a: lessee.Object{Key: "a", LastModified: sec(0, 187)}, b: lessee.Object{Key: "a", LastModified: sec(0, 0).In(time.FixedZone("GMT", 0))}, want: 0},
		{name: "OKOtherZones", a: lessee.Object{Key: "a", LastModified: sec(0, 0).In(time.FixedZone("CET", 3600))}, b: lessee.Object{Key: "a", LastModified: sec(0, 500).UTC()}, want: 0},
		{name: "OKSame", a: lessee.Object{Key: "a", LastModified: sec(0, 0)}, b: lessee.Object{Key: "a", LastModified: sec(0, 0)}, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ab, ba := Older(tt.a, tt.b), Older(tt.b, tt.a)
			if ab && ba {
				t.Fatalf("Older holds both ways for %+v and %+v", tt.a, tt.b)
			}
			got := 0
			if ab {
				got = -1
			} else if ba {
				got = 1
			}
			if got != tt.want {
				t.Errorf("Older(a, b) = %v, Older(b, a) = %v; want order %d", ab, ba, tt.want)
			}
		})
	}
}
