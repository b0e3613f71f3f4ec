// Package message is the one catalogue of the messages the service writes
// to a submitter: row outcomes and rejections, file refusals and the
// single-change API's error answers, each in English and in Norwegian
// bokmål. Code builds a lessee.Text (a key and its arguments) where the
// message arises and Render puts it into the submitter's language at the
// edge that knows it, so that packages such as ingest and ident need not
// know the language at all.
//
// Codes, column names and statuses are never translated: they are the
// API. A message's two languages take the same arguments, which are
// written with %s (or %[n]s, where Norwegian words them in another order);
// TestCatalogue holds every entry to that.
package message

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fleetreg/lessee"
	"github.com/fleetreg/lessee/ident"
)

// Key names a message of the catalogue.
type Key string

// entry is one message: the code it goes with ("" for an outcome that is
// not a rejection, or a fragment of another message) and its two texts.
type entry struct {
	code lessee.Code
	en   string
	nb   string
}

// List is an argument written as its items joined with "and" in the
// message's language ("a and b", "a og b").
type List []lessee.Text

// New returns the Text of key with args. An argument may be anything fmt
// writes with %v, a lessee.Text or a List.
func New(key Key, args ...any) lessee.Text {
	return lessee.Text{Key: string(key), Args: args}
}

// Field returns the Text of key with args about column col: rendered, it
// begins with the column's canonical name ("vin: …").
func Field(col lessee.Column, key Key, args ...any) lessee.Text {
	t := New(key, args...)
	t.Field = col.String()
	return t
}

// Refuse returns a file-level refusal with code, concerning line (0: the
// file), its Message in English until the edge renders its Text in the
// submitter's language (see ErrorText).
func Refuse(code lessee.Code, line int, key Key, args ...any) *lessee.Error {
	t := New(key, args...)
	return &lessee.Error{Code: code, Line: line, Message: Render(lessee.English, t), Text: t}
}

// Problem returns a row Problem with code and text t, its Message in lang.
func Problem(lang lessee.Language, code lessee.Code, t lessee.Text) *lessee.Problem {
	return &lessee.Problem{Code: code, Message: Render(lang, t), Text: t}
}

// Format renders key with args in lang.
func Format(lang lessee.Language, key Key, args ...any) string {
	return Render(lang, New(key, args...))
}

// ErrorText is the message of e in lang: its Text rendered, or its
// Message when it has no Text.
func ErrorText(lang lessee.Language, e *lessee.Error) string {
	if e.Text.IsZero() {
		return e.Message
	}
	return Render(lang, e.Text)
}

// ProblemText is the message of p in lang: its Text rendered, or its
// Message when it has no Text.
func ProblemText(lang lessee.Language, p *lessee.Problem) string {
	if p.Text.IsZero() {
		return p.Message
	}
	return Render(lang, p.Text)
}

// Render writes t in lang: Norwegian for lessee.Norwegian, English for
// anything else (the zero Language included). A key the catalogue lacks,
// which TestCatalogue rules out for the keys declared here, is written
// as the key and its arguments rather than lost.
func Render(lang lessee.Language, t lessee.Text) string {
	if t.IsZero() {
		return ""
	}
	args := make([]any, len(t.Args))
	for i, a := range t.Args {
		args[i] = renderArg(lang, a)
	}
	var msg string
	if e, ok := catalogue[Key(t.Key)]; ok {
		format := e.en
		if lang == lessee.Norwegian {
			format = e.nb
		}
		msg = fmt.Sprintf(format, args...)
	} else {
		msg = fmt.Sprintf("%s %v", t.Key, args)
	}
	if t.Field != "" {
		msg = t.Field + ": " + msg
	}
	return msg
}

// renderArg writes one argument as text in lang.
func renderArg(lang lessee.Language, a any) string {
	switch a := a.(type) {
	case lessee.Text:
		return Render(lang, a)
	case List:
		and := " and "
		if lang == lessee.Norwegian {
			and = " og "
		}
		parts := make([]string, len(a))
		for i, t := range a {
			parts[i] = Render(lang, t)
		}
		return strings.Join(parts, and)
	case string:
		return a
	}
	return fmt.Sprint(a)
}

// CodeOf returns the code a message goes with, "" for none.
func CodeOf(key Key) lessee.Code { return catalogue[key].code }

// Choose returns the language of an enterprise (nil: unknown to the
// registry), or def when it has none.
func Choose(e *lessee.Enterprise, def lessee.Language) lessee.Language {
	if e == nil {
		return def
	}
	return e.Language.Or(def)
}

// textError is an error whose message is a Text: English in Error, any
// language through TextOf.
type textError struct{ text lessee.Text }

func (e *textError) Error() string { return Render(lessee.English, e.text) }

// Errorf returns an error with the message of key and args, which TextOf
// gives back to be written in the reader's language.
func Errorf(key Key, args ...any) error { return &textError{text: New(key, args...)} }

// FieldErrorf is Errorf about column col (see Field).
func FieldErrorf(col lessee.Column, key Key, args ...any) error {
	return &textError{text: Field(col, key, args...)}
}

// TextOf returns the Text of err: that of an error from Errorf, or of an
// error of package ident, first in err's chain. ok is false when err has
// none, and its own text is all there is.
func TextOf(err error) (t lessee.Text, ok bool) {
	var te *textError
	if errors.As(err, &te) {
		return te.text, true
	}
	if r, args, ok := ident.Explain(err); ok {
		return New(identKey(r), args...), true
	}
	return lessee.Text{}, false
}

// identKey is the key of the message for an ident Reason.
func identKey(r ident.Reason) Key { return Key("ident." + string(r)) }
