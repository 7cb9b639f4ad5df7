// Package habilitation reads the registry of DataPass habilitations that
// Passerelle accepts on its FranceConnect routes, and pairs each FranceConnect
// service provider (FS) client id with one habilitation.
//
// # File format
//
// The registry is one YAML document:
//
//	habilitations:
//	  - id: "12345"                 # DataPass id: required, unique, 1–64 chars [A-Za-z0-9._-]
//	    label: "Mairie de Montreuil — portail famille"   # required, ≤ 200 chars
//	    siret: "21930048000015"     # required: the organisation's SIRET (14 ASCII digits, Luhn;
//	                                #   La Poste, SIREN 356000000: digit sum multiple of 5)
//	    france_connect_client_ids:  # FS client ids paired with this habilitation (optional,
//	      - "6925fb81…"             #   1–128 chars [A-Za-z0-9._-]); a client id is paired
//	                                #   with at most one habilitation
//	    scopes:                     # required, non-empty, [a-z0-9_]+, no repeats
//	      - cnaf_quotient_familial
//	      - cnaf_allocataires
//	    valid_from: 2024-01-01      # optional: date (YYYY-MM-DD, start of that day,
//	                                #   Europe/Paris) or RFC 3339 time
//	    valid_until: 2027-12-31     # optional: a date means the end of that day,
//	                                #   Europe/Paris; an RFC 3339 time is the first
//	                                #   instant at which the habilitation is no longer valid
//	    revoked: false              # optional, default false
//	    rate_limit: "20/s"          # optional quota: <n>/s, <n>/m or <n>/h; default: the gateway's
//	    api_token_sha256: [<64 hex>] # optional: SHA-256 of the API bearer tokens (never the tokens)
//
// Parsing is strict: unknown fields (at any level), repeated fields, YAML
// aliases and several documents are refused; every problem is reported
// (errors.Join), each naming the entry and the field, for example
//
//	habilitations[2] (id "123"): siret: not a valid SIRET
//
// Messages never repeat field values other than the id, so a secret pasted in
// the wrong place is not copied to the logs. `habilitations: []` is a valid,
// empty registry; an empty file is not.
//
// A habilitation is usable at time t ([Habilitation.ActiveAt]) when it is not
// revoked and valid_from ≤ t < valid_until. The [Watcher] reloads the file
// when it changes and keeps the previous registry when the new one is invalid.
package habilitation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris must resolve on hosts without a zoneinfo database
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds the registry file.
const MaxFileSize = 16 << 20

// Habilitation is one DataPass habilitation. Values returned by a Registry are
// shared: callers must not modify them.
type Habilitation struct {
	ID                     string
	Label                  string
	SIRET                  string
	FranceConnectClientIDs []string
	Scopes                 []string
	ValidFrom              time.Time // zero: no lower bound; inclusive
	ValidUntil             time.Time // zero: no upper bound; exclusive
	Revoked                bool
	// RateLimit overrides the gateway's default quota for this
	// habilitation; zero means the default.
	RateLimit Rate
	// APITokenSHA256 are the hex SHA-256 digests of the habilitation's API
	// bearer tokens (identity and identifier modalities, /api/introspect).
	// Only digests are stored; `passerelle api-token` mints a token.
	APITokenSHA256 []string

	limiterKey string // "hab:" + ID, built once
}

// LimiterKey names the habilitation's quota ("hab:" + ID), built at load so
// that the request path does not allocate it.
func (h *Habilitation) LimiterKey() string { return h.limiterKey }

// Rate is a quota: Requests per Per.
type Rate struct {
	Requests int
	Per      time.Duration
}

// IsZero reports whether no quota is set.
func (r Rate) IsZero() bool { return r.Requests == 0 }

// ParseRate reads a quota written "<n>/s", "<n>/m" or "<n>/h" (1 ≤ n ≤
// 1 000 000), e.g. "20/s".
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(s, "/")
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	v, err := strconv.Atoi(n)
	if !ok || per == 0 || err != nil || v < 1 || v > 1_000_000 || strconv.Itoa(v) != n {
		return Rate{}, errors.New(`want "<n>/s", "<n>/m" or "<n>/h" with 1 ≤ n ≤ 1000000`)
	}
	return Rate{Requests: v, Per: per}, nil
}

