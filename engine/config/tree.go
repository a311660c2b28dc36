package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// This file holds the generic tree the loader works on between parsing and
// typed decoding: every value remembers where it came from (file:line, or
// the override that set it) so that errors found much later, after merging
// and overriding, still point at the text the user has to change.

// pos is where a value was written.
type pos struct {
	file     string // config file path, as given
	line     int    // 1-based; 0 when unknown
	override string // the override text, when the value came from one
}

func (p pos) String() string {
	switch {
	case p.override != "":
		return fmt.Sprintf("override %q", p.override)
	case p.line > 0:
		return fmt.Sprintf("%s:%d", p.file, p.line)
	default:
		return p.file
	}
}

type kind uint8

const (
	nullKind kind = iota
	boolKind
	intKind
	floatKind
	stringKind
	listKind
	mapKind
)

// node is one value of the generic tree.
type node struct {
	kind kind
	b    bool
	i    int64
	f    float64
	s    string
	list []*node
	m    *omap
	pos  pos
}

// entry is one key of a mapping, with where the key was written.
type entry struct {
	key    string
	keyPos pos
	val    *node
}

// omap is an insertion-ordered mapping.
type omap struct {
	entries []*entry
	idx     map[string]int
}

func newMap(p pos) *node { return &node{kind: mapKind, m: &omap{idx: map[string]int{}}, pos: p} }

func (m *omap) get(k string) *entry {
	if i, ok := m.idx[k]; ok {
		return m.entries[i]
	}
	return nil
}

// set adds k or replaces its value (and key position).
func (m *omap) set(k string, kp pos, v *node) {
	if i, ok := m.idx[k]; ok {
		m.entries[i] = &entry{key: k, keyPos: kp, val: v}
		return
	}
	m.idx[k] = len(m.entries)
	m.entries = append(m.entries, &entry{key: k, keyPos: kp, val: v})
}

func (m *omap) del(k string) {
	i, ok := m.idx[k]
	if !ok {
		return
	}
	m.entries = append(m.entries[:i], m.entries[i+1:]...)
	delete(m.idx, k)
	for j := i; j < len(m.entries); j++ {
		m.idx[m.entries[j].key] = j
	}
}

func (m *omap) keys() []string {
	ks := make([]string, len(m.entries))
	for i, e := range m.entries {
		ks[i] = e.key
	}
	return ks
}

// describe names a value for error messages: `the string "32"`, `a list`.
func (n *node) describe() string {
	switch n.kind {
	case nullKind:
		return "null"
	case boolKind:
		return fmt.Sprintf("the boolean %v", n.b)
	case intKind:
		return fmt.Sprintf("the integer %d", n.i)
	case floatKind:
		return "the number " + formatFloat(n.f)
	case stringKind:
		return fmt.Sprintf("the string %s", quoteShort(n.s))
	case listKind:
		return "a list"
	default:
		return "a mapping"
	}
}

// short renders a scalar compactly (for "a.b is 2, not 3" messages).
func (n *node) short() string {
	switch n.kind {
	case nullKind:
		return "null"
	case boolKind:
		return strconv.FormatBool(n.b)
	case intKind:
		return strconv.FormatInt(n.i, 10)
	case floatKind:
		return formatFloat(n.f)
	case stringKind:
		return quoteShort(n.s)
	case listKind:
		return fmt.Sprintf("a list of %d", len(n.list))
	default:
		return "a mapping"
	}
}

func quoteShort(s string) string {
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return strconv.Quote(s)
}

func (n *node) number() (float64, bool) {
	switch n.kind {
	case intKind:
		return float64(n.i), true
	case floatKind:
		return n.f, true
	}
	return 0, false
}

// clone deep-copies n; every node of the copy counts against *budget.
func (n *node) clone(budget *int) (*node, error) {
	*budget--
	if *budget < 0 {
		return nil, errTooLarge
	}
	c := *n
	switch n.kind {
	case listKind:
		c.list = make([]*node, len(n.list))
		for i, x := range n.list {
			y, err := x.clone(budget)
			if err != nil {
				return nil, err
			}
			c.list[i] = y
		}
	case mapKind:
		c.m = &omap{idx: make(map[string]int, len(n.m.entries))}
		for _, e := range n.m.entries {
			y, err := e.val.clone(budget)
			if err != nil {
				return nil, err
			}
			c.m.set(e.key, e.keyPos, y)
		}
	}
	return &c, nil
}

// equal compares values; numbers compare by value (1 == 1.0).
func equal(a, b *node) bool {
	if x, ok := a.number(); ok {
		y, ok := b.number()
		return ok && x == y
	}
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case nullKind:
		return true
	case boolKind:
		return a.b == b.b
	case stringKind:
		return a.s == b.s
	case listKind:
		if len(a.list) != len(b.list) {
			return false
		}
		for i := range a.list {
			if !equal(a.list[i], b.list[i]) {
				return false
			}
		}
		return true
	default:
		if len(a.m.entries) != len(b.m.entries) {
			return false
		}
		for _, e := range a.m.entries {
			f := b.m.get(e.key)
			if f == nil || !equal(e.val, f.val) {
				return false
			}
		}
		return true
	}
}

