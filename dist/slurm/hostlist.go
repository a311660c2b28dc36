package slurm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrHostlist marks a node list that is not a valid SLURM hostlist.
var ErrHostlist = errors.New("slurm: bad hostlist")

// Limits on what ExpandHostlist produces, so that a corrupt or hostile
// variable cannot make a rank allocate without bound.
const (
	// MaxHosts is the most names one hostlist may expand to.
	MaxHosts = 1_000_000
	// MaxNameLen is the longest expanded name (DNS names stop at 253).
	MaxNameLen = 255
	// maxOutputBytes caps the expanded names' total length; MaxHosts names
	// of MaxNameLen would be 255 MB.
	maxOutputBytes = 64 << 20
)

// numRange is lo-hi inclusive; width is the zero-padded digit count taken
// from lo as written ("008" pads to 3), as SLURM does.
type numRange struct {
	lo, hi uint64
	width  int
}

// pattern is one comma-separated host expression: lits[0] g[0] lits[1] g[1]
// … lits[n], each g a bracket's alternatives.
type pattern struct {
	text   string
	lits   []string
	groups [][]numRange
}

// ExpandHostlist expands a SLURM hostlist such as "gpu[01-04,07],login-a1"
// into node names, in SLURM's order. A name may hold several bracket groups
// ("rack[1-2]-node[01-02]" → rack1-node01 rack1-node02 rack2-node01
// rack2-node02: the first group varies slowest), text after a bracket, and
// zero padding, which follows the lower bound as written. Commas inside
// brackets separate numbers, outside them names. Duplicate names are kept.
// Anything else, or more than MaxHosts names, names over MaxNameLen bytes or
// over 64 MiB in all, is an error wrapping ErrHostlist that quotes the
// offending part.
func ExpandHostlist(s string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrHostlist)
	}
	parts, err := splitTopLevel(s)
	if err != nil {
		return nil, err
	}
	pats := make([]pattern, len(parts))
	var hosts, bytes uint64
	for i, part := range parts {
		p, err := parsePattern(part)
		if err != nil {
			return nil, err
		}
		n, nameLen, err := p.size()
		if err != nil {
			return nil, err
		}
		hosts += n
		bytes += n * uint64(nameLen)
		if hosts > MaxHosts {
			return nil, fmt.Errorf("%w: more than %d hosts by %q", ErrHostlist, MaxHosts, part)
		}
		if bytes > maxOutputBytes {
			return nil, fmt.Errorf("%w: names longer than %d bytes in all by %q", ErrHostlist, maxOutputBytes, part)
		}
		pats[i] = p
	}
	out := make([]string, 0, hosts)
	for _, p := range pats {
		out = p.expand(out)
	}
	return out, nil
}

// splitTopLevel splits s at the commas outside brackets and checks that
// brackets pair up without nesting.
func splitTopLevel(s string) ([]string, error) {
	var parts []string
	start, open := 0, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '[':
			if open >= 0 {
				return nil, fmt.Errorf("%w: nested '[' in %q", ErrHostlist, s[open:min(len(s), i+1)])
			}
			open = i
		case c == ']':
			if open < 0 {
				return nil, fmt.Errorf("%w: ']' without '[' in %q", ErrHostlist, s[start:i+1])
			}
			open = -1
		case c == ',' && open < 0:
			parts = append(parts, s[start:i])
			start = i + 1
		case c <= ' ' || c == 0x7f:
			return nil, fmt.Errorf("%w: blank or control character %q in %q", ErrHostlist, c, s)
		}
	}
	if open >= 0 {
		return nil, fmt.Errorf("%w: unclosed '[' in %q", ErrHostlist, s[start:])
	}
	return append(parts, s[start:]), nil
}

// parsePattern reads one host expression whose brackets are known to be
// balanced and flat.
func parsePattern(part string) (pattern, error) {
	if part == "" {
		return pattern{}, fmt.Errorf("%w: empty host name (stray comma)", ErrHostlist)
	}
	p := pattern{text: part}
	rest := part
	for {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			p.lits = append(p.lits, rest)
			break
		}
		j := strings.IndexByte(rest, ']')
		g, err := parseGroup(rest[i+1:j], part)
		if err != nil {
			return pattern{}, err
		}
		p.lits = append(p.lits, rest[:i])
		p.groups = append(p.groups, g)
		rest = rest[j+1:]
	}
	return p, nil
}

// parseGroup reads a bracket's inside: "1-4,07,10-12".
func parseGroup(inner, part string) ([]numRange, error) {
	if inner == "" {
		return nil, fmt.Errorf("%w: empty brackets in %q", ErrHostlist, part)
	}
	var g []numRange
	for _, item := range strings.Split(inner, ",") {
		loS, hiS, isRange := strings.Cut(item, "-")
		if !isRange {
			hiS = loS
		}
		lo, err := parseNumber(loS, item, part)
		if err != nil {
			return nil, err
		}
		hi, err := parseNumber(hiS, item, part)
		if err != nil {
			return nil, err
		}
		if hi < lo {
			return nil, fmt.Errorf("%w: descending range %q in %q", ErrHostlist, item, part)
		}
		g = append(g, numRange{lo: lo, hi: hi, width: len(loS)})
	}
	return g, nil
}

func parseNumber(s, item, part string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty number in %q of %q", ErrHostlist, item, part)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q in %q of %q is not a number or range", ErrHostlist, s, item, part)
		}
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: number %q in %q is too large", ErrHostlist, s, part)
	}
	return n, nil
}

// size is how many names p expands to and the longest one's length,
// refusing early anything over the limits so the products cannot overflow.
func (p pattern) size() (uint64, int, error) {
	count := uint64(1)
	nameLen := 0
	for _, l := range p.lits {
		nameLen += len(l)
	}
	for _, g := range p.groups {
		var n uint64
		widest := 0
		for _, r := range g {
			n += r.hi - r.lo + 1
			if n > MaxHosts {
				return 0, 0, fmt.Errorf("%w: more than %d hosts by %q", ErrHostlist, MaxHosts, p.text)
			}
			widest = max(widest, r.width, len(strconv.FormatUint(r.hi, 10)))
		}
		if count > MaxHosts/n {
			return 0, 0, fmt.Errorf("%w: more than %d hosts by %q", ErrHostlist, MaxHosts, p.text)
		}
		count *= n
		nameLen += widest
	}
	if nameLen > MaxNameLen {
		return 0, 0, fmt.Errorf("%w: names of %q are longer than %d bytes", ErrHostlist, p.text, MaxNameLen)
	}
	return count, nameLen, nil
}

// expand appends p's names to out: every name so far is extended by each
// number of the next group in turn, so the first group varies slowest.
func (p pattern) expand(out []string) []string {
	names := []string{p.lits[0]}
	for i, g := range p.groups {
		next := make([]string, 0, len(names)*groupLen(g))
		for _, prefix := range names {
			for _, r := range g {
				for n := r.lo; ; n++ {
					next = append(next, prefix+pad(n, r.width)+p.lits[i+1])
					if n == r.hi {
						break
					}
				}
			}
		}
		names = next
	}
	return append(out, names...)
}

func groupLen(g []numRange) int {
	n := 0
	for _, r := range g {
		n += int(r.hi - r.lo + 1)
	}
	return n
}

func pad(n uint64, width int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
