package audit

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// checkKeyCase (PA28): Caddy decodes its JSON configuration with
// encoding/json, which matches a member name to a struct field
// case-insensitively ("Mode" sets mode, "Insecure_Skip_Verify" sets
// insecure_skip_verify; when both spellings are present, the last one
// wins). Every other rule, and a reviewer, reads the exact lower-case key:
// a key spelled in another case would take effect unseen. The check walks
// the configuration along the Go types that will decode it (Options.
// ConfigType, then each module's type from Options.ModuleType, found as
// Caddy finds it: the caddy struct tag's namespace and inline key, or the
// module map's key), so free-form maps (header names, logger and server
// names, provider names) are never flagged. A type that decodes itself
// (json.Unmarshaler) or a module this binary does not know is not walked.
func checkKeyCase(c *cfg) []Finding {
	if c.opts.ConfigType == nil || c.opts.ModuleType == nil {
		return nil
	}
	w := caseWalker{module: c.opts.ModuleType}
	w.value(c.root, c.opts.ConfigType, "", "")
	return w.out
}

type caseWalker struct {
	module func(id string) (reflect.Type, bool)
	out    []Finding
}

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// value walks v, which t will decode; tag is the caddy struct tag of the
// field v came from (its module namespace and inline key).
func (w *caseWalker) value(v any, t reflect.Type, tag, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == rawMessageType:
		w.moduleValue(v, tag, path, "")
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return // decodes itself
	}
	switch t.Kind() {
	case reflect.Struct:
		w.object(v, t, path, "")
	case reflect.Map:
		m, _ := v.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if t.Elem() == rawMessageType { // a module map: the key names the module
				w.moduleValue(m[k], tag, join(path, k), k)
			} else {
				w.value(m[k], t.Elem(), tag, join(path, k))
			}
		}
	case reflect.Slice, reflect.Array:
		a, _ := v.([]any)
		for i, e := range a {
			w.value(e, t.Elem(), tag, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// object checks the member names of a JSON object that struct type t
// decodes, and walks each member. skip is a module's inline key.
func (w *caseWalker) object(v any, t reflect.Type, path, skip string) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	fields := jsonFields(t)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == skip && skip != "" {
			continue
		}
		f, exact := fields[k]
		if !exact {
			for name, g := range fields {
				if strings.EqualFold(k, name) {
					w.out = append(w.out, find("PA28", join(path, k), fmt.Sprintf("%q is read as %q", k, name)))
					f, exact = g, true
					break
				}
			}
		}
		if exact {
			w.value(m[k], f.typ, f.caddy, join(path, k))
		}
	}
}

// moduleValue walks a module's configuration: its id is the tag's
// namespace and name (the module map's key, or the inline key's value).
func (w *caseWalker) moduleValue(v any, tag, path, name string) {
	ns, inline := caddyTag(tag)
	if inline != "" {
		m, _ := v.(map[string]any)
		name, _ = m[inline].(string)
	}
	if name == "" {
		return
	}
	id := name
	if ns != "" {
		id = ns + "." + name
	}
	t, ok := w.module(id)
	if !ok {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		w.value(v, t, "", path)
		return
	}
	w.object(v, t, path, inline)
}

// field is a struct field as encoding/json names it.
type field struct {
	typ   reflect.Type
	caddy string // its caddy struct tag
}

// jsonFields maps the JSON names of t's fields (embedded structs
// flattened) to their types.
func jsonFields(t reflect.Type) map[string]field {
	out := map[string]field{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "":
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		case !f.IsExported():
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = field{typ: f.Type, caddy: f.Tag.Get("caddy")}
	}
	return out
}

// caddyTag reads `caddy:"namespace=… inline_key=…"`.
func caddyTag(tag string) (namespace, inline string) {
	for _, part := range strings.Fields(tag) {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "namespace":
			namespace = v
		case "inline_key":
			inline = v
		}
	}
	return namespace, inline
}
