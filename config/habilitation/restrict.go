package habilitation

import (
	"bytes"
	"strings"

	"gopkg.in/yaml.v3"
)

// intent is what a refused registry file still says reliably: the ids it
// lists and the ids it marks revoked. It can only narrow a registry.
type intent struct {
	// listed holds the ids of the list's items; nil when removals cannot be
	// inferred (the habilitations key is repeated).
	listed  map[string]bool
	revoked map[string]bool
}

// readIntent is the lenient pass over a file that Parse (or the caller's
// check) refused: from each item of the top-level habilitations list it reads
// the id and the revoked flag, whatever the item's other errors. ok is false
// when the file is not YAML or holds no readable habilitations list: nothing
// can then be inferred.
//
// Leniency only ever narrows: an item whose id cannot be read lists no id
// (the habilitation it meant is removed); revoked counts as true when it is a
// scalar reading true, yes, on or y in any case, quoted or not; an id repeated
// in an item names every value. Only the first YAML document is read.
func readIntent(data []byte) (in intent, ok bool) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return intent{}, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return intent{}, false
	}
	root := doc.Content[0]
	var lists []*yaml.Node
	keys := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "habilitations" {
			continue
		}
		keys++
		if v.Kind == yaml.SequenceNode {
			lists = append(lists, v)
		}
	}
	if len(lists) == 0 {
		return intent{}, false
	}
	in.revoked = map[string]bool{}
	if keys == 1 {
		in.listed = map[string]bool{}
	}
	for _, list := range lists {
		for _, item := range list.Content {
			readItemIntent(item, &in)
		}
	}
	return in, true
}

func readItemIntent(item *yaml.Node, in *intent) {
	if item.Kind != yaml.MappingNode {
		return
	}
	var ids []string
	revoked := false
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		switch k.Value {
		case "id":
			if s, ok := scalarString(v); ok {
				ids = append(ids, s)
			}
		case "revoked":
			if v.Kind == yaml.ScalarNode {
				switch strings.ToLower(strings.TrimSpace(v.Value)) {
				case "true", "yes", "on", "y":
					revoked = true
				}
			}
		}
	}
	for _, id := range ids {
		if in.listed != nil {
			in.listed[id] = true
		}
		if revoked {
			in.revoked[id] = true
		}
	}
}

// restrict applies in to cur: habilitations whose id in does not list are
// removed, those it revokes become revoked (as copies: cur is not modified).
// It returns cur itself when nothing changes, and the ids concerned.
func restrict(cur *Registry, in intent) (*Registry, []string) {
	var ids []string
	list := make([]*Habilitation, 0, cur.Len())
	for _, h := range cur.list {
		switch {
		case in.listed != nil && !in.listed[h.ID]:
			ids = append(ids, h.ID)
		case in.revoked[h.ID] && !h.Revoked:
			c := *h
			c.Revoked = true
			list = append(list, &c)
			ids = append(ids, h.ID)
		default:
			list = append(list, h)
		}
	}
	if len(ids) == 0 {
		return cur, nil
	}
	return newRegistry(list), ids
}

// narrowed counts the habilitations of base that are absent from cur or
// revoked in cur but not in base.
func narrowed(base, cur *Registry) int {
	n := 0
	for _, h := range base.All() {
		g, ok := cur.ByID(h.ID)
		if !ok || g.Revoked && !h.Revoked {
			n++
		}
	}
	return n
}
