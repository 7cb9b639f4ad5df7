package pipeline

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// maxQueryParams bounds the caller's query: no route takes more (an
// identite route: about 17 with three given names).
const maxQueryParams = 24

// queryParam is one decoded query parameter of the caller.
type queryParam struct{ name, value string }

// parseQuery decodes a raw query into dst without a map: the hot path of a
// cached token stays allocation-light. It fails on a bad escape, on more
// than maxQueryParams parameters, and on ';' separators (SECURITY.md D06).
func parseQuery(raw string, dst []queryParam) ([]queryParam, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 || len(dst) == maxQueryParams {
			return dst, false
		}
		name, value, _ := strings.Cut(pair, "=")
		var ok bool
		if name, ok = unescape(name); !ok {
			return dst, false
		}
		if value, ok = unescape(value); !ok {
			return dst, false
		}
		dst = append(dst, queryParam{name, value})
	}
	return dst, true
}

func unescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// count returns how many times name occurs and its first value.
func count(params []queryParam, name string) (int, string) {
	n, v := 0, ""
	for _, p := range params {
		if p.name == name {
			if n == 0 {
				v = p.value
			}
			n++
		}
	}
	return n, v
}

// maxParamBytes bounds one raw parameter value before it is normalised
// (no pattern of the catalogue accepts more than 100 letters, 400 bytes of
// UTF-8): normalisation never runs on attacker-sized input. A value that is
// not valid UTF-8 is refused too: no provider receives broken text.
const maxParamBytes = 512

// checkQuery validates the caller's query: recipient first (SECURITY.md C07),
// then each pass-through parameter; anything else, or anything repeated, is
// refused by name (D07, C08: no person parameter on a FranceConnect route).
//
// On an identite route the route's civility checks then run on the
// normalised values (partial birth dates, born abroad without commune).
// Malformed parameters are answered with the route's invalid_code.
func checkQuery(params []queryParam, ep *catalogue.Endpoint, hab *habilitation.Habilitation, now time.Time) *apierror.Error {
	if n, v := count(params, "recipient"); ep.RecipientRequired() || ep.RecipientAccepted() && n > 0 {
		switch {
		case n == 0 || n == 1 && v == "":
			return apierror.RecipientMissing()
		case n != 1 || !habilitation.ValidSIRET(v):
			return apierror.RecipientInvalid()
		case v != hab.SIRET:
			return apierror.RecipientMismatch()
		}
	}
	for _, qp := range params {
		if qp.name == "recipient" && ep.RecipientAccepted() {
			continue
		}
		p, ok := ep.Param(qp.name)
		if !ok {
			return apierror.ParamRefused(ep.InvalidCode, qp.name)
		}
		if n, _ := count(params, qp.name); n > max(p.Max, 1) || len(qp.value) > maxParamBytes || !utf8.ValidString(qp.value) {
			return apierror.ParamInvalid(ep.InvalidCode, qp.name)
		}
	}
	// Normalise once, in place: the required and civility checks, and the
	// provider query, all see the value that was validated.
	for i := range params {
		if p, ok := ep.Param(params[i].name); ok {
			params[i].value = p.Clean(params[i].value)
			if !p.Valid(params[i].value) {
				return apierror.ParamInvalid(ep.InvalidCode, params[i].name)
			}
		}
	}
	for i := range ep.Params {
		if p := &ep.Params[i]; p.Required {
			if _, v := count(params, p.Name); v == "" {
				return apierror.ParamInvalid(ep.InvalidCode, p.Name)
			}
		}
	}
	for i := range ep.Params {
		if p := &ep.Params[i]; len(p.Requires) > 0 {
			if n, _ := count(params, p.Name); n > 0 {
				for _, need := range p.Requires {
					if _, v := count(params, need); v == "" {
						return apierror.ParamInvalid(ep.InvalidCode, need)
					}
				}
			}
		}
	}
	present := func(name string) bool { n, _ := count(params, name); return n > 0 }
	if bad := ep.CheckOneOf(present); bad != "" {
		return apierror.ParamInvalid(ep.InvalidCode, bad)
	}
	if bad := ep.CheckExclusive(present); bad != "" {
		return apierror.ParamInvalid(ep.InvalidCode, bad)
	}
	if ep.Civility != nil {
		value := func(name string) string {
			_, v := count(params, name)
			return v
		}
		if bad := ep.Civility.Check(value, now); bad != "" {
			return apierror.ParamInvalid(ep.InvalidCode, bad)
		}
	}
	return nil
}

