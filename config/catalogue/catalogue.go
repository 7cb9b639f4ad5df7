// Package catalogue reads and validates Passerelle's endpoint catalogue: for
// every public route, its calling modality, the data provider behind it, how
// the FranceConnect identity pivot and the caller's query parameters become the
// provider request, the scopes it accepts and the response fields each scope
// releases.
//
// The catalogue is data: adding a route needs no Go code. A default one is
// embedded (default.yaml: every route of API Particulier v3/v4 and the
// legacy v2 FranceConnect routes); an operator may replace it with a file of
// the same format:
//
//	providers:                      # data providers as seen by error codes
//	  CNAV:
//	    error_prefix: "37"          # XX of the XXYYY error codes (API Particulier nomenclature)
//	  RNCPS:
//	    error_prefix: "40"          # may serve only as a not_found_provider
//	endpoints:
//	  - id: dss_quotient_familial_fc  # stable id: used in logs, metrics and audit records
//	    method: GET                   # default GET
//	    path: /v3/dss/quotient_familial/france_connect   # exact, canonical public path
//	    modality: france_connect      # france_connect | identite | identifiant (the caller's API
//	                                  # token, the identity / provider identifier as params)
//	    api: v3                       # v3 (default: {data,links,meta}) | v2 (legacy /api/v2)
//	    invalid_code: "00366"         # 422 code of a malformed caller parameter (default 00366)
//	    operation_id: api_particulier_v3_cnav_quotient_familial_with_france_connect
//	                                  # OpenAPI x-operationId; names the sandbox case folder
//	    provider: CNAV                # a key of providers: credential, 502/504 codes, meta.provider
//	    not_found_provider: RNCPS     # optional key of providers for the 404 answer (XX003),
//	                                  # when the documented not-found code is not the provider's
//	    upstream_path: /v3/dss/quotient_familial/identite # path sent to the provider
//	    min_acr: eidas1               # eidas1 < eidas2 < eidas3
//	    recipient: required           # required | none | optional (v2 API key routes only)
//	    identity:                     # identity pivot → provider query parameters (see Claim)
//	      - {param: nomNaissance, claim: family_name}
//	      - {param: "prenoms[]", claim: given_names}
//	    params:                       # caller query parameters passed through (besides recipient)
//	      - {name: annee, pattern: '^[0-9]{4}$'}          # anchored RE2 pattern, optional
//	      - {name: immatriculation, pattern: '^…$', required: true}
//	      - {name: moisDateNaissance, normalize: integer} # "" | name | integer | upper, applied
//	                                                      # before the pattern; "x[]": max: N
//	      - {name: nomNaissance, normalize: name, pattern: "^[\\p{L}][\\p{L}' -]*$", max_length: 100}
//	                                                      # max_length: characters, after normalisation
//	      - {name: nomCommuneNaissance, requires: [codeCogInseeDepartementNaissance]}
//	                                                      # others the caller must give with it
//	      - {name: anneeDateNaissance, pivot: birth_year} # identity element it carries (identite):
//	                                                      # family_name given_names birth_year
//	                                                      # birth_month birth_day birthdate
//	      - {name: ine, identifier: ine}                  # a provider identifier and its namespace
//	                                                      # (the audit pseudonym: Endpoint.Person)
//	    civility:                     # identite routes only: cross-parameter checks (see Civility)
//	      birth_date: [anneeDateNaissance, moisDateNaissance, jourDateNaissance]
//	    one_of:                       # optional: the caller gives exactly one group, whole
//	      - [ine]
//	      - [nom, prenoms, dateDeNaissance]
//	    exclusive: [codeEtablissement, "codesBcnRegions[]"] # optional: at most one of these
//	    scopes:                       # scope → response paths it releases (see respfilter syntax)
//	      - name: cnaf_quotient_familial
//	        aliases: []               # other names of the same right (FranceConnect, DataPass)
//	        basis: doc                # doc: mask stated by the source (DOMAIN.md §5);
//	                                  # der: derived here from schemas or data
//	        fields: [data.quotient_familial]
//
// Parsing is strict (unknown fields are errors) and every problem is reported
// at once, naming the endpoint and the field. Besides syntax, validation
// refuses: duplicate ids, paths or operation ids; an unknown provider or
// not_found_provider; a pattern that is not anchored (^…$); a scope name or
// alias listed twice on one route; a pattern whose compiled program is
// large (a counted repetition of a Unicode class such as [\p{L}]{0,99}: bound
// the length with max_length instead); a scope without basis or fields; a field
// path not rooted at data, links or meta; and, on a france_connect route, a
// field path through an "identite" member (FranceConnect variants never
// return identity blocks, DOMAIN.md §5).
package catalogue

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML []byte

