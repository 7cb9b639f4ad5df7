// Package habilitation reads the registry of DataPass habilitations that
// Passerelle accepts, pairs each FranceConnect service provider (FS) client id
// and each API bearer token with one habilitation, and says which calling
// modalities each habilitation opens.
//
// # File format
//
// The registry is one YAML document:
//
//	habilitations:
//	  - id: "12345"                 # DataPass id: required, unique, 1–64 chars [A-Za-z0-9._-]
//	    datapass_id: "48213"        # optional: the DataPass request (demande) number whose
//	                                #   webhooks and resync govern this habilitation (see Live);
//	                                #   unique, 1–19 digits
//	    label: "Mairie de Montreuil — portail famille"   # required, ≤ 200 chars
//	    siret: "21930048000015"     # required: the organisation's SIRET (14 ASCII digits, Luhn;
//	                                #   La Poste, SIREN 356000000: digit sum multiple of 5)
//	    modalities:                 # required, non-empty, no repeats: the calling modalities
//	      - france_connect          #   DataPass granted, among france_connect (FranceConnect
//	      - identite                #   routes), identite (civil status with an API token) and
//	                                #   identifiant (provider identifier with an API token)
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
//	    client_certificates:        # optional: SHA-256 fingerprints of the callers' TLS client
//	      - "AB:CD:…"               #   certificates (64 hex digits, bare or colon-separated, as
//	                                #   openssl x509 -noout -fingerprint -sha256 prints them); when
//	                                #   set, every call of the habilitation (its FranceConnect
//	                                #   tokens, its API tokens) must present one of them over TLS
//
// A modality is opened by [Habilitation.Allows], never by the mere presence of
// a credential: a habilitation with api_token_sha256 but neither identite nor
// identifiant is valid (its tokens still introspect, they open no lookup
// route), and so is one listing identite or identifiant without any token
// yet.
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
// revoked and valid_from ≤ t < valid_until.
//
// # Reloads
//
// The [Watcher] reloads the file when it changes. A file that does not parse,
// or that the caller's check refuses ([Registry.CheckProduction] in
// production), is not applied, but what it removes or revokes still is: the
// registry in force loses every habilitation whose id the new file no longer
// lists, every habilitation that the new file marks revoked becomes revoked,
// and client certificate bindings narrow to what both files bind (one the
// new file binds to no readable certificate is revoked). A refused file
// never widens access. A deleted file removes every
// habilitation; any other read error keeps the registry in force.
// [Watcher.Status] tells which case is in force.
//
// The refused file is read leniently, item by item of its habilitations list:
// an item's id and revoked flag are taken whatever its other errors; an item
// whose id cannot be read names no habilitation (so the one it meant is
// removed); revoked counts as true when it reads true, yes, on or y, in any
// case, quoted or not. A file that is not YAML, or has no readable
// habilitations list, narrows nothing. Write the file atomically (write, then
// rename): a half-written file may drop the entries not yet written until
// the next poll reads it whole.
package habilitation

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// MaxFileSize bounds the registry file.
const MaxFileSize = 16 << 20

// The calling modalities a habilitation may grant (field modalities).
const (
	// ModalityFranceConnect: FranceConnect routes, the caller presenting a
	// FranceConnect access token of a paired FS client id.
	ModalityFranceConnect = "france_connect"
	// ModalityIdentite: identité pivot routes, an API token and the citizen's
	// civil status.
	ModalityIdentite = "identite"
	// ModalityIdentifiant: identifier routes (ine, identifiant), an API token
	// and a provider identifier.
	ModalityIdentifiant = "identifiant"
)

// modalities lists the accepted values of the modalities field, in the order
// error messages name them.
var modalities = []string{ModalityFranceConnect, ModalityIdentite, ModalityIdentifiant}

// Habilitation is one DataPass habilitation. Values returned by a Registry are
// shared: callers must not modify them.
type Habilitation struct {
	ID string
	// DataPassID is the DataPass request number bound to this habilitation
	// (field datapass_id): DataPass's live word on it (webhooks, resync)
	// overlays the file (Registry.Overlay). Empty: the file alone governs.
	DataPassID string
	Label      string
	SIRET      string
	// Modalities are the calling modalities DataPass granted (Modality*
	// constants), non-empty, without repeats; see Allows.
	Modalities             []string
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
	// ClientCertificates are the fingerprints of the TLS client
	// certificates the habilitation's callers present (SECURITY.md C09):
	// when any is declared, a call without one of them is refused, so a
	// token that leaked is of no use to another party. Empty: no binding.
	ClientCertificates []CertFingerprint

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

// Allows reports whether DataPass granted h the calling modality m
// (ModalityFranceConnect, ModalityIdentite or ModalityIdentifiant), by exact
// comparison. A credential alone (a paired client id, an API token) opens no
// modality that Allows does not report. It does not check ActiveAt.
func (h *Habilitation) Allows(m string) bool {
	if h == nil {
		return false
	}
	for _, x := range h.Modalities {
		if x == m {
			return true
		}
	}
	return false
}
