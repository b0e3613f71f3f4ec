package lessee

import (
	"errors"
	"fmt"
)

// Application error codes. They classify Go errors for the code that must
// decide what to do about them (retry, answer 404, give up); they never
// appear in receipts. Adapters translate their own errors into them at
// their edge, so that callers need not know which adapter they talk to.
const (
	ENOTFOUND Code = "NOT_FOUND" // the object, job or row does not exist
	ECONFLICT Code = "CONFLICT"  // a precondition failed: replaced, or moved on by another attempt
	EINTERNAL Code = "INTERNAL"  // anything else
)

// Error is the application's one error type: a code, from the list above
// or a file-level refusal code, and a message for people. A file-level
// refusal is an *Error whose Code is one of the refusal codes and whose
// Line names the row it concerns (0: the file as a whole).
type Error struct {
	Code    Code
	Message string
	Line    int   // spreadsheet row (header = 1) or text line; 0 if none
	Err     error // the underlying cause, if any; not shown to users
	// Text is Message before it was put into a language, so that the
	// receipt can give it in the submitter's (see package message); zero
	// when Message is all there is.
	Text Text
}

// Error returns the code and the message.
func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return fmt.Sprintf("%s: %v", e.Code, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain: "" for
// nil, EINTERNAL for an error that carries none.
func ErrorCode(err error) Code {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// AsRefusal returns the file-level refusal in err's chain, if it has one.
func AsRefusal(err error) (*Error, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return nil, false
	}
	switch e.Code {
	case ENOTFOUND, ECONFLICT, EINTERNAL, "":
		return nil, false
	}
	return e, true
}
