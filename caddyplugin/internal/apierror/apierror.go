// Package apierror writes the error answers callers see, in API
// Particulier's format (DOMAIN.md §6, SECURITY.md §1.3, G04, G12).
//
// v3/v4 routes answer
//
//	{"errors":[{"code":"50002","title":"…","detail":"…","source":null,"meta":{}}]}
//
// and v2 routes {"error":"…","reason":"…","message":"…"} (WriteV2). Every
// answer carries Content-Type: application/json; charset=utf-8,
// Cache-Control: no-store and X-Content-Type-Options: nosniff.
//
// Bodies are built from the fixed texts of this package only: no token,
// claim, provider body, host name or Go error text ever reaches them. The
// fine-grained cause travels in Error.Reason, for the audit record, and is
// never sent.
package apierror

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Reasons of the G04 closed list, for the audit record.
const (
	ReasonTokenMissing         = "token_missing"
	ReasonTokenMalformed       = "token_malformed"
	ReasonTokenInactive        = "token_inactive"
	ReasonTokenExpired         = "token_expired"
	ReasonFCBadResponse        = "fc_bad_response"
	ReasonFCUnavailable        = "fc_unavailable"
	ReasonJWKSUnavailable      = "jwks_unavailable"
	ReasonACRTooLow            = "acr_too_low"
	ReasonScopeDenied          = "scope_denied"
	ReasonHabilitationUnknown  = "habilitation_unknown"
	ReasonHabilitationInactive = "habilitation_inactive"
	ReasonRecipientMismatch    = "recipient_mismatch"
	ReasonParamRefused         = "param_refused"
	ReasonRateLimited          = "rate_limited"
	ReasonProviderError        = "provider_error"
	ReasonProviderTimeout      = "provider_timeout"
	ReasonFilterFailed         = "filter_failed"
	ReasonAuditUnavailable     = "audit_unavailable"
	ReasonInternalError        = "internal_error"
	// ReasonModalityDenied: the habilitation was not granted the route's
	// calling modality (france_connect, identite, identifiant).
	ReasonModalityDenied = "modality_denied"
	// ReasonClientCertificate: the habilitation declares client
	// certificates and the caller presented none of them (C09).
	ReasonClientCertificate = "client_certificate_mismatch"
)

var reasons = map[string]bool{
	ReasonTokenMissing: true, ReasonTokenMalformed: true, ReasonTokenInactive: true,
	ReasonTokenExpired: true, ReasonFCBadResponse: true, ReasonFCUnavailable: true,
	ReasonJWKSUnavailable: true, ReasonACRTooLow: true, ReasonScopeDenied: true,
	ReasonHabilitationUnknown: true, ReasonHabilitationInactive: true,
	ReasonRecipientMismatch: true, ReasonParamRefused: true, ReasonRateLimited: true,
	ReasonProviderError: true, ReasonProviderTimeout: true, ReasonFilterFailed: true,
	ReasonAuditUnavailable: true, ReasonInternalError: true, ReasonModalityDenied: true,
	ReasonClientCertificate: true,
}

// IsReason reports whether s belongs to the G04 closed list.
func IsReason(s string) bool { return reasons[s] }

// Error is one caller-facing error answer.
type Error struct {
	Status int    // HTTP status, 400–599
	Code   string // five digits, XXYYY (XX = provider prefix, 00 = platform)
	Title  string
	Detail string
	// SourceParameter names the faulty query parameter; "" sends
	// "source": null.
	SourceParameter string
	// Meta is sent as "meta" ({} when nil): "provider", "retry_in".
	Meta map[string]any
	// RetryAfter, in seconds, sets the Retry-After header when > 0.
	RetryAfter int
	// Reason is the G04 closed-list reason for the audit record. Never sent.
	Reason string

	allow string // Allow header of a 405, validated by MethodNotAllowed
}

// Error returns "apierror: <code> <reason>". It is PII-free by construction:
// code and reason come from fixed lists.
func (e *Error) Error() string {
	if e.Reason == "" {
		return "apierror: " + e.Code
	}
	return "apierror: " + e.Code + " " + e.Reason
}

// valid reports whether e can be sent as is. Anything else is answered
// with Internal(): a malformed error never leaks half-built content.
func (e *Error) valid() bool {
	if e == nil || e.Status < 400 || e.Status > 599 || len(e.Code) != 5 || e.Title == "" || e.Detail == "" {
		return false
	}
	for i := 0; i < len(e.Code); i++ {
		if e.Code[i] < '0' || e.Code[i] > '9' {
			return false
		}
	}
	return e.SourceParameter == "" || validParamName(e.SourceParameter)
}

