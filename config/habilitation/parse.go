package habilitation

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris must resolve on hosts without a zoneinfo database
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

var (
	idRe       = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	dataPassRe = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)
	clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	scopeRe    = regexp.MustCompile(`^[a-z0-9_]{1,100}$`)
	dateRe     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	nameRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,39}$`)
)

// ValidDataPassID reports whether s has the shape of a DataPass number (a
// request, a webhook): 1 to 19 digits, no leading zero.
func ValidDataPassID(s string) bool { return dataPassRe.MatchString(s) }

var paris = mustLoadParis()

func mustLoadParis() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic("habilitation: Europe/Paris: " + err.Error()) // cannot happen with time/tzdata
	}
	return loc
}

// Parse parses a registry (see the package documentation for the format).
func Parse(data []byte) (*Registry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("habilitation: empty registry file (expected a top-level \"habilitations\" list)")
		}
		return nil, fmt.Errorf("habilitation: invalid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("habilitation: the file must hold exactly one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("habilitation: top level must be a mapping with a \"habilitations\" list")
	}
	if hasAlias(&doc, 0) {
		return nil, errors.New("habilitation: YAML anchors and aliases are not allowed")
	}
	root := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		switch {
		case k.Kind != yaml.ScalarNode:
			return nil, errors.New("habilitation: top-level keys must be scalars")
		case k.Value != "habilitations":
			return nil, fmt.Errorf("habilitation: line %d: unknown top-level field %s", k.Line, quoteName(k.Value))
		case list != nil:
			return nil, fmt.Errorf("habilitation: line %d: field \"habilitations\" repeated", k.Line)
		}
		list = root.Content[i+1]
	}
	if list == nil {
		return nil, errors.New("habilitation: missing top-level \"habilitations\" list")
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errors.New("habilitation: \"habilitations\" must be a list")
	}

	valid := make([]*Habilitation, 0, len(list.Content))
	tokenIndex := map[string]int{}
	var errs []error
	entries := make([]*Habilitation, len(list.Content))
	idIndex := map[string]int{}
	clientIndex := map[string]int{}
	dataPassIndex := map[string]int{}
	for i, n := range list.Content {
		h, ee := parseEntry(n)
		entries[i] = h
		where := entryName(i, h)
		for _, e := range ee {
			errs = append(errs, fmt.Errorf("%s: %w", where, e))
		}
		if h == nil {
			continue
		}
		if h.ID != "" {
			if j, dup := idIndex[h.ID]; dup {
				errs = append(errs, fmt.Errorf("%s: id: duplicate of %s", where, entryName(j, entries[j])))
			} else {
				idIndex[h.ID] = i
			}
		}
		if h.DataPassID != "" {
			if j, dup := dataPassIndex[h.DataPassID]; dup {
				errs = append(errs, fmt.Errorf("%s: datapass_id: already bound to %s", where, entryName(j, entries[j])))
			} else {
				dataPassIndex[h.DataPassID] = i
			}
		}
		for k, c := range h.FranceConnectClientIDs {
			if c == "" {
				continue
			}
			if j, dup := clientIndex[c]; dup {
				errs = append(errs, fmt.Errorf("%s: france_connect_client_ids[%d]: already paired with %s", where, k, entryName(j, entries[j])))
				continue
			}
			clientIndex[c] = i
		}
		for k, d := range h.APITokenSHA256 {
			if j, dup := tokenIndex[d]; dup && d != "" {
				errs = append(errs, fmt.Errorf("%s: api_token_sha256[%d]: already held by %s", where, k, entryName(j, entries[j])))
				continue
			}
			tokenIndex[d] = i
		}
		valid = append(valid, h)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, h := range valid {
		h.limiterKey = "hab:" + h.ID
	}
	return newRegistry(valid), nil
}

// hasAlias walks the tree looking for aliases or anchors (bounded depth).
func hasAlias(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > 64 {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

// entryName names entry i for error messages; the id is shown only when it
// has the expected shape.
func entryName(i int, h *Habilitation) string {
	if h != nil && idRe.MatchString(h.ID) {
		return fmt.Sprintf("habilitations[%d] (id %q)", i, h.ID)
	}
	return fmt.Sprintf("habilitations[%d]", i)
}

// quoteName quotes a field name for an error message, unless it does not look
// like a field name (then it may be a misplaced value and is not echoed).
func quoteName(s string) string {
	if nameRe.MatchString(s) {
		return fmt.Sprintf("%q", s)
	}
	return "(name not shown)"
}

// parseEntry decodes one list item. It returns a non-nil Habilitation (possibly
// partial) when the item is a mapping, with the list of problems found.
func parseEntry(n *yaml.Node) (*Habilitation, []error) {
	if n.Kind != yaml.MappingNode {
		return nil, []error{errors.New("must be a mapping")}
	}
	h := &Habilitation{}
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	seen := map[string]bool{}
	var rawFrom, rawUntil *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, v := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			errs = append(errs, errors.New("keys must be scalars"))
			continue
		}
		key := kn.Value
		if seen[key] {
			errs = append(errs, fmt.Errorf("field %s repeated", quoteName(key)))
			continue
		}
		seen[key] = true
		switch key {
		case "id":
			s, ok := scalarString(v)
			switch {
			case !ok:
				fail(key, "must be a string")
			case !idRe.MatchString(s):
				fail(key, "must be 1–64 characters among A-Z a-z 0-9 . _ -")
			default:
				h.ID = s
			}
		case "datapass_id":
			s, ok := scalarString(v)
			if !ok || !ValidDataPassID(s) {
				fail(key, "must be a DataPass request number (1–19 digits, no leading zero)")
			} else {
				h.DataPassID = s
			}
		case "label":
			s, ok := scalarString(v)
			switch {
			case !ok || strings.TrimSpace(s) == "":
				fail(key, "must be a non-empty string")
			case utf8.RuneCountInString(s) > 200:
				fail(key, "longer than 200 characters")
			case strings.IndexFunc(s, unicode.IsControl) >= 0:
				fail(key, "must not contain control characters")
			default:
				h.Label = s
			}
		case "siret":
			s, ok := scalarString(v)
			if !ok || !ValidSIRET(s) {
				fail(key, "not a valid SIRET (14 digits, Luhn check)")
			} else {
				h.SIRET = s
			}
		case "france_connect_client_ids":
			items, ok := stringList(v)
			if !ok {
				fail(key, "must be a list of strings")
				break
			}
			for k, c := range items {
				if !clientIDRe.MatchString(c) {
					fail(fmt.Sprintf("%s[%d]", key, k), "must be 1–128 characters among A-Z a-z 0-9 . _ -")
					items[k] = ""
					continue
				}
				for j := 0; j < k; j++ {
					if items[j] == c {
						fail(fmt.Sprintf("%s[%d]", key, k), "repeats %s[%d]", key, j)
						items[k] = ""
						break
					}
				}
			}
			h.FranceConnectClientIDs = items
		case "scopes":
			items, ok := stringList(v)
			if !ok || len(items) == 0 {
				fail(key, "must be a non-empty list of strings")
				break
			}
			for k, s := range items {
				if !scopeRe.MatchString(s) {
					fail(fmt.Sprintf("%s[%d]", key, k), "must match [a-z0-9_]+")
					continue
				}
				for j := 0; j < k; j++ {
					if items[j] == s {
						fail(fmt.Sprintf("%s[%d]", key, k), "repeats %s[%d]", key, j)
						break
					}
				}
			}
			h.Scopes = items
		case "modalities":
			h.Modalities = parseModalities(v, fail)
		case "valid_from":
			rawFrom = v
		case "valid_until":
			rawUntil = v
		case "api_token_sha256":
			items, ok := stringList(v)
			if !ok {
				fail(key, "must be a list of hex SHA-256 digests")
				break
			}
			for k, d := range items {
				if len(d) != 2*sha256.Size || strings.Trim(d, "0123456789abcdef") != "" {
					fail(fmt.Sprintf("%s[%d]", key, k), "must be 64 lower-case hex digits (the SHA-256 of the token, never the token)")
					items[k] = ""
				}
			}
			h.APITokenSHA256 = items
		case "client_certificates":
			items, ok := stringList(v)
			if !ok || len(items) == 0 {
				fail(key, "must be a non-empty list of certificate SHA-256 fingerprints")
				break
			}
			h.ClientCertificates = make([]CertFingerprint, 0, len(items))
			for k, item := range items {
				fp, ok := ParseCertFingerprint(item)
				if !ok {
					fail(fmt.Sprintf("%s[%d]", key, k), "must be a SHA-256 fingerprint: 64 hex digits, bare or colon-separated")
					continue
				}
				if slices.Contains(h.ClientCertificates, fp) {
					fail(fmt.Sprintf("%s[%d]", key, k), "repeats an earlier fingerprint")
					continue
				}
				h.ClientCertificates = append(h.ClientCertificates, fp)
			}
		case "rate_limit":
			str, ok := scalarString(v)
			if !ok {
				fail(key, "must be a string such as \"20/s\"")
				break
			}
			r, err := ParseRate(str)
			if err != nil {
				fail(key, "%v", err)
			}
			h.RateLimit = r
		case "revoked":
			// The YAML 1.2 spellings only: an explicit tag (!!bool yes)
			// must not turn a value YAML would refuse into false.
			switch {
			case v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool":
				fail(key, "must be true or false")
			case v.Value == "true" || v.Value == "True" || v.Value == "TRUE":
				h.Revoked = true
			case v.Value == "false" || v.Value == "False" || v.Value == "FALSE":
			default:
				fail(key, "must be true or false")
			}
		default:
			errs = append(errs, fmt.Errorf("unknown field %s", quoteName(key)))
		}
	}
	for _, f := range []string{"id", "label", "siret", "scopes"} {
		if !seen[f] {
			fail(f, "required")
		}
	}
	if !seen["modalities"] {
		fail("modalities", "required (%s)", modalitiesWanted)
	}
	if rawFrom != nil {
		t, err := parseTime(rawFrom, false)
		if err != nil {
			fail("valid_from", "%v", err)
		}
		h.ValidFrom = t
	}
	if rawUntil != nil {
		t, err := parseTime(rawUntil, true)
		if err != nil {
			fail("valid_until", "%v", err)
		}
		h.ValidUntil = t
	}
	if !h.ValidFrom.IsZero() && !h.ValidUntil.IsZero() && !h.ValidUntil.After(h.ValidFrom) {
		fail("valid_until", "must be after valid_from")
	}
	return h, errs
}

// modalitiesWanted describes the modalities field in error messages.
var modalitiesWanted = "a non-empty list among " + strings.Join(modalities, ", ")

// parseModalities reads the modalities field: a non-empty list of known
// modalities without repeats. Unknown values are reported by position, never
// echoed, and left out of the result.
func parseModalities(v *yaml.Node, fail func(field, format string, args ...any)) []string {
	const key = "modalities"
	items, ok := stringList(v)
	if !ok || len(items) == 0 {
		fail(key, "must be %s", modalitiesWanted)
		return nil
	}
	out := make([]string, 0, len(items))
	for k, m := range items {
		known := false
		for _, x := range modalities {
			known = known || m == x
		}
		if !known {
			fail(fmt.Sprintf("%s[%d]", key, k), "must be one of %s", strings.Join(modalities, ", "))
			continue
		}
		repeated := false
		for j := 0; j < k && !repeated; j++ {
			if items[j] == m {
				fail(fmt.Sprintf("%s[%d]", key, k), "repeats %s[%d]", key, j)
				repeated = true
			}
		}
		if !repeated {
			out = append(out, m)
		}
	}
	return out
}

// scalarString returns the text of a non-null scalar.
func scalarString(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", false
	}
	return n.Value, true
}

func stringList(n *yaml.Node) ([]string, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		s, ok := scalarString(e)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// parseTime accepts YYYY-MM-DD (Europe/Paris; the start of the day, or the
// start of the next day when end is true) or an RFC 3339 time.
func parseTime(n *yaml.Node, end bool) (time.Time, error) {
	s, ok := scalarString(n)
	if !ok {
		return time.Time{}, errors.New("must be a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	if dateRe.MatchString(s) {
		d, err := time.ParseInLocation("2006-01-02", s, paris)
		if err != nil {
			return time.Time{}, errors.New("not a valid date")
		}
		if end {
			d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, paris)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("must be a date (YYYY-MM-DD) or an RFC 3339 time")
	}
	return t, nil
}
