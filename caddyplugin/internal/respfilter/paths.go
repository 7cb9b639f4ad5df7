package respfilter

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

const (
	maxKeyLen   = 128
	maxSegments = 32
)

// Path syntax errors. They come from configuration, never from a request.
var (
	errEmptyPath    = errors.New("respfilter: empty path")
	errEmptySegment = errors.New("respfilter: empty path segment")
	errKeyChar      = errors.New("respfilter: path key holds a character outside [A-Za-z0-9_-]")
	errKeyLen       = errors.New("respfilter: path key longer than 128 bytes")
	errBrackets     = errors.New("respfilter: \"[\" must be followed by \"]\" and only \"[]\" may follow a key")
	errMissingKey   = errors.New("respfilter: \"[]\" needs a key before it")
	errRoot         = errors.New("respfilter: path must start with data, links or meta, without []")
	errTooManySegs  = errors.New("respfilter: path has more than 32 segments")
)

// node is one step of the compiled allow-list. A node is either full (the
// whole value is released) or has fields (object members to walk) and/or
// elem (array elements to walk).
type node struct {
	full   bool
	fields map[string]*node
	elem   *node
}

// matches reports whether a value whose first token is of kind k can be
// filtered through n; leaves is Options.Leaves, under which a released path
// takes no object. A mismatch means the value is dropped.
func (n *node) matches(k byte, leaves bool) bool {
	switch {
	case n.full:
		return k != 0 && (!leaves || k != '{')
	case k == '{':
		return n.fields != nil
	case k == '[':
		return n.elem != nil
	}
	return false
}

// Paths is a compiled allow-list of released JSON paths. It is immutable and
// safe for concurrent use. A nil *Paths releases nothing.
type Paths struct {
	root node
	bare bool // paths from the root of an answer without envelope (CompileBare)
}

// ValidPath reports whether p is a well-formed path (see the package doc).
func ValidPath(p string) error {
	_, err := splitPath(p, false)
	return err
}

type segment struct {
	key    string
	arrays int // number of "[]" after key
}

func splitPath(p string, bare bool) ([]segment, error) {
	if p == "" {
		return nil, errEmptyPath
	}
	parts := strings.Split(p, ".")
	if len(parts) > maxSegments {
		return nil, errTooManySegs
	}
	segs := make([]segment, 0, len(parts))
	for _, part := range parts {
		s, err := parseSegment(part)
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	switch {
	case bare:
	case segs[0].key == "data", segs[0].key == "links", segs[0].key == "meta":
		if segs[0].arrays != 0 {
			return nil, errRoot
		}
	default:
		return nil, errRoot
	}
	return segs, nil
}

func parseSegment(part string) (segment, error) {
	if part == "" {
		return segment{}, errEmptySegment
	}
	i := 0
	for i < len(part) && isKeyByte(part[i]) {
		i++
	}
	if i == 0 {
		if part[0] == '[' {
			return segment{}, errMissingKey
		}
		return segment{}, errKeyChar
	}
	if i > maxKeyLen {
		return segment{}, errKeyLen
	}
	s := segment{key: part[:i]}
	for rest := part[i:]; rest != ""; rest = rest[2:] {
		if rest[0] != '[' {
			if s.arrays > 0 {
				return segment{}, errBrackets
			}
			return segment{}, errKeyChar
		}
		if len(rest) < 2 || rest[1] != ']' {
			return segment{}, errBrackets
		}
		s.arrays++
	}
	return s, nil
}

func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// Compile validates and compiles paths. Duplicates and paths under an already
// released path are merged. An empty list compiles to an allow-list that
// releases nothing (the answer keeps empty data, links and meta).
func Compile(paths []string) (*Paths, error) { return compile(paths, false) }

// CompileBare compiles paths for answers without the {data, links, meta}
// envelope (API Particulier v2 routes): the first segment may be any
// member of the top-level object, and Filter returns
// the top-level object with only its released members.
func CompileBare(paths []string) (*Paths, error) { return compile(paths, true) }

func compile(paths []string, bare bool) (*Paths, error) {
	p := &Paths{bare: bare}
	var errs []error
	for i, s := range paths {
		segs, err := splitPath(s, bare)
		if err != nil {
			// Paths come from the endpoint catalogue, not from requests.
			errs = append(errs, fmt.Errorf("path %d %q: %w", i, s, err))
			continue
		}
		p.insert(segs)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func (p *Paths) insert(segs []segment) {
	n := &p.root
	for _, s := range segs {
		if n.full {
			return
		}
		if n.fields == nil {
			n.fields = make(map[string]*node)
		}
		child := n.fields[s.key]
		if child == nil {
			child = &node{}
			n.fields[s.key] = child
		}
		n = child
		for range s.arrays {
			if n.full {
				return
			}
			if n.elem == nil {
				n.elem = &node{}
			}
			n = n.elem
		}
	}
	*n = node{full: true}
}

// List returns the effective released paths, normalised (redundant paths
// removed) and sorted. It is meant for logs of the loaded catalogue and tests.
func (p *Paths) List() []string {
	if p == nil {
		return nil
	}
	var out []string
	var walk func(n *node, prefix string)
	walk = func(n *node, prefix string) {
		if n.full {
			out = append(out, prefix)
			return
		}
		if n.elem != nil {
			walk(n.elem, prefix+"[]")
		}
		for k, c := range n.fields {
			if prefix == "" {
				walk(c, k)
			} else {
				walk(c, prefix+"."+k)
			}
		}
	}
	walk(&p.root, "")
	sort.Strings(out)
	return out
}
