package tensorboard

import "errors"

var (
	// ErrChecksum marks a record whose length or data CRC does not match.
	ErrChecksum = errors.New("tensorboard: record checksum mismatch")
	// ErrMalformed marks a record that is not an Event this package can
	// decode.
	ErrMalformed = errors.New("tensorboard: malformed event")
)
