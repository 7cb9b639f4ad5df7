package openapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// recipientPattern is the shape of the recipient SIRET (the gateway also
// checks its Luhn key and that it is the habilitation's).
const recipientPattern = "^[0-9]{14}$"

// operation returns the OpenAPI operation of a catalogue endpoint.
func operation(e *catalogue.Endpoint) obj {
	op := obj{
		"operationId": e.OperationID,
		"summary":     fmt.Sprintf("%s (%s, %s)", e.ID, e.Modality, e.ProviderName),
		"description": description(e),
		"tags":        []string{e.ProviderName},
		"security":    []obj{{scheme(e.Modality): []string{}}},
		"responses":   responses(e),
	}
	if params := parameters(e); len(params) > 0 {
		op["parameters"] = params
	}
	if isV2(e) {
		op["deprecated"] = true // every API Particulier v2 route is (DOMAIN.md §4)
	}
	return op
}

// mergeTwin adds to the operation of a legacy v2 FranceConnect route its
// caller twin (API Particulier v2 serves both modalities on one path): the
// X-Api-Key security alternative and the caller's parameters, optional in
// the document since a FranceConnect call must not send them.
func mergeTwin(op obj, fc, twin *catalogue.Endpoint) {
	op["security"] = append(op["security"].([]obj), obj{schemeAPIKey: []string{}})
	// The 200 body: what the scopes of either modality release (the API
	// key twin may release identity members the FranceConnect route never
	// does).
	both := *fc
	both.Scopes = slices.Clone(fc.Scopes)
	for _, sc := range twin.Scopes {
		if !slices.ContainsFunc(both.Scopes, func(o catalogue.Scope) bool { return o.Name == sc.Name }) {
			both.Scopes = append(both.Scopes, sc)
		}
	}
	op["responses"].(obj)["200"] = responses(&both)["200"]
	ps, _ := op["parameters"].([]obj)
	for i := range twin.Params {
		p := parameter(&twin.Params[i])
		if slices.ContainsFunc(ps, func(q obj) bool { return q["name"] == p["name"] }) {
			continue
		}
		desc, _ := p["description"].(string)
		if twin.Params[i].Required {
			p["required"] = false
			desc += " Required with an API key (X-Api-Key); refused with a FranceConnect token."
		} else {
			desc += " With an API key (X-Api-Key) only."
		}
		p["description"] = strings.TrimSpace(desc)
		if sch, ok := p["schema"].(obj); ok {
			delete(sch, "minItems")
		}
		ps = append(ps, p)
	}
	op["parameters"] = ps
	op["description"] = fmt.Sprint(op["description"]) + "\n\nAlso callable with the habilitation's API key in X-Api-Key " +
		"(identite modality, `" + twin.ID + "`): the caller then gives the citizen's civil status as query " +
		"parameters and recipient is optional." + combinations(twin)
}

func isV2(e *catalogue.Endpoint) bool { return e.API == catalogue.APIv2 }

// scheme returns the security scheme of a modality: FranceConnect routes
// take the citizen's FranceConnect token, the others the habilitation's API
// token.
func scheme(m catalogue.Modality) string {
	if m == catalogue.ModalityFranceConnect {
		return schemeFranceConnect
	}
	return schemeAPIToken
}

