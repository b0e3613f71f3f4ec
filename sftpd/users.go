package sftpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/fleetreg/lessee/ident"
)

// maxUserName bounds a user name; longer names are typing errors.
const maxUserName = 64

// Users maps user names to their organisation number and credentials. It is
// read-only after ParseUsers.
type Users struct {
	byName map[string]*user
}

type user struct {
	orgnr  string
	hashes [][]byte // bcrypt
	keys   [][]byte // ssh wire format, compared byte for byte
}

// LoadUsers reads a users file; see the package documentation for its format.
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer func() { _ = f.Close() }() // only read
	u, err := ParseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return u, nil
}

// ParseUsers reads users in the users-file format. Every bad line is
// reported, with its line number, in one joined error.
func ParseUsers(r io.Reader) (*Users, error) {
	u := &Users{byName: map[string]*user{}}
	firstLine := map[string]int{}
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10) // RSA keys make long lines
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, orgnr, secret, err := parseUserLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		e := u.byName[name]
		if e == nil {
			e = &user{orgnr: orgnr}
			u.byName[name] = e
			firstLine[name] = n
		} else if e.orgnr != orgnr {
			errs = append(errs, fmt.Errorf("line %d: user %q already has organisation number %s (line %d); a user acts for exactly one", n, name, e.orgnr, firstLine[name]))
			continue
		}
		if err := e.addSecret(secret); err != nil {
			errs = append(errs, fmt.Errorf("line %d: user %q: %w", n, name, err))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(u.byName) == 0 {
		return nil, errors.New("no users defined")
	}
	return u, nil
}

func parseUserLine(line string) (name, orgnr, secret string, err error) {
	fields := strings.SplitN(line, ":", 3)
	if len(fields) != 3 {
		return "", "", "", errors.New("want user:orgnr:bcrypt-hash or user:orgnr:ssh-public-key")
	}
	name, orgnr, secret = strings.TrimSpace(fields[0]), strings.TrimSpace(fields[1]), strings.TrimSpace(fields[2])
	if !validUserName(name) {
		return "", "", "", fmt.Errorf("user name must be 1 to %d of A-Z a-z 0-9 . _ @ -", maxUserName)
	}
	if err := ident.OrgNr(orgnr); err != nil {
		// ident errors never repeat the value.
		return "", "", "", fmt.Errorf("user %q: organisation number: %w", name, err)
	}
	if secret == "" {
		return "", "", "", fmt.Errorf("user %q: no password hash or public key", name)
	}
	return name, orgnr, secret, nil
}

// addSecret adds a bcrypt hash or an authorized_keys public key. Errors
// never quote the secret.
func (e *user) addSecret(secret string) error {
	if strings.HasPrefix(secret, "$2") {
		if _, err := bcrypt.Cost([]byte(secret)); err != nil {
			return errors.New("malformed bcrypt hash")
		}
		e.hashes = append(e.hashes, []byte(secret))
		return nil
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(secret))
	if err != nil {
		return errors.New("neither a bcrypt hash ($2a$, $2b$, $2y$) nor a public key in authorized_keys form")
	}
	if len(options) > 0 {
		// They would silently not be enforced (from=, command=, ...).
		return errors.New("authorized_keys options are not supported")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("one public key per line")
	}
	e.keys = append(e.keys, key.Marshal())
	return nil
}

func validUserName(s string) bool {
	if s == "" || len(s) > maxUserName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Names returns the user names in order.
func (u *Users) Names() []string {
	names := make([]string, 0, len(u.byName))
	for n := range u.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// OrgNr returns the organisation number a user acts for.
func (u *Users) OrgNr(name string) (string, bool) {
	e, ok := u.byName[name]
	if !ok {
		return "", false
	}
	return e.orgnr, true
}

// checkKey reports whether key is one of the user's authorized keys.
func (u *Users) checkKey(name string, key ssh.PublicKey) (string, bool) {
	e, ok := u.byName[name]
	if !ok {
		return "", false
	}
	wire := key.Marshal()
	for _, k := range e.keys {
		if bytes.Equal(k, wire) {
			return e.orgnr, true
		}
	}
	return "", false
}

// checkPassword reports whether password matches one of the user's hashes.
// An unknown user or one without passwords still costs one bcrypt
// comparison against dummy, so timing does not tell which users exist.
func (u *Users) checkPassword(name string, password []byte, dummy []byte) (string, bool) {
	e, ok := u.byName[name]
	if !ok || len(e.hashes) == 0 {
		_ = bcrypt.CompareHashAndPassword(dummy, password)
		return "", false
	}
	for _, h := range e.hashes {
		if bcrypt.CompareHashAndPassword(h, password) == nil {
			return e.orgnr, true
		}
	}
	return "", false
}