// mergeInto merges src into dst (both mappings): mappings merge key by key,
// anything else replaces. src's nodes are moved, not copied.
func mergeInto(dst, src *node) {
	for _, e := range src.m.entries {
		if d := dst.m.get(e.key); d != nil && d.val.kind == mapKind && e.val.kind == mapKind {
			mergeInto(d.val, e.val)
			continue
		}
		dst.m.set(e.key, e.keyPos, e.val)
	}
}

// toAny converts n to plain Go values: nil, bool, int, float64, string,
// []any, map[string]any.
func toAny(n *node) any {
	switch n.kind {
	case nullKind:
		return nil
	case boolKind:
		return n.b
	case intKind:
		return int(n.i)
	case floatKind:
		return n.f
	case stringKind:
		return n.s
	case listKind:
		l := make([]any, len(n.list))
		for i, x := range n.list {
			l[i] = toAny(x)
		}
		return l
	default:
		m := make(map[string]any, len(n.m.entries))
		for _, e := range n.m.entries {
			m[e.key] = toAny(e.val)
		}
		return m
	}
}

// ---- parsing YAML (and JSON, which is YAML) into the tree ----

var errTooLarge = errors.New("config is too large (too many values, or aliases that expand too far)")

const (
	maxNodes = 200_000 // per file or override, aliases expanded
	maxDepth = 200
)

// yamlFloat is the YAML 1.2 core-schema float form. goccy/go-yaml follows
// YAML 1.1 and leaves 1e-4 (no dot) a string; JSON configs write weight
// decays that way, so plain scalars of this form are read as numbers.
var yamlFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// syntaxError is a parse failure with its line.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

// parseYAML parses one YAML document. where fills the positions of the
// nodes: for a file, its path and each token's line; for an override, the
// override text. An empty document gives nil.
func parseYAML(data []byte, where pos) (n *node, err error) {
	if !utf8.Valid(data) {
		return nil, &syntaxError{msg: "not valid UTF-8"}
	}
	f, err := safeParse(data)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) {
			line := 0
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				line = tk.Position.Line
			}
			return nil, &syntaxError{line: line, msg: ye.GetMessage()}
		}
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return nil, &syntaxError{msg: msg}
	}
	var body ast.Node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			return nil, &syntaxError{line: lineOf(d.Body), msg: "a second YAML document (---) starts here; a config holds exactly one"}
		}
		body = d.Body
	}
	if body == nil {
		return nil, nil
	}
	c := &converter{where: where, anchors: map[string]*node{}, budget: maxNodes}
	return c.convert(body, 0)
}

