package apierror

import (
	"net/http"
	"strings"
)

// Constructors for every row of SECURITY.md §1.3 and DOMAIN.md §6. Each
// returns a fresh *Error: callers may adjust it (e.g. RetryAfter) without
// affecting others. Texts are fixed French strings modelled on API
// Particulier's; arguments are echoed only after validation against
// closed syntaxes, and never come from a token.

const (
	titleUnauthorized   = "Accès non autorisé"
	titleForbidden      = "Privilèges insuffisants"
	titleUnprocessable  = "Entité non traitable"
	titleProviderError  = "Erreur inconnue du fournisseur de données"
	titleNotFound       = "Entité non trouvée"
	titleTimeout        = "Délai d'attente du fournisseur de données dépassé"
	titleUnreachable    = "Fournisseur de données indisponible"
	titleUnavailable    = "Service momentanément indisponible"
	detailProviderError = "La réponse retournée par le fournisseur de données est invalide et inconnue de notre service. L'équipe technique a été notifiée de cette erreur pour investigation."
	detailForbidden     = "Vos privilèges ne permettent pas d'accéder à cette ressource. Listez vos privilèges sur /api/introspect."
	// RetryIn is the meta.retry_in of the 504 answers, in seconds.
	RetryIn = 10
	// UnavailableRetryAfter is the Retry-After of a 503, in seconds.
	UnavailableRetryAfter = 10
)

// --- 401, FranceConnect routes (legacy 50 prefix) ---

// TokenMissing: no bearer token on a FranceConnect route (401 50004).
// The challenge is a bare "Bearer" (RFC 6750 §3.1).
func TokenMissing() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "50004", Title: titleUnauthorized,
		Detail: "Aucun jeton d'accès FranceConnect n'a été transmis. Transmettez-le dans le header Authorization, avec le schéma Bearer.",
		Reason: ReasonTokenMissing}
}

// TokenMalformed: malformed, duplicated, oversized or misplaced credential
// on a FranceConnect route (401 50001, A01–A03).
func TokenMalformed() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "50001", Title: titleUnauthorized,
		Detail: "Le jeton d'accès FranceConnect est mal formé. Il doit être transmis une seule fois, uniquement dans le header Authorization, avec le schéma Bearer.",
		Reason: ReasonTokenMalformed}
}

// TokenNotFound: FC token inactive, unknown to FranceConnect or of the
// wrong kind (401 50002). Use TokenExpired when the cause is expiry: same
// answer, other audit reason.
func TokenNotFound() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "50002", Title: titleUnauthorized,
		Detail: "Le jeton d'accès n'a pas été trouvé ou est expiré.",
		Reason: ReasonTokenInactive}
}

// TokenExpired is TokenNotFound with the token_expired audit reason.
func TokenExpired() *Error {
	e := TokenNotFound()
	e.Reason = ReasonTokenExpired
	return e
}

// FCBadResponse: FranceConnect's checktoken answer could not be verified
// (I03). The caller sees TokenNotFound's answer (A18: the precise reason
// goes only to the audit). Use Unavailable(ReasonFCBadResponse) instead
// when the failure is FranceConnect's, not the token's.
func FCBadResponse() *Error {
	e := TokenNotFound()
	e.Reason = ReasonFCBadResponse
	return e
}

// IdentityScopesMissing: the FC token lacks the identity scopes (401
// 50003). The detail is fixed: it never lists the token's scopes.
func IdentityScopesMissing() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "50003", Title: titleUnauthorized,
		Detail: "Le jeton d'accès FranceConnect ne donne pas accès aux données d'identité nécessaires à cette route.",
		Reason: ReasonScopeDenied}
}

// ACRTooLow: the token's acr is below the route minimum, or unknown (401
// 50003, A16). The detail names the required level when it is one of
// eidas1, eidas2, eidas3 (a route setting, never the token's value).
func ACRTooLow(required string) *Error {
	detail := "Le niveau d'authentification FranceConnect de ce jeton est insuffisant pour cette route."
	switch required {
	case "eidas1", "eidas2", "eidas3":
		detail = "Le niveau d'authentification FranceConnect de ce jeton est insuffisant pour cette route : le niveau " + required + " au minimum est requis."
	}
	return &Error{Status: http.StatusUnauthorized, Code: "50003", Title: titleUnauthorized,
		Detail: detail, Reason: ReasonACRTooLow}
}

// --- 401, API token routes ---

