package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Hydra-style command-line overrides:
//
//	a.b=v    set an existing key (a mapping value merges into a mapping)
//	+a.b=v   add a key that is not there yet; missing parents are created
//	++a.b=v  add or set, whichever applies
//	~a.b     delete a key
//	~a.b=v   delete a key only if its value is v (else an error)
//
// v is read as YAML: lr=0.1 is a number, topk=[1,5] a list, name=mlp a
// string, x='1' the string "1"; an empty value (a=) is the empty string, as
// in Hydra. A segment that is a number indexes a list
// (optimizer.param_schedulers.lr.schedulers.0.end_value=0).

type opKind uint8

const (
	opSet opKind = iota
	opAdd
	opForce
	opDelete
)

type override struct {
	text     string
	op       opKind
	path     []string
	value    *node // nil: ~key without a value
	valueStr string
}

var keySegment = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// hydraFuncs are Hydra's sweep and cast functions, which Cohort does not run.
var hydraFuncs = regexp.MustCompile(`^\s*(choice|range|interval|glob|sort|shuffle|tag|str|int|float|bool|json_str|extend_list)\(`)

func (o *override) errorf(format string, args ...any) Problem {
	return Problem{Where: pos{override: o.text}.String(), Msg: fmt.Sprintf(format, args...)}
}

func parseOverride(text string) (*override, *Problem) {
	o := &override{text: text}
	fail := func(format string, args ...any) (*override, *Problem) {
		p := o.errorf(format, args...)
		return nil, &p
	}
	if !utf8.ValidString(text) {
		return fail("not valid UTF-8")
	}
	rest := text
	switch {
	case strings.HasPrefix(rest, "++"):
		o.op, rest = opForce, rest[2:]
	case strings.HasPrefix(rest, "+"):
		o.op, rest = opAdd, rest[1:]
	case strings.HasPrefix(rest, "~"):
		o.op, rest = opDelete, rest[1:]
	}
	key, val, hasVal := strings.Cut(rest, "=")
	if !hasVal && o.op != opDelete {
		return fail("expected key=value (or +key=value to add, ~key to delete)")
	}
	if key == "" {
		return fail("no key before '='")
	}
	if strings.ContainsAny(key, "/@") {
		return fail("config groups and packages (/ and @ in keys) are not supported: Cohort has no defaults list; name the key itself, e.g. optimizer.name=adam")
	}
	for _, seg := range strings.Split(key, ".") {
		if !keySegment.MatchString(seg) {
			return fail("invalid key %q: keys are dot-separated names of letters, digits, _ and -", key)
		}
	}
	o.path = strings.Split(key, ".")
	if !hasVal {
		return o, nil
	}
	o.valueStr = val
	if strings.TrimSpace(val) == "" {
		o.value = &node{kind: stringKind, s: val, pos: pos{override: text}}
		return o, nil
	}
	if hydraFuncs.MatchString(val) {
		return fail("Hydra sweep and cast functions (%s) are not supported; give a plain value", strings.TrimSpace(val[:strings.Index(val, "(")]))
	}
	if strings.Contains(val, "${") {
		return fail("interpolation (${...}) is not supported; give the value itself")
	}
	if topLevelComma(val) {
		return fail("a comma outside brackets is Hydra's sweep syntax, which Cohort does not run; for a list write %s=[%s], for a string quote it: %s='%s'", key, val, key, val)
	}
	n, err := parseYAML([]byte(val), pos{override: text})
	if err != nil {
		return fail("value %q is not valid YAML: %s", val, err.Error())
	}
	if n == nil { // a comment, e.g. x=#foo
		n = &node{kind: nullKind, pos: pos{override: text}}
	}
	o.value = n
	return o, nil
}

// topLevelComma reports a comma outside brackets, braces and quotes.
func topLevelComma(s string) bool {
	depth := 0
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '[' || r == '{':
			depth++
		case r == ']' || r == '}':
			depth--
		case r == ',' && depth <= 0:
			return true
		}
	}
	return false
}