// safeParse runs the parser, turning a panic inside it into an error: the
// loader must never crash on a bad config.
func safeParse(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("YAML parser failed on this input (%v)", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

type converter struct {
	where   pos
	anchors map[string]*node
	budget  int
}

func (c *converter) posOf(n ast.Node) pos {
	p := c.where
	if p.override == "" {
		p.line = lineOf(n)
	}
	return p
}

func (c *converter) errorf(n ast.Node, format string, args ...any) error {
	return &syntaxError{line: lineOf(n), msg: fmt.Sprintf(format, args...)}
}

func (c *converter) convert(a ast.Node, depth int) (*node, error) {
	c.budget--
	if c.budget < 0 {
		return nil, &syntaxError{line: lineOf(a), msg: errTooLarge.Error()}
	}
	if depth > maxDepth {
		return nil, c.errorf(a, "nested more than %d levels deep", maxDepth)
	}
	p := c.posOf(a)
	switch v := a.(type) {
	case nil:
		return &node{kind: nullKind, pos: p}, nil
	case *ast.NullNode:
		return &node{kind: nullKind, pos: p}, nil
	case *ast.BoolNode:
		return &node{kind: boolKind, b: v.Value, pos: p}, nil
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			return &node{kind: intKind, i: x, pos: p}, nil
		case uint64:
			if x <= math.MaxInt64 {
				return &node{kind: intKind, i: int64(x), pos: p}, nil
			}
			return &node{kind: floatKind, f: float64(x), pos: p}, nil
		}
		return nil, c.errorf(a, "cannot read the integer %q", v.Token.Value)
	case *ast.FloatNode:
		return &node{kind: floatKind, f: v.Value, pos: p}, nil
	case *ast.InfinityNode:
		return &node{kind: floatKind, f: v.Value, pos: p}, nil
	case *ast.NanNode:
		return &node{kind: floatKind, f: math.NaN(), pos: p}, nil
	case *ast.StringNode:
		if v.Token != nil && v.Token.Type == token.StringType && yamlFloat.MatchString(v.Value) {
			if f, err := strconv.ParseFloat(v.Value, 64); err == nil {
				return &node{kind: floatKind, f: f, pos: p}, nil
			}
		}
		return &node{kind: stringKind, s: v.Value, pos: p}, nil
	case *ast.LiteralNode:
		s := ""
		if v.Value != nil {
			s = v.Value.Value
		}
		return &node{kind: stringKind, s: s, pos: p}, nil
	case *ast.SequenceNode:
		n := &node{kind: listKind, pos: p, list: make([]*node, 0, len(v.Values))}
		for _, x := range v.Values {
			y, err := c.convert(x, depth+1)
			if err != nil {
				return nil, err
			}
			n.list = append(n.list, y)
		}
		return n, nil
	case *ast.MappingNode:
		return c.mapping(p, v.Values, depth)
	case *ast.MappingValueNode:
		return c.mapping(p, []*ast.MappingValueNode{v}, depth)
	case *ast.AnchorNode:
		n, err := c.convert(v.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if v.Name != nil {
			c.anchors[v.Name.GetToken().Value] = n
		}
		return n, nil
	case *ast.AliasNode:
		name := ""
		if v.Value != nil {
			name = v.Value.GetToken().Value
		}
		target, ok := c.anchors[name]
		if !ok {
			return nil, c.errorf(a, "alias *%s refers to no anchor &%s defined before it", name, name)
		}
		n, err := target.clone(&c.budget)
		if err != nil {
			return nil, &syntaxError{line: lineOf(a), msg: err.Error()}
		}
		return n, nil
	case *ast.TagNode:
		return c.tagged(v, p, depth)
	}
	return nil, c.errorf(a, "unsupported YAML construct (%s)", a.Type())
}

func (c *converter) tagged(v *ast.TagNode, p pos, depth int) (*node, error) {
	tag := v.Start.Value
	inner, err := c.convert(v.Value, depth+1)
	if err != nil {
		return nil, err
	}
	text := ""
	if _, ok := v.Value.(ast.ScalarNode); ok && v.Value.GetToken() != nil {
		text = v.Value.GetToken().Value
	}
	switch tag {
	case "!!str":
		if inner.kind == listKind || inner.kind == mapKind {
			return nil, c.errorf(v, "!!str on a collection")
		}
		if inner.kind == stringKind {
			return inner, nil
		}
		return &node{kind: stringKind, s: text, pos: p}, nil
	case "!!int":
		if inner.kind != intKind {
			return nil, c.errorf(v, "!!int on %s", inner.describe())
		}
	case "!!float":
		if f, ok := inner.number(); ok {
			return &node{kind: floatKind, f: f, pos: p}, nil
		}
		return nil, c.errorf(v, "!!float on %s", inner.describe())
	case "!!bool":
		if inner.kind != boolKind {
			return nil, c.errorf(v, "!!bool on %s", inner.describe())
		}
	case "!!null":
		if inner.kind != nullKind {
			return nil, c.errorf(v, "!!null on %s", inner.describe())
		}
	case "!!map":
		if inner.kind != mapKind {
			return nil, c.errorf(v, "!!map on %s", inner.describe())
		}
	case "!!seq":
		if inner.kind != listKind {
			return nil, c.errorf(v, "!!seq on %s", inner.describe())
		}
	default:
		return nil, c.errorf(v, "unsupported YAML tag %s", tag)
	}
	return inner, nil
}

func (c *converter) mapping(p pos, values []*ast.MappingValueNode, depth int) (*node, error) {
	n := newMap(p)
	var merges []*node
	for _, mv := range values {
		if mv == nil {
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			src, err := c.convert(mv.Value, depth+1)
			if err != nil {
				return nil, err
			}
			switch src.kind {
			case mapKind:
				merges = append(merges, src)
			case listKind:
				for _, x := range src.list {
					if x.kind != mapKind {
						return nil, c.errorf(mv.Key, "merge key << takes mappings, not %s", x.describe())
					}
					merges = append(merges, x)
				}
			default:
				return nil, c.errorf(mv.Key, "merge key << takes a mapping, not %s", src.describe())
			}
			continue
		}
		key, err := c.key(mv.Key)
		if err != nil {
			return nil, err
		}
		if n.m.get(key) != nil {
			return nil, c.errorf(mv.Key, "key %q appears twice in the same mapping", key)
		}
		val, err := c.convert(mv.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if mv.Value == nil {
			val.pos = c.posOf(mv.Key)
		}
		n.m.set(key, c.posOf(mv.Key), val)
	}
	// YAML merge keys: explicit keys win, earlier merged mappings win over
	// later ones.
	for _, src := range merges {
		for _, e := range src.m.entries {
			if n.m.get(e.key) == nil {
				n.m.set(e.key, e.keyPos, e.val)
			}
		}
	}
	return n, nil
}

func (c *converter) key(k ast.MapKeyNode) (string, error) {
	switch v := k.(type) {
	case *ast.StringNode:
		return v.Value, nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		if tk := k.GetToken(); tk != nil {
			return tk.Value, nil
		}
	}
	return "", c.errorf(k, "mapping keys must be plain strings")
}