// description explains the route: modality, provider, API generation,
// scopes and what each releases, parameter policy.
func description(e *catalogue.Endpoint) string {
	var b strings.Builder
	switch e.Modality {
	case catalogue.ModalityFranceConnect:
		fmt.Fprintf(&b, "Modality france_connect: the caller sends the citizen's FranceConnect v2 access token "+
			"(minimum eIDAS level %s). No identity parameter is accepted: the identity comes from the token.", e.MinACR)
	case catalogue.ModalityIdentite:
		b.WriteString("Modality identite: the caller authenticates with its habilitation's API token and gives " +
			"the citizen's identity as query parameters.")
	case catalogue.ModalityIdentifiant:
		b.WriteString("Modality identifiant: the caller authenticates with its habilitation's API token and gives " +
			"a provider identifier of the citizen as query parameter.")
	default:
		fmt.Fprintf(&b, "Modality %s: the caller authenticates with its habilitation's API token.", e.Modality)
	}
	fmt.Fprintf(&b, "\n\nProvider: %s.", e.ProviderName)
	if _, nf := e.NotFoundError(); nf != e.ProviderName {
		fmt.Fprintf(&b, " Not-found answers name %s.", nf)
	}
	if isV2(e) {
		b.WriteString("\n\nAPI v2 (deprecated): the provider's members sit at the root of the body; errors use " +
			"{error, reason, message}, except FranceConnect token errors (50001-50004), which keep errors[].")
	} else {
		b.WriteString("\n\nAPI v3: the body is {data, links, meta}; errors use errors[].")
	}
	b.WriteString("\n\nScopes (the caller needs at least one; each releases only the members listed, " +
		"members no scope of the caller releases are omitted):\n")
	for _, s := range e.Scopes {
		fmt.Fprintf(&b, "\n- `%s`", s.Name)
		if len(s.Aliases) > 0 {
			fmt.Fprintf(&b, " (aliases: `%s`)", strings.Join(s.Aliases, "`, `"))
		}
		fmt.Fprintf(&b, ": %s", strings.Join(s.Fields, ", "))
	}
	fmt.Fprintf(&b, "\n\nQuery parameters other than those listed, or repeated (unless their name ends in []), are refused (%s).",
		invalidAnswer(e))
	b.WriteString(combinations(e))
	return b.String()
}

// combinations describes the route's one_of and exclusive rules, which a
// parameter schema cannot express.
func combinations(e *catalogue.Endpoint) string {
	var b strings.Builder
	if len(e.OneOf) > 0 {
		groups := make([]string, len(e.OneOf))
		for i, g := range e.OneOf {
			groups[i] = "(" + strings.Join(g, ", ") + ")"
		}
		fmt.Fprintf(&b, " Give exactly one of these groups, whole: %s.", strings.Join(groups, " or "))
	}
	if len(e.Exclusive) > 0 {
		fmt.Fprintf(&b, " Give at most one of %s.", strings.Join(e.Exclusive, ", "))
	}
	return b.String()
}

// invalidAnswer names the answer to a malformed, missing or refused
// parameter.
func invalidAnswer(e *catalogue.Endpoint) string {
	if isV2(e) {
		return "400 bad_request"
	}
	return "422 " + e.InvalidCode
}

// parameters returns the route's query parameters: recipient, then the
// catalogue's, in catalogue order.
func parameters(e *catalogue.Endpoint) []obj {
	var ps []obj
	if e.RecipientAccepted() {
		ps = append(ps, obj{
			"name":     "recipient",
			"in":       "query",
			"required": e.RecipientRequired(),
			"description": "SIRET of the public body receiving the data: 14 digits with a valid Luhn key, " +
				"the SIRET of the caller's habilitation.",
			"schema": obj{"type": "string", "pattern": recipientPattern},
		})
	}
	for i := range e.Params {
		ps = append(ps, parameter(&e.Params[i]))
	}
	return ps
}

// normalizations describes the catalogue's parameter normalisations.
var normalizations = map[string]string{
	"name":    "trimmed, inner spaces collapsed, typographic apostrophes and dashes replaced, upper-cased",
	"integer": "leading zeros dropped",
	"upper":   "upper-cased",
}