// apply performs o on the tree rooted at root.
func (o *override) apply(root *node) *Problem {
	fail := func(format string, args ...any) *Problem {
		p := o.errorf(format, args...)
		return &p
	}
	here := pos{override: o.text}
	cur := root
	for i, seg := range o.path[:len(o.path)-1] {
		switch cur.kind {
		case mapKind:
			e := cur.m.get(seg)
			if e == nil || e.val.kind == nullKind {
				if o.op == opAdd || o.op == opForce {
					m := newMap(here)
					cur.m.set(seg, here, m)
					cur = m
					continue
				}
				return o.missing(cur, i)
			}
			cur = e.val
		case listKind:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 || idx >= len(cur.list) {
				return fail("%s is a list of %d; %q is not an index into it", strings.Join(o.path[:i], "."), len(cur.list), seg)
			}
			cur = cur.list[idx]
		default:
			return fail("%s is %s (at %s), not a mapping, so it has no key %q", strings.Join(o.path[:i], "."), cur.describe(), cur.pos, seg)
		}
	}
	last := o.path[len(o.path)-1]
	full := strings.Join(o.path, ".")
	parent := strings.Join(o.path[:len(o.path)-1], ".")
	if parent == "" {
		parent = "the top level"
	}
	switch cur.kind {
	case mapKind:
		e := cur.m.get(last)
		switch o.op {
		case opSet, opForce:
			if e == nil {
				if o.op == opSet {
					return o.missing(cur, len(o.path)-1)
				}
				cur.m.set(last, here, o.value)
				return nil
			}
			if e.val.kind == mapKind && o.value.kind == mapKind {
				mergeInto(e.val, o.value)
				return nil
			}
			cur.m.set(last, here, o.value)
		case opAdd:
			if e != nil {
				return fail("%s is already set (at %s); to change it use %s=%s", full, e.keyPos, full, o.valueStr)
			}
			cur.m.set(last, here, o.value)
		case opDelete:
			if e == nil {
				return fail("%s is not in the config, so there is nothing to delete", full)
			}
			if o.value != nil && !equal(e.val, o.value) {
				return fail("%s is %s (at %s), not %s; use ~%s to delete it whatever its value", full, e.val.short(), e.val.pos, o.value.short(), full)
			}
			cur.m.del(last)
		}
	case listKind:
		idx, err := strconv.Atoi(last)
		if err != nil || idx < 0 || idx >= len(cur.list) {
			return fail("%s is a list of %d; %q is not an index into it", parent, len(cur.list), last)
		}
		switch o.op {
		case opAdd:
			return fail("%s already has an element %d; to change it use %s=%s (to add elements, set the whole list)", parent, idx, full, o.valueStr)
		case opSet, opForce:
			e := cur.list[idx]
			if e.kind == mapKind && o.value.kind == mapKind {
				mergeInto(e, o.value)
				return nil
			}
			cur.list[idx] = o.value
		case opDelete:
			if o.value != nil && !equal(cur.list[idx], o.value) {
				return fail("%s is %s (at %s), not %s; use ~%s to delete it whatever its value", full, cur.list[idx].short(), cur.list[idx].pos, o.value.short(), full)
			}
			cur.list = append(cur.list[:idx], cur.list[idx+1:]...)
		}
	default:
		return fail("%s is %s (at %s), not a mapping, so it has no key %q", parent, cur.describe(), cur.pos, last)
	}
	return nil
}

// missing reports that o.path[i] is not in the mapping cur.
func (o *override) missing(cur *node, i int) *Problem {
	at := strings.Join(o.path[:i+1], ".")
	msg := fmt.Sprintf("%s is not in the config", at)
	if o.op == opDelete {
		msg += ", so there is nothing to delete"
	} else {
		msg += fmt.Sprintf("; to add it use +%s", o.text)
	}
	if s := suggest(o.path[i], cur.m.keys()); s != "" {
		prefix := strings.Join(o.path[:i], ".")
		if prefix != "" {
			s = prefix + "." + s
		}
		msg += fmt.Sprintf(" (or did you mean %s?)", s)
	}
	p := o.errorf("%s", msg)
	return &p
}
