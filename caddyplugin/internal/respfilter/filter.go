package respfilter

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// Defaults of Options (SECURITY.md C06, F02).
const (
	DefaultMaxBytes = 1 << 20
	DefaultMaxDepth = 32
)

// Options bounds the input. Zero values take the defaults.
type Options struct {
	// MaxBytes is the largest body accepted, in bytes (default 1 MiB).
	MaxBytes int
	// MaxDepth is the deepest nesting accepted; the top-level object is
	// depth 1 (default 32).
	MaxDepth int
	// Leaves makes every released path release a leaf only: a string, a
	// number, a boolean, null, or an array of those. An object found at a
	// released path is dropped as a shape mismatch, and so is an object or
	// an array inside an array found there (its scalars are kept): a
	// provider that turns a leaf into a structure must not pass the
	// members it put inside (SECURITY.md C05).
	Leaves bool
}

// ErrUnfilterable is wrapped by every error of Filter: the answer must not be
// relayed (502, SECURITY.md C06). Messages are fixed and never quote the body.
var ErrUnfilterable = errors.New("respfilter: provider answer cannot be filtered")

var (
	errTooLarge      = reason("body over the size limit")
	errSyntax        = reason("invalid JSON")
	errTruncated     = reason("truncated JSON")
	errTrailing      = reason("data after the top-level value")
	errNotObject     = reason("top level is not an object")
	errNoData        = reason("data member missing")
	errDataNotObject = reason("data member is not an object")
	errTooDeep       = reason("nesting deeper than the limit")
	errDuplicate     = reason("duplicate object member name")
	errUTF8          = reason("invalid UTF-8")
	errErrorMember   = reason("error or errors member at the top level")
)

// isErrorMember: the top-level members of an error answer, API Particulier's
// v3 ({"errors":[…]}) and v2 ({"error":…,"reason":…,"message":…}) shapes.
func isErrorMember(name []byte) bool {
	return string(name) == "errors" || string(name) == "error"
}

type reasonError struct{ msg string }

func reason(msg string) error               { return &reasonError{msg} }
func (e *reasonError) Error() string        { return "respfilter: " + e.msg }
func (e *reasonError) Is(target error) bool { return target == ErrUnfilterable }

// classify maps a jsontext error to a fixed, PII-free reason. The decoder's
// own message can quote member names and bytes, so it is never returned.
func classify(err error) error {
	var r *reasonError
	switch {
	case errors.As(err, &r):
		return err
	case errors.Is(err, jsontext.ErrDuplicateName):
		return errDuplicate
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errTruncated
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) && se.Err != nil && se.Err.Error() == "invalid UTF-8" {
		// jsonwire.ErrInvalidUTF8 is internal; its text is stable.
		return errUTF8
	}
	return errSyntax
}

// state is pooled: the decoder keeps its name-tracking tables between uses.
type state struct {
	dec      jsontext.Decoder
	src      bytes.Buffer
	scratch  []byte
	dst      []byte
	maxDepth int
	bare     bool // filtering the top-level object of a bare answer
	leaves   bool // Options.Leaves
}

var statePool = sync.Pool{New: func() any { return new(state) }}

var (
	emptyReader bytes.Buffer
	openBrace   = []byte{'{'}
	openBracket = []byte{'['}
)

// Filter appends to dst the answer rebuilt from body keeping only the paths
// released by p (see the package doc for the exact rules), and returns the
// extended buffer. On error it returns dst unchanged and an error wrapping
// ErrUnfilterable. A nil p releases nothing.
func Filter(dst []byte, body []byte, p *Paths, o Options) ([]byte, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if len(body) > o.MaxBytes {
		return dst, errTooLarge
	}
	var root *node
	if p != nil {
		root = &p.root
	}
	s := statePool.Get().(*state)
	// A *bytes.Buffer lets the decoder parse body in place, without a copy
	// and without writing to it.
	s.src = *bytes.NewBuffer(body)
	s.dec.Reset(&s.src)
	s.dst = dst
	s.maxDepth = o.MaxDepth
	s.bare = p != nil && p.bare
	s.leaves = o.Leaves
	var err error
	if p != nil && p.bare {
		err = s.bareTop(root)
	} else {
		err = s.top(root)
	}
	out := s.dst
	// Drop every reference to body and dst before pooling.
	s.dst = nil
	s.src = bytes.Buffer{}
	s.dec.Reset(&emptyReader)
	if cap(s.scratch) > 4<<10 {
		s.scratch = nil
	}
	statePool.Put(s)
	if err != nil {
		return dst, classify(err)
	}
	return out, nil
}