// Modality is how the caller identifies the citizen.
type Modality string

// The calling modalities of API Particulier.
const (
	ModalityFranceConnect Modality = "france_connect"
	// ModalityIdentite: the caller authenticates with its habilitation's
	// API token and gives the identity as query parameters.
	ModalityIdentite Modality = "identite"
	// ModalityIdentifiant: the same, with a provider identifier (INE,
	// France Travail identifier) as the query parameter.
	ModalityIdentifiant Modality = "identifiant"
)

// CallerGivesIdentity reports whether routes of modality m take the citizen
// from the caller's parameters (identite, identifiant) rather than from a
// FranceConnect token.
func (m Modality) CallerGivesIdentity() bool {
	return m == ModalityIdentite || m == ModalityIdentifiant
}

// The API generations a route belongs to.
const (
	// APIv3: v3 and v4 routes, body {data, links, meta}, errors[] shape.
	APIv3 = "v3"
	// APIv2: legacy /api/v2 routes, provider fields at the root of the
	// body, errors {error, reason, message} except FranceConnect token
	// errors (50001–50004), which keep the errors[] shape.
	APIv2 = "v2"
)

// Provider is a data provider as seen by error codes. Its name (the key in
// providers) is also the meta.provider of error answers and the name of its
// upstream credential: letters, digits, space, '&', '-', '_', at most 32
// bytes, starting and ending with a letter or digit.
type Provider struct {
	// ErrorPrefix is the two-digit provider prefix of API Particulier error
	// codes (37 for CNAV), used for 404, 502 and 504 answers.
	ErrorPrefix string `yaml:"error_prefix"`
}

// IdentityParam maps one identity claim to one provider query parameter.
type IdentityParam struct {
	Param string `yaml:"param"`
	Claim Claim  `yaml:"claim"`
}

// Param is a caller query parameter passed through to the provider.
type Param struct {
	Name     string `yaml:"name"`
	Pattern  string `yaml:"pattern"`
	Required bool   `yaml:"required"`
	// Max is how many times the parameter may appear (default 1); only a
	// name ending in "[]" (prenoms[]) may repeat. MESRI's prenoms[] takes
	// exactly one value: max 1.
	Max int `yaml:"max"`
	// Normalize is how the caller's value is rewritten before the pattern
	// is checked and the value sent: "" (as given), "name" (see
	// NormalizeName), "integer" (leading zeros dropped: 08 → 8) or "upper"
	// (upper-cased: m → M, 2a115 → 2A115).
	Normalize string `yaml:"normalize"`
	// Requires names the parameters the caller must give with this one:
	// a commune of birth given by name needs its département and the birth
	// year (nomCommuneNaissance requires codeCogInseeDepartementNaissance
	// and anneeDateNaissance). A missing one is refused by name.
	Requires []string `yaml:"requires"`
	// MaxLength bounds the value in characters (Unicode code points) after
	// normalisation; 0 means no bound beyond the pattern's. A length is a
	// check, not a counted repetition in the pattern: [\p{L}]{0,99}
	// compiles to megabytes.
	MaxLength int `yaml:"max_length"`
	// Pivot names the identity element the parameter carries, on identite
	// routes: family_name, given_names, birth_year, birth_month, birth_day
	// or birthdate (see Endpoint.Person): the audit pseudonym of the call
	// is computed from them.
	Pivot string `yaml:"pivot"`
	// Identifier names the namespace of a provider identifier the
	// parameter carries (ine, france_travail…), on identite and
	// identifiant routes: the audit pseudonym of a call giving it.
	Identifier string `yaml:"identifier"`

	re *regexp.Regexp // shared with every route using the same pattern
}

// The normalisations a parameter may declare.
var normalizers = map[string]func(string) string{
	"":        func(v string) string { return v },
	"name":    NormalizeName,
	"integer": trimLeadingZeros,
	"upper":   strings.ToUpper,
}

// Valid reports whether v is an acceptable value for the parameter: within
// MaxLength and matching the pattern.
func (p *Param) Valid(v string) bool {
	if p.MaxLength > 0 && len(v) > p.MaxLength && utf8.RuneCountInString(v) > p.MaxLength {
		return false
	}
	return p.re == nil || p.re.MatchString(v)
}