// parameter returns one catalogue parameter. A name ending in [] is an
// array that repeats the name (form, exploded), at most Max times. The
// pattern and max_length apply to the value as sent only when the parameter
// has no normalisation: otherwise the gateway checks it after normalising (a
// lower-case "m" passes ^[MF]$ once upper-cased), and the document would
// refuse requests the gateway serves, so the pattern is only described.
func parameter(p *catalogue.Param) obj {
	value := obj{"type": "string"}
	var desc string
	switch {
	case p.Normalize != "":
		how := normalizations[p.Normalize]
		if how == "" {
			how = "normalised (" + p.Normalize + ")"
		}
		desc = "The value is " + how + " before being checked"
		if p.Pattern != "" {
			desc += " against `" + p.Pattern + "`"
		}
		if p.MaxLength > 0 {
			desc += fmt.Sprintf(", at most %d characters", p.MaxLength)
		}
		desc += "."
	case p.Pattern != "":
		value["pattern"] = p.Pattern
	}
	if p.Normalize == "" && p.MaxLength > 0 {
		value["maxLength"] = p.MaxLength
	}
	if len(p.Requires) > 0 {
		desc = strings.TrimSpace(desc + " Must come with " + strings.Join(p.Requires, " and ") + ".")
	}
	out := obj{"name": p.Name, "in": "query", "required": p.Required}
	if desc != "" {
		out["description"] = desc
	}
	if strings.HasSuffix(p.Name, "[]") {
		arr := obj{"type": "array", "items": value, "maxItems": max(p.Max, 1)}
		if p.Required {
			arr["minItems"] = 1
		}
		out["style"], out["explode"], out["schema"] = "form", true, arr
		return out
	}
	out["schema"] = value
	return out
}

// responses returns the route's answers: 200 and the errors the gateway
// sends, in the route's error shape. Answers that do not depend on the
// route are shared (components.responses, see sharedResponses).
func responses(e *catalogue.Endpoint) obj {
	r := obj{"200": jsonResponse("Data released by the caller's scopes. "+
		"The catalogue states which members each scope releases, not their types: values are unconstrained, "+
		"and no member is required since members the caller's scopes do not release are omitted.",
		successSchema(e), false)}
	if isV2(e) {
		for code, name := range map[string]string{
			"400": "BadRequestV2", "401": "UnauthorizedV2", "404": "NotFoundV2", "429": "TooManyRequestsV2",
			"503": "ProviderErrorV2", "504": "TimeoutV2", "default": "OtherErrorV2",
		} {
			r[code] = ref("responses", name)
		}
		return r
	}
	nfPrefix, nfProvider := e.NotFoundError()
	prefix := e.Provider.ErrorPrefix
	invalid := fmt.Sprintf("A query parameter is malformed, missing, repeated or not accepted (%s).", e.InvalidCode)
	if e.RecipientAccepted() {
		invalid = "recipient missing (00203) or not a SIRET (00210); or a query parameter malformed, missing, " +
			fmt.Sprintf("repeated or not accepted (%s).", e.InvalidCode)
	}
	errRef := schemaRef("Error")
	for code, desc := range map[string]string{
		"404": fmt.Sprintf("No record at the provider (%s003, meta.provider %s).", nfPrefix, nfProvider),
		"422": invalid,
		"502": fmt.Sprintf("Unknown provider error or unusable provider answer (%s999).", prefix),
		"504": fmt.Sprintf("Provider timeout (%s002) or unreachable (%s001), or network error (00501).", prefix, prefix),
	} {
		r[code] = jsonResponse(desc, errRef, false)
	}
	unauthorized := "UnauthorizedAPIToken"
	if e.Modality == catalogue.ModalityFranceConnect {
		unauthorized = "UnauthorizedFranceConnect"
	}
	r["401"] = ref("responses", unauthorized)
	r["403"] = ref("responses", "Forbidden")
	r["429"] = ref("responses", "TooManyRequests")
	r["default"] = ref("responses", "OtherError")
	return r
}