// ActiveAt reports whether h is usable at t: not revoked, ValidFrom ≤ t and
// t < ValidUntil (zero bounds are open).
func (h *Habilitation) ActiveAt(t time.Time) bool {
	if h == nil || h.Revoked {
		return false
	}
	if !h.ValidFrom.IsZero() && t.Before(h.ValidFrom) {
		return false
	}
	if !h.ValidUntil.IsZero() && !t.Before(h.ValidUntil) {
		return false
	}
	return true
}

// HasScope reports whether s is one of h's scopes (exact comparison).
func (h *Habilitation) HasScope(s string) bool {
	if h == nil {
		return false
	}
	for _, x := range h.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// Registry is an immutable set of habilitations, safe for concurrent use.
type Registry struct {
	list       []*Habilitation
	byClient   map[string]*Habilitation
	byID       map[string]*Habilitation
	byAPIToken map[[sha256.Size]byte]*Habilitation
}

// ByAPIToken returns the habilitation holding an API bearer token, found
// by the token's SHA-256 (the token itself is never stored). The lookup is
// by digest, so its timing says nothing about the token.
func (r *Registry) ByAPIToken(token string) (*Habilitation, bool) {
	if r == nil || len(r.byAPIToken) == 0 {
		return nil, false
	}
	h, ok := r.byAPIToken[sha256.Sum256([]byte(token))]
	return h, ok
}

// ByClientID returns the habilitation paired with a FranceConnect FS client id
// (token_introspection.aud), by exact comparison. It does not check ActiveAt.
func (r *Registry) ByClientID(clientID string) (*Habilitation, bool) {
	if r == nil {
		return nil, false
	}
	h, ok := r.byClient[clientID]
	return h, ok
}

// ByID returns the habilitation with the given DataPass id.
func (r *Registry) ByID(id string) (*Habilitation, bool) {
	if r == nil {
		return nil, false
	}
	h, ok := r.byID[id]
	return h, ok
}

// Len returns the number of habilitations.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.list)
}

// All returns the habilitations in file order.
func (r *Registry) All() []*Habilitation {
	if r == nil {
		return nil
	}
	return append([]*Habilitation(nil), r.list...)
}

// Load reads and parses the registry file at path.
func Load(path string) (*Registry, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("habilitation: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("habilitation: reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("habilitation: %s is larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

var (
	idRe       = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	scopeRe    = regexp.MustCompile(`^[a-z0-9_]{1,100}$`)
	dateRe     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	nameRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,39}$`)
)

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

	r := &Registry{
		list:       make([]*Habilitation, 0, len(list.Content)),
		byClient:   make(map[string]*Habilitation),
		byID:       make(map[string]*Habilitation),
		byAPIToken: make(map[[sha256.Size]byte]*Habilitation),
	}
	tokenIndex := map[string]int{}
	var errs []error
	entries := make([]*Habilitation, len(list.Content))
	idIndex := map[string]int{}
	clientIndex := map[string]int{}
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
		r.list = append(r.list, h)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, h := range r.list {
		h.limiterKey = "hab:" + h.ID
		r.byID[h.ID] = h
		for _, c := range h.FranceConnectClientIDs {
			r.byClient[c] = h
		}
		for _, d := range h.APITokenSHA256 {
			var sum [sha256.Size]byte
			_, _ = hex.Decode(sum[:], []byte(d)) // validated by parseEntry
			r.byAPIToken[sum] = h
		}
	}
	return r, nil
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
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
				fail(key, "must be true or false")
			} else {
				h.Revoked = v.Value == "true" || v.Value == "True" || v.Value == "TRUE"
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

// ValidSIRET reports whether s is a well-formed SIRET: exactly 14 ASCII digits
// passing the Luhn check, or, for La Poste establishments (SIREN 356000000),
// whose digit sum is a multiple of 5. An all-zero number is refused. No
// trimming: spaces, signs and non-ASCII digits make it invalid.
func ValidSIRET(s string) bool {
	if len(s) != 14 {
		return false
	}
	sum, digitSum := 0, 0
	for i := 0; i < 14; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		digitSum += d
		if i%2 == 0 { // from the right, positions 2, 4, … (14 digits: even indexes)
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	if digitSum == 0 {
		return false
	}
	if sum%10 == 0 {
		return true
	}
	return s[:9] == "356000000" && digitSum%5 == 0
}