// APITokenMissing: no API token (401 00101, source token).
func APITokenMissing() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "00101", Title: "Interdit",
		Detail:          "Aucun jeton d'accès n'a été transmis. Transmettez-le dans le header Authorization, avec le schéma Bearer.",
		SourceParameter: "token", Reason: ReasonTokenMissing}
}

// APITokenMalformed: malformed, duplicated or misplaced API token (401
// 00101, source token).
func APITokenMalformed() *Error {
	e := APITokenInvalid()
	e.Reason = ReasonTokenMalformed
	return e
}

// APITokenInvalid: unknown API token (401 00101, source token).
func APITokenInvalid() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "00101", Title: "Interdit",
		Detail:          "Le jeton d'accès est invalide ou mal formé.",
		SourceParameter: "token", Reason: ReasonTokenInactive}
}

// APITokenExpired: expired API token (401 00103).
func APITokenExpired() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "00103", Title: "Jeton expiré",
		Detail:          "Le jeton d'accès a expiré. Renouvelez-le sur le portail API Particulier.",
		SourceParameter: "token", Reason: ReasonTokenExpired}
}

// APITokenRevoked: revoked (blacklisted) API token (401 00105).
func APITokenRevoked() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "00105", Title: "Jeton sur liste noire",
		Detail:          "Le jeton d'accès a été révoqué.",
		SourceParameter: "token", Reason: ReasonTokenInactive}
}

// --- 403 ---

// Forbidden: no effective scope (403 00100, C03).
func Forbidden() *Error {
	return &Error{Status: http.StatusForbidden, Code: "00100", Title: titleForbidden,
		Detail: detailForbidden, Reason: ReasonScopeDenied}
}

// HabilitationUnknown: no habilitation for the caller (403 00100, C01).
// Same answer as Forbidden, other audit reason.
func HabilitationUnknown() *Error {
	e := Forbidden()
	e.Reason = ReasonHabilitationUnknown
	return e
}

// HabilitationInactive: habilitation expired, not yet valid or revoked
// (403 00100, C02). Same answer as Forbidden, other audit reason.
func HabilitationInactive() *Error {
	e := Forbidden()
	e.Reason = ReasonHabilitationInactive
	return e
}

// ModalityDenied: the habilitation was not granted the route's calling
// modality (403 00100): an API token of a habilitation that lists only
// france_connect opens no identite route. Same answer as Forbidden, other
// audit reason.
func ModalityDenied() *Error {
	e := Forbidden()
	e.Reason = ReasonModalityDenied
	return e
}

// ClientCertificateMismatch: the habilitation declares client
// certificates and the caller's TLS handshake presented none of them
// (403 00100, C09). Same answer as Forbidden, other audit reason.
func ClientCertificateMismatch() *Error {
	e := Forbidden()
	e.Reason = ReasonClientCertificate
	return e
}

// RecipientMismatch: recipient is a SIRET other than the habilitation
// holder's (403 00100, C07). The detail quotes no SIRET.
func RecipientMismatch() *Error {
	return &Error{Status: http.StatusForbidden, Code: "00100", Title: titleForbidden,
		Detail:          "Le paramètre recipient ne correspond pas au SIRET de l'organisation habilitée.",
		SourceParameter: "recipient", Reason: ReasonRecipientMismatch}
}

// --- 422 ---

// RecipientMissing: recipient absent (422 00203).
func RecipientMissing() *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "00203", Title: titleUnprocessable,
		Detail:          "Le paramètre recipient est manquant. Il doit contenir le numéro SIRET de l'organisation destinataire des données.",
		SourceParameter: "recipient", Reason: ReasonParamRefused}
}

// RecipientInvalid: recipient is not a SIRET, or is repeated (422 00210).
func RecipientInvalid() *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "00210", Title: titleUnprocessable,
		Detail:          "Le paramètre recipient n'est pas un siret valide.",
		SourceParameter: "recipient", Reason: ReasonParamRefused}
}

// ParamInvalid: a route parameter is badly formatted or missing (422, code
// the route's: 00366 for civility parameters, 00360 for an INE…; anything
// but a platform code 00YYY becomes 00366). name is echoed in the detail
// and source.parameter only if it fits the parameter name syntax
// ([A-Za-z0-9_.[]-], ≤ 64 bytes); otherwise both are generic.
func ParamInvalid(code, name string) *Error {
	e := &Error{Status: http.StatusUnprocessableEntity, Code: paramCode(code), Title: titleUnprocessable,
		Detail: "Un paramètre n'est pas correctement formaté.", Reason: ReasonParamRefused}
	if validParamName(name) {
		e.Detail = "Le paramètre " + name + " n'est pas correctement formaté."
		e.SourceParameter = name
	}
	return e
}

