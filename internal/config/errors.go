package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field of the configuration.
type FieldError struct {
	// Path locates the field, e.g. "environments[2].branch"; "(document)"
	// for the file as a whole.
	Path string
	// Message says what is wrong, e.g. "required".
	Message string
}

// Error formats the problem as "path: message".
func (e *FieldError) Error() string { return e.Path + ": " + e.Message }

func fieldErr(path, format string, args ...any) error {
	if path == "" {
		path = "(document)"
	}
	return &FieldError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Error lists every problem found in a configuration, one per line, each
// line starting with the file name when it is known.
type Error struct {
	// File is the configuration file, or empty for Parse.
	File string
	// Problems are in document order.
	Problems []error
}

// Error formats the problems one per line.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if e.File != "" {
			b.WriteString(e.File + ": ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so that errors.As finds a *FieldError.
func (e *Error) Unwrap() []error { return e.Problems }
