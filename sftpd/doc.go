// Package sftpd is the SFTP drop: leasing companies whose fleet systems speak
// SFTP put files into the inbox and fetch their receipts without an S3
// client. It is an SSH server (golang.org/x/crypto/ssh) that offers only the
// "sftp" subsystem (github.com/pkg/sftp) over a virtual file system backed by
// the bucket.
//
// # What a user sees
//
// Every user belongs to exactly one organisation number and sees:
//
//	/            read-only; lists exactly the four upload folders, receipts and exports
//	/inbox       write-only drop: put change files here. A listing shows the
//	             user's own uploads that the worker has not picked up yet
//	             (inbox/<orgnr>/ in the bucket); they cannot be read back,
//	             removed or renamed.
//	/snapshot, /dryrun, /dryrun-snapshot
//	             the same, for snapshots and dry runs (snapshot/<orgnr>/ ...)
//	/receipts    read-only: the objects directly under receipts/<orgnr>/.
//	/exports     read-only: the fleet's export, exports/<orgnr>/fleet.csv.
//
// Nothing else exists. Paths are cleaned against the virtual root, so ".."
// never leaves it; there are no symbolic links, no sub-folders (mkdir is
// refused), no remove, rename or attribute changes (except that setting
// attributes on one's own upload is accepted and ignored, because clients
// such as WinSCP do it after every upload). Sessions start in "/".
//
// # Uploads are atomic
//
// An upload is spooled to a temporary file under Config.TempDir and stored
// at inbox/<orgnr>/<name> with one Put when the client closes the handle, so
// the inbox scan never sees a partial file. A connection lost before the
// close, a write beyond Config.MaxFileBytes or a file with gaps (a resumed
// upload: resume is not supported) stores nothing. Names follow the inbox
// naming rule of package objectkey (objectkey.Parse); a name it would refuse is
// refused at open, so the user learns it at once. Clients that upload to a
// temporary name and rename it afterwards (WinSCP's "transfer resume") must
// have that turned off.
//
// # The users file
//
// One line per credential, fields separated by colons:
//
//	# comment lines and blank lines are ignored
//	nordlys:912345602:$2y$10$...53 characters of bcrypt hash...
//	nordlys:912345602:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... fleet-system@nordlys
//	fjord:912345610:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...
//
// The first field is the user name (1–64 of A–Z a–z 0–9 . _ @ -), the second
// the organisation number the user acts for, the third either a bcrypt
// password hash (from `htpasswd -nbB user password` or any bcrypt tool) or a
// public key in authorized_keys form without options. A user may have several
// lines (several keys, or a key and a password), all with the same
// organisation number. The file is read at start; restart to apply changes.
// Bad lines are reported with their line numbers, never with their secrets.
//
// # SSH
//
// The host key is an ed25519 key in Config.HostKeyDir/sftp_host_ed25519_key,
// generated (mode 0600) on first start; its fingerprint is logged at start so
// operators can hand it to customers. Shell, exec, pty, environment, agent and
// X11 requests, port forwarding and every channel type but "session" are
// refused. Authentication attempts per connection are limited
// (Config.MaxAuthTries) and the handshake must finish within 30 seconds.
// Logs carry user, orgnr, remote address and file name, never passwords or
// keys.
package sftpd