// Clean applies the parameter's normalisation to a caller's value.
func (p *Param) Clean(v string) string {
	if f, ok := normalizers[p.Normalize]; ok {
		return f(v)
	}
	return v
}

func trimLeadingZeros(v string) string {
	t := strings.TrimLeft(v, "0")
	if t == "" && v != "" {
		return "0"
	}
	return t
}

// Basis says where a scope's field mask comes from.
type Basis string

// The bases of a field mask (markers of DOMAIN.md).
const (
	// BasisDoc: the mask is stated by the cited source (siade serializers,
	// API Particulier documentation).
	BasisDoc Basis = "doc"
	// BasisDer: the mask is derived here from schemas or sandbox data.
	BasisDer Basis = "der"
)

// Scope is one right an endpoint accepts and the response paths it releases.
type Scope struct {
	Name    string   `yaml:"name"`
	Aliases []string `yaml:"aliases"`
	Basis   Basis    `yaml:"basis"`
	Fields  []string `yaml:"fields"`
}

// Names returns the scope name followed by its aliases.
func (s *Scope) Names() []string { return append([]string{s.Name}, s.Aliases...) }

// Endpoint is one public route.
type Endpoint struct {
	ID           string   `yaml:"id"`
	Method       string   `yaml:"method"`
	Path         string   `yaml:"path"`
	Modality     Modality `yaml:"modality"`
	OperationID  string   `yaml:"operation_id"`
	ProviderName string   `yaml:"provider"`
	// NotFoundProviderName, when set, names the provider whose prefix and
	// name the 404 answer carries (C2S: 40003 RNCPS).
	NotFoundProviderName string          `yaml:"not_found_provider"`
	UpstreamPath         string          `yaml:"upstream_path"`
	MinACR               string          `yaml:"min_acr"`
	Recipient            string          `yaml:"recipient"`
	Identity             []IdentityParam `yaml:"identity"`
	Params               []Param         `yaml:"params"`
	Scopes               []Scope         `yaml:"scopes"`
	// API is APIv3 (default) or APIv2.
	API string `yaml:"api"`
	// InvalidCode is the 422 code of a malformed, missing or refused caller
	// parameter (default 00366; 00360 INE, 00391 GIP-MDS…).
	InvalidCode string `yaml:"invalid_code"`
	// Civility holds the cross-parameter checks of an identite route.
	Civility *Civility `yaml:"civility"`
	// OneOf lists groups of parameters of which the caller gives exactly
	// one, whole (legacy v2 student routes: an INE, or a civil status).
	OneOf [][]string `yaml:"one_of"`
	// Exclusive lists parameters of which the caller gives at most one
	// (MEN: an establishment's code, or a perimeter of départements, or one
	// of académies' regions; siade answers 00419 when they are combined).
	Exclusive []string `yaml:"exclusive"`

	// Provider is resolved from ProviderName at load.
	Provider Provider `yaml:"-"`
	// notFound is resolved from NotFoundProviderName (default: Provider).
	notFound Provider
}

// NotFoundError returns the error prefix and provider name of the route's
// not-found answer (404 prefix+"003"): those of not_found_provider when set,
// else those of provider.
func (e *Endpoint) NotFoundError() (prefix, provider string) {
	if e.NotFoundProviderName != "" {
		return e.notFound.ErrorPrefix, e.NotFoundProviderName
	}
	return e.Provider.ErrorPrefix, e.ProviderName
}

// RecipientRequired reports whether the route takes a mandatory recipient SIRET.
func (e *Endpoint) RecipientRequired() bool { return e.Recipient == "required" }

// RecipientAccepted reports whether the route takes a recipient SIRET:
// required, or optional (legacy v2 API key calls). When given, it is
// checked like a required one.
func (e *Endpoint) RecipientAccepted() bool {
	return e.Recipient == "required" || e.Recipient == "optional"
}

// Param returns the pass-through parameter named name.
func (e *Endpoint) Param(name string) (*Param, bool) {
	for i := range e.Params {
		if e.Params[i].Name == name {
			return &e.Params[i], true
		}
	}
	return nil, false
}

// Scope returns the scope of the endpoint known by name, its own name or one
// of its aliases.
func (e *Endpoint) Scope(name string) (*Scope, bool) {
	for i := range e.Scopes {
		if slices.Contains(e.Scopes[i].Names(), name) {
			return &e.Scopes[i], true
		}
	}
	return nil, false
}

