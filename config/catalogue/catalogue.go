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
//	    joint_scopes:                 # optional: scopes that release their fields only together
//	      - [mesri_inscription_etudiant, mesri_inscription_autre, mesri_admission]
//	    scopes:                       # scope → response paths it releases (see respfilter syntax)
//	      - name: cnaf_quotient_familial
//	        aliases: []               # other names of the same right (FranceConnect, DataPass)
//	        basis: doc                # doc: mask stated by the source (DOMAIN.md §5);
//	                                  # der: derived here from schemas or data
//	        fields: [data.quotient_familial.valeur, data.quotient_familial.annee]   # leaves
//
// Parsing is strict (unknown fields are errors) and every problem is reported
// at once, naming the endpoint and the field. Besides syntax, validation
// refuses: duplicate ids, paths or operation ids; an unknown provider or
// not_found_provider; a pattern that is not anchored (^…$); a scope name or
// alias listed twice on one route; a pattern whose compiled program is
// large (a counted repetition of a Unicode class such as [\p{L}]{0,99}: bound
// the length with max_length instead); a scope without basis or fields; a field
// path not rooted at data, links or meta; and, on a france_connect route, a
// field path through the identity block, the "identite" member of data (of
// the body's root on v2 routes): FranceConnect variants never return
// identity blocks (DOMAIN.md §5). A member named identite deeper down is
// not one (v2's adresse.identite is the addressee line).
//
// Masks name leaves: the response filter releases a path's whole subtree,
// so a path naming an object or an array of objects would release a member
// the provider adds inside it later. The default catalogue's masks go down
// to the scalars of the official response schemas (data.allocataires[].sexe,
// not data.allocataires); its tests check them against the sandbox payloads.
// The gateway filters with respfilter's Leaves option, so a structure a
// provider puts where a leaf was is dropped, not released whole.
package catalogue

import (
	"bytes"
	_ "embed"
	"fmt"
	"iter"
	"net/url"
	"os"
	"slices"
	"strings"

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
	// JointScopes lists groups of the route's scopes that release their
	// fields only together: where the provider selects records by value
	// (MESRI v2's inscriptions: inscrit or admis, initial or continuing
	// education), a path mask cannot, so a caller holding part of a group
	// would get every record; it gets none of the group's fields instead.
	JointScopes [][]string `yaml:"joint_scopes"`

	// Provider is resolved from ProviderName at load.
	Provider Provider `yaml:"-"`
	// notFound is resolved from NotFoundProviderName (default: Provider).
	notFound Provider
	// joint are JointScopes as masks of Scopes' indexes, resolved at load.
	joint []uint64
}

// JointMasks returns the route's JointScopes as bit masks of its Scopes'
// indexes (bit i: Scopes[i]).
func (e *Endpoint) JointMasks() []uint64 { return e.joint }

// KeepWholeJointGroups returns mask (bit i: Scopes[i] held) without the
// JointScopes groups it holds only part of: those scopes release their
// fields only together.
func (e *Endpoint) KeepWholeJointGroups(mask uint64) uint64 {
	for _, g := range e.joint {
		if mask&g != g {
			mask &^= g
		}
	}
	return mask
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
	scopes  map[string]bool // every scope name and alias of the endpoints
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

// KnowsScope reports whether name is a scope (or a scope's alias) of one
// of the endpoints.
func (c *Catalogue) KnowsScope(name string) bool { return c.scopes[name] }

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

// ACRLevel returns the rank of an acr value (eidas1 < eidas2 < eidas3) and
// whether it is known. A space-separated list ranks as its lowest value,
// and is unknown when any of its values is (SECURITY.md A16: fail closed).
func ACRLevel(acr string) (int, bool) {
	lowest, ok := 0, false
	for v := range strings.FieldsSeq(acr) {
		l, known := acrLevels[v]
		if !known {
			return 0, false
		}
		if !ok || l < lowest {
			lowest, ok = l, true
		}
	}
	return lowest, ok
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