// pivotOf returns the identity pivot of verified facts.
func pivotOf(id *fcverify.Identity) catalogue.Pivot {
	return catalogue.Pivot{
		FamilyName: id.FamilyName, GivenName: id.GivenName, Gender: id.Gender, Birthdate: id.Birthdate,
		Birthplace: id.Birthplace, Birthcountry: id.Birthcountry, IdpBirthdate: id.IdpBirthdate,
	}
}

// normalizeIdentity rewrites a verified identity as civil-status providers
// compare it (catalogue.Pivot.Normalized): the same normalisation as the
// identities callers give. It runs once per verified token, before the
// facts are cached, so that the cached path does no Unicode work.
func normalizeIdentity(id *fcverify.Identity) {
	p := pivotOf(id).Normalized()
	id.FamilyName, id.GivenName, id.Birthdate = p.FamilyName, p.GivenName, p.Birthdate
	for i, n := range id.GivenNameArray {
		id.GivenNameArray[i] = catalogue.NormalizeName(n)
	}
}

// upstreamQuery builds the provider query: the identity mapping, then the
// pass-through parameters and the recipient, in catalogue order. Nothing of
// the caller's raw query is copied (SECURITY.md E01). The identity was
// normalised when the token was verified (normalizeIdentity), and its part
// of the query is built once per token and endpoint (Facts.Derived): a
// cached token's requests only append their own parameters.
func upstreamQuery(ep *catalogue.Endpoint, f *fcverify.Facts, params []queryParam) (string, error) {
	identity, err := f.Derived(ep, func() (string, error) { return identityQuery(ep, f) })
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(identity) + 64)
	b.WriteString(identity)
	for i := range ep.Params {
		if _, v := count(params, ep.Params[i].Name); v != "" {
			addQueryParam(&b, ep.Params[i].Name, v)
		}
	}
	if _, v := count(params, "recipient"); v != "" && ep.RecipientAccepted() {
		addQueryParam(&b, "recipient", v)
	}
	return b.String(), nil
}

// identityQuery is the identity mapping of ep's provider query, from the
// verified facts f.
func identityQuery(ep *catalogue.Endpoint, f *fcverify.Facts) (string, error) {
	pivot := pivotOf(&f.Identity)
	var (
		b    strings.Builder
		buf  [4]string
		vals []string
		err  error
	)
	for _, ip := range ep.Identity {
		if vals, err = ip.Claim.AppendValues(buf[:0], &pivot); err != nil {
			return "", err
		}
		for _, v := range vals {
			addQueryParam(&b, ip.Param, v)
		}
	}
	return b.String(), nil
}

// addQueryParam appends k=v, percent-encoded, to a query being built.
func addQueryParam(b *strings.Builder, k, v string) {
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	b.WriteString(url.QueryEscape(k))
	b.WriteByte('=')
	b.WriteString(url.QueryEscape(v))
}

// callerQuery builds the provider query of an identite route: the caller's
// parameters as checkQuery validated and normalised them, in catalogue
// order, then the recipient.
func callerQuery(ep *catalogue.Endpoint, params []queryParam) string {
	var b strings.Builder
	b.Grow(320)
	for i := range ep.Params {
		p := &ep.Params[i]
		for _, qp := range params {
			if qp.name == p.Name {
				addQueryParam(&b, p.Name, qp.value) // normalised by checkQuery
			}
		}
	}
	if _, v := count(params, "recipient"); v != "" && ep.RecipientAccepted() {
		addQueryParam(&b, "recipient", v)
	}
	return b.String()
}