// ParamRefused: a parameter the route does not take, a repeated one, or a
// person parameter on a FranceConnect route (422, code as ParamInvalid; C08,
// D07). name is echoed under the same rule as ParamInvalid.
func ParamRefused(code, name string) *Error {
	e := &Error{Status: http.StatusUnprocessableEntity, Code: paramCode(code), Title: titleUnprocessable,
		Detail: "Un paramètre n'est pas accepté par cette route ou est répété.", Reason: ReasonParamRefused}
	if validParamName(name) {
		e.Detail = "Le paramètre " + name + " n'est pas accepté par cette route ou est répété."
		e.SourceParameter = name
	}
	return e
}

// paramCode returns code when it is a platform code 00YYY, else 00366.
func paramCode(code string) string {
	if len(code) != 5 || code[0] != '0' || code[1] != '0' {
		return "00366"
	}
	for i := 2; i < 5; i++ {
		if code[i] < '0' || code[i] > '9' {
			return "00366"
		}
	}
	return code
}

// IsFranceConnectToken reports whether e refuses a FranceConnect token
// (50001–50004): v2 routes keep the errors[] shape for those.
func IsFranceConnectToken(e *Error) bool {
	return e != nil && len(e.Code) == 5 && strings.HasPrefix(e.Code, "5000") && e.Code[4] >= '1' && e.Code[4] <= '4'
}

// --- 404, 405 (Passerelle extensions: API Particulier documents no code) ---

// UnknownRoute: no route for the canonical path (404 00404, C04).
func UnknownRoute() *Error {
	return &Error{Status: http.StatusNotFound, Code: "00404", Title: "Route inconnue",
		Detail: "Aucune route ne correspond à cette adresse. Consultez la documentation d'API Particulier.",
		Reason: ReasonParamRefused}
}

// MethodNotAllowed: undeclared method (405 00405, D08). allowed lists the
// route's methods for the Allow header; values that are not upper-case
// method tokens are left out.
func MethodNotAllowed(allowed ...string) *Error {
	e := &Error{Status: http.StatusMethodNotAllowed, Code: "00405", Title: "Méthode non autorisée",
		Detail: "Cette méthode HTTP n'est pas acceptée par cette route.", Reason: ReasonParamRefused}
	var ok []string
	for _, m := range allowed {
		if validMethod(m) {
			ok = append(ok, m)
		}
	}
	e.allow = strings.Join(ok, ", ")
	return e
}

// --- 429 ---

// RateLimited: quota exceeded (429 00429, F03). retryAfter (seconds) is
// clamped to 1…86400 and sets Retry-After.
func RateLimited(retryAfter int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "00429", Title: "Trop de requêtes",
		Detail:     "Vous avez effectué trop de requêtes. Réessayez après le délai indiqué par le header Retry-After.",
		RetryAfter: min(max(retryAfter, 1), 86400), Reason: ReasonRateLimited}
}

// --- provider answers (prefix = two-digit provider code, DOMAIN.md §6) ---

// ProviderNotFound: the provider knows no such citizen (404 prefix+003,
// meta.provider). G04 has no "not found" reason; provider_error is used.
func ProviderNotFound(prefix, provider string) *Error {
	return providerErr(http.StatusNotFound, prefix, "003", provider, titleNotFound,
		"Aucune donnée correspondant à ce particulier n'a été trouvée auprès du fournisseur de données.",
		ReasonProviderError, false)
}

// ProviderError: provider answer unusable (502 prefix+999, meta.provider).
func ProviderError(prefix, provider string) *Error {
	return providerErr(http.StatusBadGateway, prefix, "999", provider, titleProviderError,
		detailProviderError, ReasonProviderError, false)
}

// FilterFailed: the provider answer could not be filtered (C06). Same
// answer as ProviderError, audit reason filter_failed.
func FilterFailed(prefix, provider string) *Error {
	e := ProviderError(prefix, provider)
	e.Reason = ReasonFilterFailed
	return e
}