// ProducesParam reports whether the provider query of a france_connect
// endpoint may hold the parameter name (written without "[]"): one of its
// identity mapping or pass-through parameters, or recipient. A sandbox case
// with another parameter belongs to the route's API key twin.
func (e *Endpoint) ProducesParam(name string) bool {
	if name == "recipient" {
		return true
	}
	for _, ip := range e.Identity {
		if strings.TrimSuffix(ip.Param, "[]") == name {
			return true
		}
	}
	for _, p := range e.Params {
		if strings.TrimSuffix(p.Name, "[]") == name {
			return true
		}
	}
	return false
}

// ProducesAll reports whether ProducesParam holds for every name: a
// sandbox case with these params is one of this france_connect endpoint's.
func (e *Endpoint) ProducesAll(names iter.Seq[string]) bool {
	for n := range names {
		if !e.ProducesParam(n) {
			return false
		}
	}
	return true
}

// IdentityQuery returns the identity part of the provider query for pivot p:
// each identity parameter with the values of its claim, in catalogue order,
// as the handler sends them (without the pass-through parameters and the
// recipient). It fails with ErrUnusableIdentity as the handler would.
func (e *Endpoint) IdentityQuery(p *Pivot) (url.Values, error) {
	q := make(url.Values, len(e.Identity))
	for _, ip := range e.Identity {
		vals, err := ip.Claim.AppendValues(nil, p)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			q.Add(ip.Param, v)
		}
	}
	return q, nil
}

// Catalogue is a validated set of endpoints, indexed by method and path.
type Catalogue struct {
	Providers map[string]Provider `yaml:"providers"`
	Endpoints []Endpoint          `yaml:"endpoints"`

	byPath  map[string]*Endpoint
	callers map[string]*Endpoint // caller twins of legacy v2 FranceConnect routes
	byID    map[string]*Endpoint
}

// Lookup returns the endpoint whose path is exactly path. On a legacy v2
// path served in both modalities, it is the FranceConnect one; see
// CallerTwin.
func (c *Catalogue) Lookup(path string) (*Endpoint, bool) {
	e, ok := c.byPath[path]
	return e, ok
}

// CallerTwin returns the identite endpoint sharing path with a legacy v2
// FranceConnect endpoint: API Particulier v2 serves both modalities on one
// path, telling them apart by the credential (a FranceConnect token in
// Authorization, an API key in X-Api-Key).
func (c *Catalogue) CallerTwin(path string) (*Endpoint, bool) {
	e, ok := c.callers[path]
	return e, ok
}

// APIKeyHeader reports whether the endpoint takes its API token from the
// X-Api-Key header (legacy v2 caller routes) rather than from
// Authorization: Bearer.
func (e *Endpoint) APIKeyHeader() bool { return e.API == APIv2 && e.Modality.CallerGivesIdentity() }

// twins reports whether a and b may share a path and an operation id: the
// two calling modalities of one legacy v2 route.
func twins(a, b *Endpoint) bool {
	return a.API == APIv2 && b.API == APIv2 && a.Path == b.Path &&
		(a.Modality == ModalityFranceConnect) != (b.Modality == ModalityFranceConnect)
}

// ByID returns the endpoint with the given id.
func (c *Catalogue) ByID(id string) (*Endpoint, bool) {
	e, ok := c.byID[id]
	return e, ok
}

// Default returns the embedded catalogue.
func Default() (*Catalogue, error) { return Parse(defaultYAML) }

// Load reads a catalogue file.
func Load(path string) (*Catalogue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalogue: reading file: %w", err)
	}
	return Parse(data)
}

// Parse decodes and validates a catalogue.
func Parse(data []byte) (*Catalogue, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Catalogue
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var (
	idRe         = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	operationRe  = regexp.MustCompile(`^[a-z0-9_]{1,128}$`)
	providerRe   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9 &_-]{0,30}[A-Za-z0-9])?$`)
	pathRe       = regexp.MustCompile(`^(/[a-z0-9_\-]+)+$`)
	paramRe      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\[\])?$`)
	prefixRe     = regexp.MustCompile(`^[0-9]{2}$`)
	scopeRe      = regexp.MustCompile(`^[a-z0-9_]{1,128}$`)
	fieldRe      = regexp.MustCompile(`^[A-Za-z0-9_]+(\[\])?(\.[A-Za-z0-9_]+(\[\])?)*$`)
	acrLevels    = map[string]int{"eidas1": 1, "eidas2": 2, "eidas3": 3}
	fieldRoots   = map[string]bool{"data": true, "links": true, "meta": true}
	reservedArgs = map[string]bool{"recipient": true, "access_token": true}
	codeRe       = regexp.MustCompile(`^00[0-9]{3}$`)
)

