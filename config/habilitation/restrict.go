package habilitation

import (
	"bytes"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// intent is what a refused registry file still says reliably: the ids it
// lists, the ids it marks revoked, and the client certificates it binds.
// It can only narrow a registry.
type intent struct {
	// listed holds the ids of the list's items; nil when removals cannot be
	// inferred (the habilitations key is repeated).
	listed  map[string]bool
	revoked map[string]bool
	// certs holds, by id, the client certificate fingerprints an item
	// declares (SECURITY.md C09): the readable ones, intersected over the
	// items of one id; an empty list means a client_certificates field
	// none of whose fingerprints could be read.
	certs map[string][]CertFingerprint
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
// in an item names every value; of client_certificates, the fingerprints
// that read are kept and the others dropped, and a field that is not a list
// of strings, or holds no readable fingerprint, binds no certificate at all
// (the habilitation is revoked). Only the first YAML document is read.
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
	in.revoked, in.certs = map[string]bool{}, map[string][]CertFingerprint{}
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
	var certs []CertFingerprint
	revoked, binds := false, false
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
		case "client_certificates":
			binds = true
			items, _ := stringList(v)
			for _, item := range items {
				if fp, ok := ParseCertFingerprint(item); ok {
					certs = append(certs, fp)
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
		if binds {
			bound := certs
			if prev, seen := in.certs[id]; seen {
				bound = common(prev, certs)
			}
			in.certs[id] = bound
		}
	}
}

// common returns the fingerprints of a that b holds too.
func common(a, b []CertFingerprint) []CertFingerprint {
	out := []CertFingerprint{}
	for _, fp := range a {
		if slices.Contains(b, fp) {
			out = append(out, fp)
		}
	}
	return out
}

// restrict applies in to cur: habilitations whose id in does not list are
// removed, those it revokes become revoked, and those it binds to client
// certificates keep only the certificates both bind (an unbound one takes
// the file's; none left: revoked) — as copies: cur is not modified. It
// returns cur itself when nothing changes, and the ids concerned.
func restrict(cur *Registry, in intent) (*Registry, []string) {
	var ids []string
	list := make([]*Habilitation, 0, cur.Len())
	for _, h := range cur.list {
		certs, binds := in.certs[h.ID]
		if binds && h.BindsClientCertificate() {
			certs = common(h.ClientCertificates, certs)
		}
		switch {
		case in.listed != nil && !in.listed[h.ID]:
			ids = append(ids, h.ID)
		case (in.revoked[h.ID] || binds && len(certs) == 0) && !h.Revoked:
			c := *h
			c.Revoked = true
			list = append(list, &c)
			ids = append(ids, h.ID)
		case binds && len(certs) != len(h.ClientCertificates) && !h.Revoked:
			c := *h
			c.ClientCertificates = certs
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

// narrowed counts the habilitations of base that are absent from cur,
// revoked in cur but not in base, or bound to other client certificates in
// cur (restrict only ever binds fewer).
func narrowed(base, cur *Registry) int {
	n := 0
	for _, h := range base.All() {
		g, ok := cur.ByID(h.ID)
		if !ok || g.Revoked && !h.Revoked || !slices.Equal(g.ClientCertificates, h.ClientCertificates) {
			n++
		}
	}
	return n
}
