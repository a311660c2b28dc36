package natsserver

import (
	"fmt"
	"io"
	"log"
)

// logger adapts the server's log calls: quiet unless debug, and a fatal
// error becomes a value Start can return rather than an os.Exit.
type logger struct {
	out   *log.Logger // nil when quiet
	fatal chan error
}

// newLogger writes to w, or nowhere when w is nil.
func newLogger(w io.Writer) *logger {
	l := &logger{fatal: make(chan error, 1)}
	if w != nil {
		l.out = log.New(w, "nats: ", log.LstdFlags|log.Lmicroseconds)
	}
	return l
}

func (l *logger) print(level, format string, v ...any) {
	if l.out != nil {
		l.out.Printf(level+format, v...)
	}
}

// Noticef logs an informational line in debug mode.
func (l *logger) Noticef(format string, v ...any) { l.print("[INF] ", format, v...) }

// Warnf logs a warning in debug mode.
func (l *logger) Warnf(format string, v ...any) { l.print("[WRN] ", format, v...) }

// Errorf logs an error in debug mode.
func (l *logger) Errorf(format string, v ...any) { l.print("[ERR] ", format, v...) }

// Debugf logs a debug line in debug mode.
func (l *logger) Debugf(format string, v ...any) { l.print("[DBG] ", format, v...) }

// Tracef logs a protocol trace line in debug mode.
func (l *logger) Tracef(format string, v ...any) { l.print("[TRC] ", format, v...) }

// Fatalf records the first fatal error for Start; later ones only log.
func (l *logger) Fatalf(format string, v ...any) {
	l.print("[FTL] ", format, v...)
	select {
	case l.fatal <- fmt.Errorf(format, v...):
	default:
	}
}