type wireSource struct {
	Parameter string `json:"parameter"`
}

type wireError struct {
	Code   string         `json:"code"`
	Title  string         `json:"title"`
	Detail string         `json:"detail"`
	Source *wireSource    `json:"source"`
	Meta   map[string]any `json:"meta"`
}

type wireBody struct {
	Errors [1]wireError `json:"errors"`
}

type wireV2 struct {
	Error   string `json:"error"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// internalBody is sent if encoding ever fails; it needs no encoder.
const internalBody = `{"errors":[{"code":"00500","title":"Erreur interne","detail":"Une erreur interne est survenue. L'équipe technique a été notifiée.","source":null,"meta":{}}]}`

// Write sends e in the v3/v4 shape. A nil or malformed e is sent as
// Internal(). Write must be the first write on w; it resets the
// representation headers a previous handler may have set.
func Write(w http.ResponseWriter, e *Error) {
	if !e.valid() {
		e = Internal()
	}
	we := wireError{Code: e.Code, Title: e.Title, Detail: e.Detail, Meta: e.Meta}
	if e.SourceParameter != "" {
		we.Source = &wireSource{Parameter: e.SourceParameter}
	}
	if we.Meta == nil {
		we.Meta = map[string]any{}
	}
	body, err := marshal(wireBody{Errors: [1]wireError{we}})
	if err != nil {
		e, body = Internal(), []byte(internalBody)
	}
	send(w, e, e.Status, body)
}

// WriteV2 sends e in the legacy v2 shape {"error","reason","message"},
// mapping the status to the v2 error keys: 401 and 403 → 401
// access_denied (v2 answers insufficient privileges with 401); 400 and
// 422 → 400 bad_request; 404 → not_found; 502 and 503 → 503
// provider_unknown_error; 504 → timeout_error; 405 → method_not_allowed;
// 429 → too_many_requests; anything else → 500 internal_error. reason and
// message both carry the French detail.
func WriteV2(w http.ResponseWriter, e *Error) {
	if !e.valid() {
		e = Internal()
	}
	status, key := v2Status(e.Status)
	body, err := marshal(wireV2{Error: key, Reason: e.Detail, Message: e.Detail})
	if err != nil {
		e = Internal()
		status, key = v2Status(e.Status)
		body, _ = marshal(wireV2{Error: key, Reason: e.Detail, Message: e.Detail})
	}
	send(w, e, status, body)
}

// marshal encodes v without HTML escaping ("CNAF & MSA" stays readable;
// the Content-Type and nosniff make the body inert in a browser).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func v2Status(status int) (int, string) {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return http.StatusUnauthorized, "access_denied"
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return http.StatusBadRequest, "bad_request"
	case http.StatusNotFound:
		return http.StatusNotFound, "not_found"
	case http.StatusMethodNotAllowed:
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case http.StatusTooManyRequests:
		return http.StatusTooManyRequests, "too_many_requests"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return http.StatusServiceUnavailable, "provider_unknown_error"
	case http.StatusGatewayTimeout:
		return http.StatusGatewayTimeout, "timeout_error"
	default:
		return http.StatusInternalServerError, "internal_error"
	}
}

// Representation headers of an earlier, abandoned answer.
var staleHeaders = []string{
	"Content-Encoding", "Content-Range", "Content-Disposition", "Content-Language",
	"Content-Location", "ETag", "Last-Modified", "Expires",
	"Www-Authenticate", "Retry-After", "Allow",
}

func send(w http.ResponseWriter, e *Error, status int, body []byte) {
	h := w.Header()
	for _, k := range staleHeaders {
		h.Del(k)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusUnauthorized {
		// RFC 6750 §3.1: a request without credential gets a bare
		// challenge; any other 401 names invalid_token (SECURITY.md §1.3).
		if e.Reason == ReasonTokenMissing {
			h.Set("WWW-Authenticate", "Bearer")
		} else {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if status == http.StatusMethodNotAllowed && e.allow != "" {
		h.Set("Allow", e.allow)
	}
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client is gone; nothing to do
}

// validParamName accepts query parameter names as the catalogue spells
// them (nomNaissance, prenoms[], codesBcnDepartements[]…), at most 64
// bytes. Names outside it are never echoed (D07 names come from callers).
func validParamName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// validMethod accepts an RFC 9110 method token of upper-case letters.
func validMethod(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}
