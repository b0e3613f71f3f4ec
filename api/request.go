package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ingest"
	"github.com/fleetreg/lessee/message"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 64 << 10

// errBadRequest marks a body that is not a change object; the message
// (message.TextOf) says what is wrong and is safe to answer with.
var errBadRequest = errors.New("bad request")

// badRequest returns an errBadRequest with the message of key for the
// client.
func badRequest(key message.Key, args ...any) error {
	return fmt.Errorf("%w: %w", errBadRequest, message.Errorf(key, args...))
}

// badField is badRequest about column col.
func badField(col lessee.Column, key message.Key, args ...any) error {
	return fmt.Errorf("%w: %w", errBadRequest, message.FieldErrorf(col, key, args...))
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
		return raw, badRequest(message.BodyTooLarge, MaxBodyBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return raw, badRequest(message.BodyNotJSON, syntaxError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return raw, badRequest(message.BodyNotObject)
	}
	seen := map[lessee.Column]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return raw, badRequest(message.BodyNotJSON, syntaxError(err))
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return raw, badRequest(message.BodyNotJSON, syntaxError(err))
		}
		col, text, err := field(key, value)
		if err != nil {
			return raw, err
		}
		if prev, dup := seen[col]; dup {
			return raw, badRequest(message.BodyFieldTwice, strconv.Quote(prev), strconv.Quote(key), col)
		}
		seen[col] = key
		raw.Cells[col] = lessee.Cell{Value: text}
	}
	if _, err := dec.Token(); err != nil {
		return raw, badRequest(message.BodyNotJSON, syntaxError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return raw, badRequest(message.BodyMoreThanOne)
	}
	if len(seen) == 0 {
		return raw, badRequest(message.BodyNoField)
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
		return 0, "", badRequest(message.BodyUnknownField, strconv.Quote(truncate(key)))
	}
	var text *string
	if err := json.Unmarshal(value, &text); err != nil {
		return 0, "", badField(col, message.BodyNotString, strconv.Quote(truncate(key)))
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
		return "", badField(lessee.ColLesseeID, message.BodyLesseeNotObject, strconv.Quote(truncate(key)))
	}
	var id string
	n := 0
	for k, v := range obj {
		switch strings.ToLower(k) {
		case "fodselsnummer", "fødselsnummer", "dnummer", "organisasjonsnummer":
		default:
			return "", badField(lessee.ColLesseeID, message.BodyLesseeUnknown, strconv.Quote(truncate(key)), strconv.Quote(truncate(k)))
		}
		if v != nil && *v != "" {
			id = *v
			n++
		}
	}
	if n > 1 {
		return "", badField(lessee.ColLesseeID, message.BodyLesseeTwoIDs, strconv.Quote(truncate(key)))
	}
	return id, nil
}

// foldKey folds a key for comparison with the authority's names.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == ' ' {
			return -1
		}
		return unicode.ToLower(r)
	}, k)
}

// syntaxError says where the body stops being JSON, as a message of the
// catalogue, so that it reads in the caller's language; the decoder's own
// words (Go's English) are not passed on.
func syntaxError(err error) lessee.Text {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return message.New(message.JSONInvalidAt, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return message.New(message.JSONEndsEarly)
	}
	return message.New(message.JSONInvalid)
}

// truncate keeps a client's key short in a message.
func truncate(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}