// ACRLevel returns the rank of an acr value (eidas1 < eidas2 < eidas3) and
// whether it is known. A space-separated list ranks as its highest known value.
func ACRLevel(acr string) (int, bool) {
	best, ok := 0, false
	for v := range strings.FieldsSeq(acr) {
		if l, known := acrLevels[v]; known {
			ok = true
			best = max(best, l)
		}
	}
	return best, ok
}

func (c *Catalogue) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("catalogue: "+format, a...)) }
	for name, p := range c.Providers {
		if !providerRe.MatchString(name) {
			add("providers.%s: invalid provider name (letters, digits, space, &, -, _; at most 32 bytes)", name)
		}
		if !prefixRe.MatchString(p.ErrorPrefix) {
			add("providers.%s: error_prefix: want two digits", name)
		} else if p.ErrorPrefix == "00" || p.ErrorPrefix == "50" {
			// 00 is the platform's, 50 FranceConnect token errors' (5000x).
			add("providers.%s: error_prefix: 00 and 50 are reserved", name)
		}
	}
	if len(c.Endpoints) == 0 {
		add("endpoints: at least one endpoint is required")
	}
	c.byPath = make(map[string]*Endpoint, len(c.Endpoints))
	c.byID = make(map[string]*Endpoint, len(c.Endpoints))
	c.callers = map[string]*Endpoint{}
	seenOp := make(map[string]*Endpoint, len(c.Endpoints))
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		at := fmt.Sprintf("endpoints[%d] (id %q)", i, e.ID)
		if !idRe.MatchString(e.ID) {
			add("%s: id: want 1-64 of [a-z0-9_]", at)
		} else if c.byID[e.ID] != nil {
			add("%s: id: duplicate", at)
		} else {
			c.byID[e.ID] = e
		}
		if e.Method == "" {
			e.Method = "GET"
		}
		if e.Method != "GET" {
			add("%s: method: only GET is served", at)
		}
		if !pathRe.MatchString(e.Path) {
			add("%s: path: want a canonical absolute path of [a-z0-9_-] segments", at)
		}
		if e.Modality != ModalityFranceConnect && !e.Modality.CallerGivesIdentity() {
			add("%s: modality: want %q, %q or %q", at, ModalityFranceConnect, ModalityIdentite, ModalityIdentifiant)
		}
		if e.Modality.CallerGivesIdentity() && len(e.Identity) > 0 {
			add("%s: identity: an %s endpoint takes the identity from the caller's parameters, not from a mapping", at, e.Modality)
		}
		if e.API == "" {
			e.API = APIv3
		}
		if e.API != APIv3 && e.API != APIv2 {
			add("%s: api: want v3 or v2", at)
		}
		if e.InvalidCode == "" {
			e.InvalidCode = "00366"
		}
		if !codeRe.MatchString(e.InvalidCode) {
			add("%s: invalid_code: want a platform code 00YYY", at)
		}
		if !operationRe.MatchString(e.OperationID) {
			add("%s: operation_id: want 1-128 of [a-z0-9_]", at)
		} else if other := seenOp[e.OperationID]; other != nil && !twins(other, e) {
			add("%s: operation_id: duplicate", at)
		} else {
			seenOp[e.OperationID] = e
		}
		if pathRe.MatchString(e.Path) {
			c.addPath(e, at, add)
		}
		if p, ok := c.Providers[e.ProviderName]; ok {
			e.Provider = p
		} else {
			add("%s: provider: unknown provider %q", at, e.ProviderName)
		}
		if e.NotFoundProviderName != "" {
			if p, ok := c.Providers[e.NotFoundProviderName]; ok {
				e.notFound = p
			} else {
				add("%s: not_found_provider: unknown provider %q", at, e.NotFoundProviderName)
			}
		}
		if !pathRe.MatchString(e.UpstreamPath) {
			add("%s: upstream_path: want a canonical absolute path", at)
		}
		if e.MinACR == "" {
			e.MinACR = "eidas1"
		}
		if _, ok := acrLevels[e.MinACR]; !ok {
			add("%s: min_acr: want eidas1, eidas2 or eidas3", at)
		}
		if e.Recipient == "" {
			e.Recipient = "required"
		}
		if e.Recipient != "required" && e.Recipient != "none" && e.Recipient != "optional" {
			add("%s: recipient: want required, optional or none", at)
		}
		if e.Recipient == "optional" && (e.Modality == ModalityFranceConnect || e.API != APIv2) {
			add("%s: recipient: optional only on legacy v2 API key routes (FranceConnect calls require it)", at)
		}
		if e.Modality == ModalityFranceConnect && len(e.Identity) == 0 {
			add("%s: identity: a france_connect endpoint needs an identity mapping", at)
		}
		seenParam := map[string]bool{}
		for j, ip := range e.Identity {
			if !paramRe.MatchString(ip.Param) {
				add("%s: identity[%d].param: invalid name", at, j)
			}
			if !ip.Claim.valid() {
				add("%s: identity[%d].claim: unknown claim %q", at, j, ip.Claim)
			}
			seenParam[strings.TrimSuffix(ip.Param, "[]")] = true
		}
		for j := range e.Params {
			p := &e.Params[j]
			switch {
			case !paramRe.MatchString(p.Name):
				add("%s: params[%d].name: invalid name", at, j)
			case p.Max > 1 && !strings.HasSuffix(p.Name, "[]"):
				add("%s: params[%d]: only a name ending in [] may repeat (max > 1)", at, j)
			case p.Max > 10:
				add("%s: params[%d].max: at most 10", at, j)
			case normalizers[p.Normalize] == nil:
				add("%s: params[%d].normalize: want name, integer, upper or nothing", at, j)
			case reservedArgs[p.Name] || seenParam[p.Name]:
				add("%s: params[%d].name: %q is reserved or already mapped", at, j, p.Name)
			case p.MaxLength < 0 || p.MaxLength > maxParamLength:
				add("%s: params[%d].max_length: want 0 to %d", at, j, maxParamLength)
			}
			seenParam[p.Name] = true
			if p.Pattern != "" {
				re, err := compilePattern(p.Pattern)
				switch {
				case err != nil:
					add("%s: params[%d].pattern: %v", at, j, err)
				case !strings.HasPrefix(p.Pattern, "^") || !strings.HasSuffix(p.Pattern, "$"):
					add("%s: params[%d].pattern: must be anchored (^…$)", at, j)
				}
				p.re = re
			}
		}
		for _, msg := range e.checkPerson() {
			add("%s: %s", at, msg)
		}
		for j := range e.Params {
			for _, n := range e.Params[j].Requires {
				if _, ok := e.Param(n); !ok || n == e.Params[j].Name {
					add("%s: params[%d].requires: %q is not another declared parameter", at, j, n)
				}
			}
		}
		if e.Civility != nil {
			if e.Modality != ModalityIdentite {
				add("%s: civility: only identite endpoints take one", at)
			}
			for _, n := range e.Civility.names() {
				if _, ok := e.Param(n); !ok {
					add("%s: civility: %q is not a declared parameter", at, n)
				}
			}
			if len(e.Civility.BirthDate) != 0 && len(e.Civility.BirthDate) != 3 {
				add("%s: civility.birth_date: want [year, month, day] parameter names", at)
			}
		}
		inGroup := map[string]bool{}
		for j, g := range e.OneOf {
			if len(g) == 0 {
				add("%s: one_of[%d]: an empty group", at, j)
			}
			for _, n := range g {
				if _, ok := e.Param(n); !ok || inGroup[n] {
					add("%s: one_of[%d]: %q is not a declared parameter, or is in two groups", at, j, n)
				}
				inGroup[n] = true
			}
		}
		if len(e.OneOf) == 1 {
			add("%s: one_of: want at least two groups", at)
		}
		for _, n := range e.Exclusive {
			if _, ok := e.Param(n); !ok {
				add("%s: exclusive: %q is not a declared parameter", at, n)
			}
		}
		if len(e.Exclusive) == 1 {
			add("%s: exclusive: want at least two parameters", at)
		}
		if len(e.Scopes) == 0 {
			add("%s: scopes: a route without scopes is refused (default deny)", at)
		}
		if len(e.Scopes) > 64 {
			add("%s: scopes: at most 64", at)
		}
		seenScope := map[string]bool{}
		for j, s := range e.Scopes {
			for _, n := range s.Names() {
				if !scopeRe.MatchString(n) {
					add("%s: scopes[%d]: invalid scope name %q", at, j, n)
				} else if seenScope[n] {
					add("%s: scopes[%d]: scope name %q listed twice", at, j, n)
				}
				seenScope[n] = true
			}
			if s.Basis != BasisDoc && s.Basis != BasisDer {
				add("%s: scopes[%d] (%s): basis: want doc or der", at, j, s.Name)
			}
			if len(s.Fields) == 0 {
				add("%s: scopes[%d] (%s): fields: a scope must release at least one field", at, j, s.Name)
			}
			for _, f := range s.Fields {
				if msg := checkField(f, e.Modality, e.API); msg != "" {
					add("%s: scopes[%d] (%s): fields: %s %q", at, j, s.Name, msg, f)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// CheckExclusive returns the second parameter of e.Exclusive the caller
// gave (present reports whether one was given), or "" when at most one was.
func (e *Endpoint) CheckExclusive(present func(name string) bool) string {
	seen := false
	for _, n := range e.Exclusive {
		if present(n) {
			if seen {
				return n
			}
			seen = true
		}
	}
	return ""
}

// CheckOneOf returns the parameter to name when the caller's parameters
// (present reports whether one was given) do not make exactly one whole
// group of e.OneOf: the first parameter of a second group given, the first
// missing parameter of the group given, or the first parameter of the
// first group when none is given. "" when the rule holds or there is none.
func (e *Endpoint) CheckOneOf(present func(name string) bool) string {
	given := -1
	for i, g := range e.OneOf {
		for _, n := range g {
			if !present(n) {
				continue
			}
			if given >= 0 && given != i {
				return n
			}
			given = i
		}
	}
	switch {
	case len(e.OneOf) == 0:
		return ""
	case given < 0:
		return e.OneOf[0][0]
	}
	for _, n := range e.OneOf[given] {
		if !present(n) {
			return n
		}
	}
	return ""
}

// addPath indexes e by path. A path is unique, except for the two calling
// modalities of one legacy v2 route (twins): the FranceConnect endpoint is
// indexed by path, the other as its caller twin. It runs after e.API and
// e.Modality were checked.
func (c *Catalogue) addPath(e *Endpoint, at string, add func(string, ...any)) {
	other := c.byPath[e.Path]
	switch {
	case other == nil:
		c.byPath[e.Path] = e
	case !twins(other, e) || c.callers[e.Path] != nil:
		add("%s: path: duplicate (only a legacy v2 route may be declared twice, once per calling modality)", at)
	case e.Modality == ModalityFranceConnect:
		c.byPath[e.Path], c.callers[e.Path] = e, other
	default:
		c.callers[e.Path] = e
	}
}

// maxParamLength bounds max_length: the gateway refuses a raw value over
// 512 bytes before normalising it.
const maxParamLength = 500

// maxFieldSegments bounds a field path, as the response filter does.
const maxFieldSegments = 32

// checkField returns why a field path is refused, or "". On a v2 route the
// provider's fields sit at the root of the body: any first member is allowed.
func checkField(f string, m Modality, api string) string {
	if !fieldRe.MatchString(f) {
		return "invalid path"
	}
	segs := strings.Split(f, ".")
	if api != APIv2 && !fieldRoots[segs[0]] {
		return "path not rooted at data, links or meta:"
	}
	if len(segs) > maxFieldSegments {
		return "path too deep:"
	}
	for _, seg := range segs {
		if len(strings.TrimRight(seg, "[]")) > 128 {
			return "path member too long:"
		}
		if m == ModalityFranceConnect && strings.TrimRight(seg, "[]") == "identite" {
			return "identity block on a france_connect route:"
		}
	}
	return ""
}

// ProviderSlug returns a provider name as a URL path segment: ASCII letters lower-cased,
// digits kept, any run of other characters (space, &, _, -, …) turned into
// one '-', with no '-' at either end. "CNAF & MSA" → "cnaf-msa",
// "France Travail" → "france-travail", "GIP-MDS" → "gip-mds".
func ProviderSlug(provider string) string {
	var b strings.Builder
	b.Grow(len(provider))
	dash := false
	for i := 0; i < len(provider); i++ {
		c := provider[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			dash = b.Len() > 0
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
