package sftpd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// openssh runs Debian's OpenSSH sftp client in batch mode as u, in the
// local directory dir, and returns its combined output.
func (b *testBundle) openssh(t *testing.T, u testUser, dir string, commands ...string) (string, error) {
	t.Helper()
	batch := filepath.Join(dir, ".batch")
	if err := os.WriteFile(batch, []byte(strings.Join(commands, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(batch)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sftp", "-b", batch, "-i", u.keyFile, "-P", b.port,
		"-F", "/dev/null", // no user or system client configuration
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		u.name+"@127.0.0.1")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// localDir makes a user's local working directory holding files.
func localDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpenSSHClient(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("OpenSSH sftp client not found: SFTP end-to-end test skipped (apt-get install -y openssh-client)")
	}
	b := setup(t, Config{})

	receipts := map[string]string{
		"receipts/" + orgA + "/a-upload.csv.receipt.csv": "row;status\n2;applied\n",
		"receipts/" + orgA + "/same.csv":                 "alice's own receipt\n",
		"receipts/" + orgB + "/b-upload.csv.receipt.csv": "row;status\n2;rejected\n",
		"receipts/" + orgB + "/same.csv":                 "bob's own receipt\n",
		"receipts/" + orgB + "/sub/deep.csv":             "not in the virtual tree\n",
	}
	for k, v := range receipts {
		b.put(t, k, v)
	}

	type side struct {
		user          testUser
		upload        string // local file uploaded
		ownReceipt    string // a receipt only this user has
		otherOrg      string
		otherReceipt  string // a receipt only the other user has
		sameContent   string // this user's receipts/<org>/same.csv
		otherUpload   string // the other user's upload, by the name it used
		otherInboxKey string // the bucket key the other user's upload lands at
	}
	sides := []side{
		{user: b.alice, upload: "a-upload.csv", ownReceipt: "a-upload.csv.receipt.csv", otherOrg: orgB,
			otherReceipt: "b-upload.csv.receipt.csv", sameContent: "alice's own receipt\n", otherUpload: "b-upload.csv",
			otherInboxKey: "inbox/" + orgB + "/b-upload.csv"},
		{user: b.bob, upload: "b-upload.csv", ownReceipt: "b-upload.csv.receipt.csv", otherOrg: orgA,
			otherReceipt: "a-upload.csv.receipt.csv", sameContent: "bob's own receipt\n", otherUpload: "a-upload.csv",
			otherInboxKey: "inbox/" + orgA + "/a-upload.csv"},
	}

	// Each user uploads and reads its own receipts.
	for _, s := range sides {
		t.Run("OK/"+s.user.name, func(t *testing.T) {
			body := "regnr;vin;operation\nEL10001;;add\n# from " + s.user.name + "\n"
			dir := localDir(t, map[string]string{s.upload: body})
			out, err := b.openssh(t, s.user, dir,
				"put "+s.upload+" /inbox/",
				"cd inbox",
				"put "+s.upload+" second-"+s.upload,
				"ls -1 /inbox",
				"ls -1 /receipts",
				"get /receipts/same.csv same-got.csv",
				"cd ../receipts",
				"get "+s.ownReceipt,
			)
			if err != nil {
				t.Fatalf("sftp: %v\n%s", err, out)
			}
			for _, name := range []string{s.upload, "second-" + s.upload} {
				if got := b.get(t, "inbox/"+s.user.orgnr+"/"+name); got != body {
					t.Errorf("inbox/%s/%s = %q, want %q", s.user.orgnr, name, got, body)
				}
			}
			for _, want := range []string{s.upload, "second-" + s.upload, s.ownReceipt, "same.csv"} {
				if !strings.Contains(out, want) {
					t.Errorf("listing lacks %s:\n%s", want, out)
				}
			}
			for _, leak := range []string{s.otherReceipt, s.otherOrg, "deep.csv", "sub"} {
				if strings.Contains(out, leak) {
					t.Errorf("output shows %q of the other organisation:\n%s", leak, out)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "same-got.csv")); string(got) != s.sameContent {
				t.Errorf("same.csv = %q, want %q", got, s.sameContent)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, s.ownReceipt)); string(got) != receipts["receipts/"+s.user.orgnr+"/"+s.ownReceipt] {
				t.Errorf("%s = %q", s.ownReceipt, got)
			}
		})
	}
	want := b.keys(t)
	// The other user's upload is really in the bucket, so the refusals to
	// reach it below are not refusals of a file that does not exist.
	for _, s := range sides {
		if !slices.Contains(want, s.otherInboxKey) {
			t.Fatalf("%s is not in the bucket after the uploads: %q", s.otherInboxKey, want)
		}
	}

	// Every attempt outside the user's own view fails and changes nothing.
	for _, s := range sides {
		const notFound, denied = "(not found|No such file)", "Permission denied"
		refused := []struct {
			name     string
			commands []string
			want     string // regexp the client prints
		}{
			{"GetOtherViaDotDot", []string{"get ../receipts/" + s.otherOrg + "/" + s.otherReceipt + " stolen.csv"}, notFound},
			{"GetOtherAbsolute", []string{"get /receipts/" + s.otherOrg + "/" + s.otherReceipt + " stolen.csv"}, notFound},
			{"GetOtherFromInbox", []string{"cd /inbox", "get ../../receipts/" + s.otherOrg + "/" + s.otherReceipt + " stolen.csv"}, notFound},
			{"GetOtherName", []string{"get /receipts/" + s.otherReceipt + " stolen.csv"}, notFound},
			{"GetOtherUpload", []string{"get /inbox/" + s.otherUpload + " stolen.csv"}, notFound},
			{"GetOtherInboxKey", []string{"get /" + s.otherInboxKey + " stolen.csv"}, notFound},
			{"GetOwnUpload", []string{"get /inbox/" + s.upload + " stolen.csv"}, denied},
			{"GetDeep", []string{"get /receipts/sub/deep.csv stolen.csv"}, notFound},
			{"GetHostFile", []string{"get /etc/passwd stolen.csv"}, notFound},
			{"LsOther", []string{"ls /receipts/" + s.otherOrg}, notFound},
			{"LsOtherInbox", []string{"ls /inbox/" + s.otherOrg}, notFound},
			{"CdOther", []string{"cd /receipts/" + s.otherOrg}, notFound},
			{"PutReceipts", []string{"put " + s.upload + " /receipts/y"}, denied},
			{"PutRoot", []string{"put " + s.upload + " /y"}, denied},
			{"PutAboveRoot", []string{"put " + s.upload + " ../../y"}, denied},
			{"PutOtherInbox", []string{"put " + s.upload + " /inbox/" + s.otherOrg + "/x.csv"}, denied},
			{"PutOtherReceipts", []string{"put " + s.upload + " /receipts/" + s.otherOrg + "/" + s.otherReceipt}, denied},
			{"MkdirInbox", []string{"mkdir /inbox/sub"}, denied},
			{"MkdirRoot", []string{"mkdir /" + s.otherOrg}, denied},
			{"RmReceipt", []string{"rm /receipts/" + s.ownReceipt}, denied},
			{"RmUpload", []string{"rm /inbox/" + s.upload}, denied},
			{"RmdirInbox", []string{"rmdir /inbox"}, denied},
			{"Rename", []string{"rename /receipts/same.csv /inbox/same.csv"}, denied},
			{"RenameUpload", []string{"rename /inbox/" + s.upload + " /inbox/renamed.csv"}, denied},
			{"Symlink", []string{"ln -s /receipts/" + s.otherOrg + " /inbox/link"}, denied},
			{"Chmod", []string{"chmod 777 /receipts/same.csv"}, denied},
		}
		for _, tc := range refused {
			t.Run("Err"+tc.name+"/"+s.user.name, func(t *testing.T) {
				dir := localDir(t, map[string]string{s.upload: "should not arrive\n"})
				out, err := b.openssh(t, s.user, dir, tc.commands...)
				if err == nil {
					t.Errorf("sftp %q succeeded:\n%s", tc.commands, out)
				}
				if !regexp.MustCompile(tc.want).MatchString(out) {
					t.Errorf("sftp %q: output lacks %q:\n%s", tc.commands, tc.want, out)
				}
				if strings.Contains(out, s.otherReceipt) && !strings.Contains(strings.Join(tc.commands, " "), s.otherReceipt) {
					t.Errorf("output names the other organisation's receipt:\n%s", out)
				}
				if _, err := os.Stat(filepath.Join(dir, "stolen.csv")); err == nil {
					t.Error("a file was downloaded")
				}
			})
		}

		// The root is listable but shows only the four upload folders, receipts and exports.
		for _, cmds := range [][]string{{"ls -1 /receipts/../.."}, {"cd /", "ls -1"}, {"cd /inbox", "cd ..", "ls -1a"}} {
			t.Run("RootRevealsNothing/"+s.user.name, func(t *testing.T) {
				out, err := b.openssh(t, s.user, t.TempDir(), cmds...)
				if err != nil {
					t.Fatalf("sftp %q: %v\n%s", cmds, err, out)
				}
				var listed []string
				for _, line := range strings.Split(out, "\n") {
					line = strings.TrimSpace(line)
					if line == "" || strings.HasPrefix(line, "sftp>") {
						continue
					}
					listed = append(listed, strings.TrimPrefix(line, "/receipts/../../"))
				}
				listed = slices.DeleteFunc(listed, func(s string) bool { return s == "." || s == ".." })
				slices.Sort(listed)
				if !slices.Equal(listed, []string{"dryrun", "dryrun-snapshot", "exports", "inbox", "receipts", "snapshot"}) {
					t.Errorf("sftp %q listed %q, want only the upload folders, receipts and exports", cmds, listed)
				}
			})
		}
	}

	if got := b.keys(t); !slices.Equal(got, want) {
		t.Errorf("bucket changed by refused commands:\n got  %q\n want %q", got, want)
	}
	for k, v := range receipts {
		if got := b.get(t, k); got != v {
			t.Errorf("%s changed to %q", k, got)
		}
	}
	if n := len(b.spoolFiles(t)); n != 0 {
		t.Errorf("%d spool files left", n)
	}
	b.checkNoSecrets(t)
}

func TestOpenSSHKilledUpload(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Skip("OpenSSH sftp client not found: SFTP end-to-end test skipped (apt-get install -y openssh-client)")
	}
	b := setup(t, Config{})
	dir := localDir(t, map[string]string{"big.csv": strings.Repeat("EL10001;WVWZZZ1JZXW000001;add\n", 64<<10)})
	batch := filepath.Join(dir, ".batch")
	if err := os.WriteFile(batch, []byte("put big.csv /inbox/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// -l throttles to 1 Mbit/s, so the 2 MiB upload is still running when
	// the client is killed.
	cmd := exec.Command("sftp", "-l", "1000", "-b", batch, "-i", b.alice.keyFile, "-P", b.port,
		"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "alice@127.0.0.1")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the upload to start", func() bool { return len(b.spoolFiles(t)) == 1 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "the spool file to be removed", func() bool { return len(b.spoolFiles(t)) == 0 })
	if !strings.Contains(b.logs.String(), "upload discarded") {
		t.Error("the discarded upload was not logged")
	}
	if keys := b.keys(t); len(keys) != 0 {
		t.Errorf("bucket after a killed upload: %v", keys)
	}
}
