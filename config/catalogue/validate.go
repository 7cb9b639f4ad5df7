package catalogue

import (
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strings"
)

// Shapes of the catalogue's names and values.
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

// validate checks the catalogue (the rules are in the package
// documentation), applies the defaults and indexes the endpoints; every
// problem is reported at once, naming the endpoint and the field.
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
	c.scopes = map[string]bool{}
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
				// Matched as a whole (wholeValue): the "^…$" the text must
				// carry does not anchor a top-level alternation, nor a "$"
				// under the multi-line flag.
				re, err := compilePattern(wholeValue(p.Pattern))
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
			if n := len(e.Civility.BirthDate); n != 0 && n != 1 && n != 3 {
				add("%s: civility.birth_date: want [year, month, day] parameter names, or one YYYY-MM-DD parameter", at)
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
				c.scopes[n] = true
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
		e.joint = nil
		for g, group := range e.JointScopes {
			var m uint64
			for _, n := range group {
				i := slices.IndexFunc(e.Scopes, func(s Scope) bool { return s.Name == n })
				if i < 0 || i >= 64 {
					add("%s: joint_scopes[%d]: %q is not a scope of the route (its main name)", at, g, n)
					continue
				}
				m |= 1 << i
			}
			if bits.OnesCount64(m) < 2 {
				add("%s: joint_scopes[%d]: want at least two scopes of the route", at, g)
			}
			e.joint = append(e.joint, m)
		}
	}
	return errors.Join(errs...)
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
	}
	if m == ModalityFranceConnect && identityBlock(segs, api) {
		return "identity block on a france_connect route:"
	}
	return ""
}

// identityBlock reports whether a field path goes through the citizen's
// identity block: the identite member of data (v3/v4), or of the body's
// root (v2). A member named identite deeper down is not one: v2's
// adresse.identite is the address's first line, the addressee.
func identityBlock(segs []string, api string) bool {
	i := 1
	if api == APIv2 {
		i = 0
	} else if segs[0] != "data" {
		return false
	}
	return i < len(segs) && strings.TrimRight(segs[i], "[]") == "identite"
}