const (
	seenData = 1 << iota
	seenLinks
	seenMeta
)

// expectObject checks that the body is a JSON object, without consuming it.
func (s *state) expectObject() error {
	d := &s.dec
	switch d.PeekKind() {
	case '{':
		return nil
	case 0:
		_, err := d.ReadToken()
		if err == io.EOF {
			return errSyntax // empty body
		}
		return err
	default:
		if err := d.SkipValue(); err != nil {
			return err
		}
		return errNotObject
	}
}

// top filters the top-level object.
func (s *state) top(root *node) error {
	d := &s.dec
	if err := s.expectObject(); err != nil {
		return err
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	s.dst = append(s.dst, '{')
	var seen uint8
	for d.PeekKind() != '}' {
		raw, err := d.ReadValue() // member name; errors if not a string
		if err != nil {
			return err
		}
		name, err := s.unquote(raw)
		if err != nil {
			return err
		}
		var bit uint8
		switch string(name) {
		case "data":
			bit = seenData
		case "links":
			bit = seenLinks
		case "meta":
			bit = seenMeta
		default:
			if isErrorMember(name) {
				return errErrorMember
			}
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		var child *node
		if root != nil {
			child = root.fields[string(name)]
		}
		k := d.PeekKind()
		if bit == seenData && k != '{' {
			if err := s.skip(); err != nil {
				return err
			}
			return errDataNotObject
		}
		if seen != 0 {
			s.dst = append(s.dst, ',')
		}
		seen |= bit
		s.dst = appendName(s.dst, bit)
		if k != '{' || child == nil || !child.matches(byte(k), s.leaves) {
			// No released path below, links/meta not an object, or an
			// object released whole under Options.Leaves.
			if err := s.skip(); err != nil {
				return err
			}
			s.dst = append(s.dst, '{', '}')
			continue
		}
		if err := s.value(child); err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil { // '}'
		return err
	}
	// Exactly one top-level value: anything else but whitespace is refused.
	if _, err := d.ReadToken(); err != io.EOF {
		return errTrailing
	}
	if seen&seenData == 0 {
		return errNoData
	}
	if seen&seenLinks == 0 {
		s.dst = append(s.dst, `,"links":{}`...)
	}
	if seen&seenMeta == 0 {
		s.dst = append(s.dst, `,"meta":{}`...)
	}
	s.dst = append(s.dst, '}')
	return nil
}

// bareTop filters the top-level object of an answer without envelope
// (CompileBare): its released members, nothing else.
func (s *state) bareTop(root *node) error {
	d := &s.dec
	if err := s.expectObject(); err != nil {
		return err
	}
	if err := s.value(root); err != nil {
		return err
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return errTrailing
	}
	return nil
}

func appendName(dst []byte, bit uint8) []byte {
	switch bit {
	case seenData:
		return append(dst, `"data":`...)
	case seenLinks:
		return append(dst, `"links":`...)
	default:
		return append(dst, `"meta":`...)
	}
}

// value filters the next value through n; n.matches(next kind, s.leaves)
// must hold.
func (s *state) value(n *node) error {
	d := &s.dec
	if n.full && s.leaves && d.PeekKind() == '[' {
		return s.leafArray()
	}
	if n.full {
		parent := d.StackDepth()
		v, err := d.ReadValue()
		if err != nil {
			return err
		}
		// Cheap bound first: the depth of v is at most its number of
		// opening brackets (bytes.Count is vectorised).
		if len(v) > 0 && (v[0] == '{' || v[0] == '[') &&
			parent+bytes.Count(v, openBrace)+bytes.Count(v, openBracket) > s.maxDepth &&
			parent+valueDepth(v) > s.maxDepth {
			return errTooDeep
		}
		s.dst = append(s.dst, v...)
		return nil
	}
	if d.StackDepth()+1 > s.maxDepth {
		return errTooDeep
	}
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		s.dst = append(s.dst, '{')
		first := true
		for d.PeekKind() != '}' {
			raw, err := d.ReadValue() // member name
			if err != nil {
				return err
			}
			name, err := s.unquote(raw)
			if err != nil {
				return err
			}
			child := n.fields[string(name)]
			if child == nil {
				if s.bare && d.StackDepth() == 1 && isErrorMember(name) {
					return errErrorMember
				}
				if err := s.skip(); err != nil {
					return err
				}
				continue
			}
			// Write the name now: raw is only valid until the next read.
			mark := len(s.dst)
			if !first {
				s.dst = append(s.dst, ',')
			}
			s.dst = append(s.dst, raw...)
			s.dst = append(s.dst, ':')
			if !child.matches(byte(d.PeekKind()), s.leaves) {
				s.dst = s.dst[:mark]
				if err := s.skip(); err != nil {
					return err
				}
				continue
			}
			if err := s.value(child); err != nil {
				return err
			}
			first = false
		}
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		s.dst = append(s.dst, '}')
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		s.dst = append(s.dst, '[')
		first := true
		for d.PeekKind() != ']' {
			if !n.elem.matches(byte(d.PeekKind()), s.leaves) {
				if err := s.skip(); err != nil {
					return err
				}
				continue
			}
			if !first {
				s.dst = append(s.dst, ',')
			}
			if err := s.value(n.elem); err != nil {
				return err
			}
			first = false
		}
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		s.dst = append(s.dst, ']')
	default:
		// Unreachable: callers check matches first. Fail closed rather
		// than emit a member name without its value.
		return errSyntax
	}
	return nil
}

// leafArray copies the array at a released path keeping only its scalar
// elements (Options.Leaves): an object or an array inside it is dropped.
func (s *state) leafArray() error {
	d := &s.dec
	if d.StackDepth()+1 > s.maxDepth {
		return errTooDeep
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	s.dst = append(s.dst, '[')
	first := true
	for d.PeekKind() != ']' {
		if k := d.PeekKind(); k == '{' || k == '[' {
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		v, err := d.ReadValue() // a scalar, or the error of a bad token
		if err != nil {
			return err
		}
		if !first {
			s.dst = append(s.dst, ',')
		}
		s.dst = append(s.dst, v...)
		first = false
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	s.dst = append(s.dst, ']')
	return nil
}

// skip discards the next value, checking its depth. jsontext has no working
// depth limit option (WithDepthLimit is a TODO in v1.27), so containers are
// walked token by token, as Decoder.SkipValue itself does.
func (s *state) skip() error {
	d := &s.dec
	switch d.PeekKind() {
	case '{', '[':
		base := d.StackDepth()
		for {
			if _, err := d.ReadToken(); err != nil {
				return err
			}
			depth := d.StackDepth()
			if depth > s.maxDepth {
				return errTooDeep
			}
			if depth <= base {
				return nil
			}
		}
	default:
		return d.SkipValue() // scalar, or the error of a bad token
	}
}

// unquote returns the unescaped bytes of a JSON string token. The result
// aliases raw or s.scratch and is valid until the next call.
func (s *state) unquote(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, errSyntax
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	var err error
	s.scratch, err = jsontext.AppendUnquote(s.scratch[:0], raw)
	return s.scratch, err
}

// valueDepth returns the nesting depth of a valid JSON value (a scalar is 0).
func valueDepth(v []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			// Skip the string; the value is valid JSON, so it is terminated.
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}
