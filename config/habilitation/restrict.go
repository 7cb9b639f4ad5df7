package habilitation

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// intent is what a refused registry file still says reliably: the ids it
// lists, the ids it marks revoked, the client certificates it binds, the
// values of the list fields it grants (narrowed) and the validity ends it
// sets. It can only narrow a registry.
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
	// grants holds, by id, the values each narrowed field lists (see
	// narrowedFields), intersected over the items of one id: a missing or
	// unreadable field grants nothing.
	grants map[string]map[string][]string
	// until holds, by id, the earliest readable valid_until.
	until map[string]time.Time
}

// narrowedFields are the list fields a refused file narrows: a scope, a
// modality, a FranceConnect client id or an API token digest that the file
// no longer lists is withdrawn (a leaked token's digest removed, say, in a
// file with an unrelated error).
var narrowedFields = []string{"scopes", "modalities", "france_connect_client_ids", "api_token_sha256"}

// fieldsOf returns h's values of the narrowed fields, in narrowedFields'
// order.
func fieldsOf(h *Habilitation) []*[]string {
	return []*[]string{&h.Scopes, &h.Modalities, &h.FranceConnectClientIDs, &h.APITokenSHA256}
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
	in.grants, in.until = map[string]map[string][]string{}, map[string]time.Time{}
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
	var until time.Time
	revoked, binds := false, false
	grants := map[string][]string{}
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
		case "valid_until":
			if t, err := parseTime(v, true); err == nil && (until.IsZero() || t.Before(until)) {
				until = t
			}
		default:
			if slices.Contains(narrowedFields, k.Value) {
				items, _ := stringList(v) // unreadable: grants nothing
				if prev, seen := grants[k.Value]; seen {
					items = intersect(prev, items)
				}
				grants[k.Value] = items
			}
		}
	}
	for _, id := range ids {
		if in.listed != nil {
			in.listed[id] = true
		}
		if prev, seen := in.grants[id]; seen {
			merged := map[string][]string{}
			for _, f := range narrowedFields {
				merged[f] = intersect(prev[f], grants[f])
			}
			in.grants[id] = merged
		} else {
			in.grants[id] = grants
		}
		if prev, seen := in.until[id]; !until.IsZero() && (!seen || until.Before(prev)) {
			in.until[id] = until
		}
		if revoked {
			in.revoked[id] = true
		}
		if binds {
			bound := certs
			if prev, seen := in.certs[id]; seen {
				bound = intersect(prev, certs)
			}
			in.certs[id] = bound
		}
	}
}

// intersect returns the values of a that b holds too (never nil).
func intersect[T comparable](a, b []T) []T {
	out := []T{}
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// restrict applies in to cur: habilitations whose id in does not list are
// removed, the others narrowed (narrow), as copies: cur is not modified. It
// returns cur itself when nothing changes, and the ids concerned.
func restrict(cur *Registry, in intent) (*Registry, []string) {
	var ids []string
	list := make([]*Habilitation, 0, cur.Len())
	for _, h := range cur.list {
		if in.listed != nil && !in.listed[h.ID] {
			ids = append(ids, h.ID)
			continue
		}
		c := narrow(h, in)
		if c != h {
			ids = append(ids, h.ID)
		}
		list = append(list, c)
	}
	if len(ids) == 0 {
		return cur, nil
	}
	return newRegistry(list), ids
}

// narrow returns h as in narrows it (h itself when nothing changes, else a
// copy): revoked when in revokes it; bound to the client certificates both
// bind (an unbound one takes the file's; none left: revoked); holding only
// the values of the narrowed fields that the file's items of its id still
// grant; ending at the file's valid_until when that is earlier. A revoked
// habilitation grants nothing left to narrow.
func narrow(h *Habilitation, in intent) *Habilitation {
	if h.Revoked {
		return h
	}
	c := *h
	if certs, binds := in.certs[h.ID]; binds {
		if h.BindsClientCertificate() {
			certs = intersect(h.ClientCertificates, certs)
		}
		if len(certs) == 0 {
			c.Revoked = true
		} else {
			c.ClientCertificates = certs
		}
	}
	if in.revoked[h.ID] {
		c.Revoked = true
	}
	if grants, listed := in.grants[h.ID]; listed {
		for i, f := range fieldsOf(&c) {
			*f = intersect(*f, grants[narrowedFields[i]])
		}
	}
	if u, ok := in.until[h.ID]; ok && (c.ValidUntil.IsZero() || u.Before(c.ValidUntil)) {
		c.ValidUntil = u
	}
	if sameAccess(h, &c) {
		return h
	}
	return &c
}

// sameAccess reports whether a and b grant the same: revocation, validity
// end, client certificates and the narrowed fields.
func sameAccess(a, b *Habilitation) bool {
	if a.Revoked != b.Revoked || !a.ValidUntil.Equal(b.ValidUntil) || !slices.Equal(a.ClientCertificates, b.ClientCertificates) {
		return false
	}
	fa, fb := fieldsOf(a), fieldsOf(b)
	for i := range fa {
		if !slices.Equal(*fa[i], *fb[i]) {
			return false
		}
	}
	return true
}

// narrowed counts the habilitations of base that are absent from cur or
// grant less there (restrict only ever narrows).
func narrowed(base, cur *Registry) int {
	n := 0
	for _, h := range base.All() {
		if g, ok := cur.ByID(h.ID); !ok || !sameAccess(h, g) {
			n++
		}
	}
	return n
}
