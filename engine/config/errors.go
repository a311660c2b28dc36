package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error Load returns: the config (a file, or
// an override) is wrong and the user has to change it. The CLI maps it to
// exit code 2.
var ErrInvalid = errors.New("invalid config")

// Problem is one thing wrong with a config.
type Problem struct {
	// Where names the text to change: "file.yaml:12", `override "lr=x"`,
	// a file path (unreadable file), or "" (a required key is missing
	// everywhere).
	Where string
	// Key is the dotted config path ("optimizer.lr"), "" when none applies.
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Where != "" {
		b.WriteString(p.Where)
		b.WriteString(": ")
	}
	if p.Key != "" {
		key := p.Key
		if len(key) > 200 {
			key = key[:197] + "..."
		}
		b.WriteString(key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists everything found wrong with a config. It wraps ErrInvalid
// (and, for an unreadable file, the error from the file system).
type Error struct {
	Problems []Problem
	causes   []error
}

// maxShown caps how many problems Error() prints.
const maxShown = 20

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d config problems:", len(e.Problems))
	for i, p := range e.Problems {
		if i == maxShown {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Problems)-maxShown)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *Error) Unwrap() []error { return append([]error{ErrInvalid}, e.causes...) }

// suggest returns the candidate nearest to key when it is close enough to
// be a likely typo, else "".
func suggest(key string, candidates []string) string {
	if h, ok := keyHints[strings.ToLower(key)]; ok {
		for _, c := range candidates {
			if c == h {
				return h
			}
		}
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if c == key {
			continue
		}
		if norm(c) == norm(key) {
			return c
		}
		d := distance(norm(key), norm(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(key) >= 6 {
		limit = 2
	}
	if len(key) >= 12 {
		limit = 3
	}
	if best != "" && bestD <= limit && bestD < len(key) {
		return best
	}
	return ""
}

// keyHints maps common spellings from other trainers to Cohort's keys.
var keyHints = map[string]string{
	"epochs":        "num_epochs",
	"max_epochs":    "num_epochs",
	"batch_size":    "batchsize_per_replica",
	"batchsize":     "batchsize_per_replica",
	"learning_rate": "lr",
	"shuffle":       "use_shuffle",
	"top_k":         "topk",
	"hidden_sizes":  "hidden_dims",
	"hidden_dim":    "hidden_dims",
	"in_features":   "input_dim",
	"out_features":  "output_dim",
	"num_classes":   "output_dim",
	"milestone":     "milestones",
	"scheduler":     "param_schedulers",
	"schedulers":    "param_schedulers",
}

// distance is the Damerau (optimal string alignment) edit distance.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
