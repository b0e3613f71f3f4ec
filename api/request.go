package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 64 << 10

// errBadRequest marks a body that is not a change object; the message
// says what is wrong and is safe to answer with.
var errBadRequest = errors.New("bad request")

// badRequestf returns an errBadRequest with a message for the client.
func badRequestf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// authorityKeys are the keys of the registry authority's own request
// shape that the change file's aliases do not cover.
const (
	keyLesseeID = "leasingtakerid" // folded; an object in the authority's shape
)

// DecodeChange reads one change from a JSON object whose keys are the
// change file's column names (English or Norwegian aliases, folded as a
// file's header is), or the authority's shape, where the lessee is an
// object: {"leasingtakerId": {"fodselsnummer": "…"}} or
// {"organisasjonsnummer": "…"}. Values are strings. The cells come back
// as a record of a file with one data row (row 2), so that the same
// parser, with the same messages, checks them. A body that is not such an
// object (not JSON, another type, an unknown or repeated key, more than
// MaxBodyBytes) is an errBadRequest naming the fault.
func DecodeChange(body io.Reader) (lessee.RawRow, error) {
	raw := lessee.RawRow{Index: 0, Line: 2}
	data, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		return raw, fmt.Errorf("read body: %w", err)
	}
	if len(data) > MaxBodyBytes {
		return raw, badRequestf("the body is larger than %d bytes", MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return raw, badRequestf("the body is not JSON: %v", syntaxError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return raw, badRequestf("the body must be a JSON object with the change's fields")
	}
	seen := map[lessee.Column]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return raw, badRequestf("the body is not JSON: %v", syntaxError(err))
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return raw, badRequestf("the body is not JSON: %v", syntaxError(err))
		}
		col, text, err := field(key, value)
		if err != nil {
			return raw, err
		}
		if prev, dup := seen[col]; dup {
			return raw, badRequestf("%q and %q both give %s; give it once", prev, key, col)
		}
		seen[col] = key
		raw.Cells[col] = lessee.Cell{Value: text}
	}
	if _, err := dec.Token(); err != nil {
		return raw, badRequestf("the body is not JSON: %v", syntaxError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return raw, badRequestf("the body holds more than one JSON value")
	}
	if len(seen) == 0 {
		return raw, badRequestf("the object names no field of a change; give operation and registration_number or vin")
	}
	return raw, nil
}

// field maps one key and its JSON value to a column and its text.
func field(key string, value json.RawMessage) (lessee.Column, string, error) {
	if foldKey(key) == keyLesseeID && bytes.HasPrefix(bytes.TrimSpace(value), []byte("{")) {
		id, err := authorityLessee(key, value)
		return lessee.ColLesseeID, id, err
	}
	col, ok := ingest.ColumnNamed(key)
	if !ok {
		return 0, "", badRequestf("unknown field %q; the fields are those of a change file's columns", truncate(key))
	}
	var text *string
	if err := json.Unmarshal(value, &text); err != nil {
		return 0, "", badRequestf("%s: %q must be a string", col, truncate(key))
	}
	if text == nil {
		return col, "", nil
	}
	return col, *text, nil
}

// authorityLessee reads the authority's lessee object, which holds exactly
// one of fodselsnummer and organisasjonsnummer.
func authorityLessee(key string, value json.RawMessage) (string, error) {
	var obj map[string]*string
	if err := json.Unmarshal(value, &obj); err != nil {
		return "", badRequestf("lessee_id: %q must be an object of strings", truncate(key))
	}
	var id string
	n := 0
	for k, v := range obj {
		switch strings.ToLower(k) {
		case "fodselsnummer", "fødselsnummer", "dnummer", "organisasjonsnummer":
		default:
			return "", badRequestf("lessee_id: %q holds unknown field %q; give fodselsnummer or organisasjonsnummer", truncate(key), truncate(k))
		}
		if v != nil && *v != "" {
			id = *v
			n++
		}
	}
	if n > 1 {
		return "", badRequestf("lessee_id: %q gives more than one identifier; give one", truncate(key))
	}
	return id, nil
}

// foldKey folds a key for comparison with the authority's names.
func foldKey(k string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(k))
}

// syntaxError shortens a JSON error for the client.
func syntaxError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end"
	}
	return err.Error()
}

// truncate keeps a client's key short in a message.
func truncate(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}