// ProviderTimeout: the provider did not answer in time (504 prefix+002,
// meta.provider and meta.retry_in 10).
func ProviderTimeout(prefix, provider string) *Error {
	return providerErr(http.StatusGatewayTimeout, prefix, "002", provider, titleTimeout,
		"Le fournisseur de données n'a pas répondu dans le délai imparti. Réessayez dans quelques instants.",
		ReasonProviderTimeout, true)
}

// ProviderUnreachable: connection to the provider failed (504 prefix+001,
// meta.provider and meta.retry_in 10). G04 has no "unreachable" reason;
// provider_error is used (provider_timeout is kept for deadlines).
func ProviderUnreachable(prefix, provider string) *Error {
	return providerErr(http.StatusGatewayTimeout, prefix, "001", provider, titleUnreachable,
		"Le fournisseur de données est momentanément indisponible. Réessayez dans quelques instants.",
		ReasonProviderError, true)
}

// NetworkError: network failure before any provider could be named (504
// 00501, meta.retry_in 10, no provider).
func NetworkError() *Error {
	return &Error{Status: http.StatusGatewayTimeout, Code: "00501", Title: "Erreur de réseau",
		Detail: "Une erreur de réseau est survenue lors de l'appel au fournisseur de données. Réessayez dans quelques instants.",
		Meta:   map[string]any{"retry_in": RetryIn}, Reason: ReasonProviderError}
}

// providerErr builds a provider answer. An invalid prefix (not two digits)
// becomes "00"; an invalid provider name (see validProvider) is left out.
func providerErr(status int, prefix, suffix, provider, title, detail, reason string, retry bool) *Error {
	if len(prefix) != 2 || prefix[0] < '0' || prefix[0] > '9' || prefix[1] < '0' || prefix[1] > '9' {
		prefix = "00"
	}
	meta := map[string]any{}
	if validProvider(provider) {
		meta["provider"] = provider
	}
	if retry {
		meta["retry_in"] = RetryIn
	}
	return &Error{Status: status, Code: prefix + suffix, Title: title, Detail: detail, Meta: meta, Reason: reason}
}

// validProvider accepts provider display names as API Particulier spells
// them ("CNAF", "CNAF & MSA", "GIP-MDS"): letters, digits, space, '&',
// '-', '_', at most 32 bytes.
func validProvider(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == ' ' || c == '&' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// --- 503, 500 ---

// Unavailable: FranceConnect, JWKS, audit sink or capacity unavailable (503
// 00503, Passerelle extension, Retry-After 10). reason must be a G04
// reason (fc_unavailable, fc_bad_response, jwks_unavailable,
// audit_unavailable…); anything else is recorded as internal_error.
// G04 has no capacity reason: load shedding passes internal_error.
func Unavailable(reason string) *Error {
	if !IsReason(reason) {
		reason = ReasonInternalError
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "00503", Title: titleUnavailable,
		Detail:     "Le service est momentanément indisponible. Réessayez après le délai indiqué par le header Retry-After.",
		RetryAfter: UnavailableRetryAfter, Reason: reason}
}

// Internal: unexpected failure (500 00500, Passerelle extension).
func Internal() *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "00500", Title: "Erreur interne",
		Detail: "Une erreur interne est survenue. L'équipe technique a été notifiée.",
		Reason: ReasonInternalError}
}

// --- 400 (Passerelle extension) ---

// BadRequest: a request target that is not canonical (encoded separators,
// dot segments, absolute form) or a body on a route that takes none (400
// 00400, D06, F01).
func BadRequest() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "00400", Title: "Requête invalide",
		Detail: "L'adresse ou le corps de la requête n'est pas accepté.", Reason: ReasonParamRefused}
}

// URITooLong: the request target is over the gateway's 2 KiB limit (414
// 00414, SECURITY.md F01).
func URITooLong() *Error {
	return &Error{Status: http.StatusRequestURITooLong, Code: "00414", Title: "Requête invalide",
		Detail: "L'adresse de la requête est trop longue.", Reason: ReasonParamRefused}
}

// IdentityUnusable: the FranceConnect identity cannot be sent to the
// provider (unknown gender, unparsable birth date) (422 00366, DOMAIN.md §2
// step 8). The detail never quotes the identity.
func IdentityUnusable() *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "00366", Title: titleUnprocessable,
		Detail: "L'identité transmise par FranceConnect ne peut pas être utilisée pour interroger le fournisseur de données.",
		Reason: ReasonParamRefused}
}