// sharedResponses returns components.responses: the error answers that do
// not depend on the route. The v2 ones follow apierror.WriteV2's statuses
// and keys (403 → 401, 422 → 400, 502 → 503).
func sharedResponses() obj {
	v3, v2 := schemaRef("Error"), schemaRef("ErrorV2")
	return obj{
		"UnauthorizedFranceConnect": jsonResponse("FranceConnect token refused: missing (50004), malformed (50001), "+
			"not found or expired (50002), without the identity scopes or below the route's eIDAS level (50003).", v3, false),
		"UnauthorizedAPIToken": jsonResponse("API token refused: missing or unknown (00101), expired (00103) "+
			"or revoked (00105).", v3, false),
		"Forbidden": jsonResponse("Insufficient privileges (00100): no scope of the route among the caller's, "+
			"habilitation unknown or inactive, or recipient other than the habilitation's SIRET.", v3, false),
		"TooManyRequests": jsonResponse("Too many requests (00429).", v3, true),
		"OtherError": jsonResponse("Other errors, same shape: 400 (00400), 405 (00405), 500 (00500), "+
			"503 (00503, with Retry-After).", v3, false),

		"BadRequestV2": jsonResponse("bad_request: recipient or a query parameter malformed, missing, repeated "+
			"or not accepted.", v2, false),
		"UnauthorizedV2": jsonResponse("access_denied: credential refused or insufficient privileges. "+
			"FranceConnect token errors (50001-50004) keep the errors[] shape.",
			obj{"oneOf": []obj{v3, v2}}, false),
		"NotFoundV2":        jsonResponse("not_found: no record at the provider.", v2, false),
		"TooManyRequestsV2": jsonResponse("too_many_requests.", v2, true),
		"ProviderErrorV2": jsonResponse("provider_unknown_error: unknown provider error or unusable provider "+
			"answer.", v2, false),
		"TimeoutV2":    jsonResponse("timeout_error: provider timeout or unreachable.", v2, false),
		"OtherErrorV2": jsonResponse("Other errors, same shape: 405 method_not_allowed, 500 internal_error.", v2, false),
	}
}

// successSchema returns the 200 body schema. v3: {data, links, meta}, each
// an object whose members are the first members under it of the scopes'
// fields (data.admissions[].est_inscrit → admissions); v2: the first
// members of the fields at the root. The response filter drops every other
// member, hence additionalProperties false; a field naming a whole root
// ("data") leaves that root open.
func successSchema(e *catalogue.Endpoint) obj {
	if isV2(e) {
		s := membersSchema(releasedMembers(e, ""))
		s["description"] = "Provider members released by the caller's scopes."
		return s
	}
	props := obj{}
	for _, root := range []string{"data", "links", "meta"} {
		members, whole := releasedMembers(e, root)
		s := membersSchema(members, whole)
		props[root] = s
	}
	return obj{
		"type":                 "object",
		"required":             []string{"data", "links", "meta"},
		"additionalProperties": false,
		"properties":           props,
	}
}

// releasedMembers returns, for each first member under root ("" for the
// body's root) of the endpoint's fields, the scopes that release it, and
// whether a field releases root as a whole.
func releasedMembers(e *catalogue.Endpoint, root string) (map[string][]string, bool) {
	members := map[string][]string{}
	whole := false
	for _, s := range e.Scopes {
		for _, f := range s.Fields {
			rest := f
			if root != "" {
				if f == root {
					whole = true
					continue
				}
				var ok bool
				if rest, ok = strings.CutPrefix(f, root+"."); !ok {
					continue
				}
			}
			first, _, _ := strings.Cut(rest, ".")
			first = strings.TrimSuffix(first, "[]")
			if first == "" {
				whole = true // "data[]" or similar: cannot be described member by member
				continue
			}
			if !slices.Contains(members[first], s.Name) {
				members[first] = append(members[first], s.Name)
			}
		}
	}
	return members, whole
}

// membersSchema returns an object schema with one unconstrained property
// per member (described by the scopes releasing it), closed unless whole.
func membersSchema(members map[string][]string, whole bool) obj {
	props := obj{}
	for m, scopes := range members {
		props[m] = obj{"description": "Released by " + scopeList(scopes) + "."}
	}
	s := obj{"type": "object", "properties": props}
	if !whole {
		s["additionalProperties"] = false
	}
	return s
}

func scopeList(scopes []string) string {
	label := "scope "
	if len(scopes) > 1 {
		label = "scopes "
	}
	return label + "`" + strings.Join(scopes, "`, `") + "`"
}
