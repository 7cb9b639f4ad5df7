// Package handoff hands the citizen's identity and data to the legacy app
// behind the front, on the requests proxied to it: a signed assertion
// header (a short-lived ES256 JWT, like Pomerium's X-Pomerium-Jwt-Assertion,
// verified with the keys of the JWKS the front serves) and, for apps that
// cannot verify a JWT, plain ASCII-safe headers with the same content.
//
// Headers (every one of them, and anything else starting with
// X-Passerelle-, is deleted from the client's request first: see Strip):
//
//	X-Passerelle-Assertion            the JWT (claims: see Claims)
//	X-Passerelle-Sub                  FranceConnect's sub (pairwise, per service)
//	X-Passerelle-Acr                  eidas1…
//	X-Passerelle-Family-Name-B64      birth name, UTF-8, base64url without padding
//	X-Passerelle-Given-Names-B64      given names, space-separated, UTF-8, base64url
//	X-Passerelle-Birthdate            YYYY-MM-DD as FranceConnect sends it
//	X-Passerelle-Birthdate-Precision  day | month | year: what of it is known
//	                                  (FranceConnect presumes an unknown day or month as 01)
//	X-Passerelle-Gender               male | female
//	X-Passerelle-Birthplace           COG commune code ("" when born abroad)
//	X-Passerelle-Birthcountry         COG country code (99100: France)
//	X-Passerelle-Data-<Name>-B64      one dataset: its JSON (see Dataset), base64url;
//	                                  Name with "-" for "_" (see DataHeader)
//	X-Passerelle-Reconciliation-B64   Cas 2: the reconciliation result, JSON, base64url
//	X-Passerelle-External-Id          the app's reference the login started with (see ValidExternalID)
//
// Names are base64url-encoded because Tomcat, PHP and .NET read header bytes
// as Latin-1: a raw UTF-8 "Joëlle" would arrive broken (FRONT.md §3).
package handoff

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
)

// Header names.
const (
	Prefix                   = "X-Passerelle-"
	HeaderAssertion          = "X-Passerelle-Assertion"
	HeaderSub                = "X-Passerelle-Sub"
	HeaderACR                = "X-Passerelle-Acr"
	HeaderFamilyName         = "X-Passerelle-Family-Name-B64"
	HeaderGivenNames         = "X-Passerelle-Given-Names-B64"
	HeaderBirthdate          = "X-Passerelle-Birthdate"
	HeaderBirthdatePrecision = "X-Passerelle-Birthdate-Precision"
	HeaderGender             = "X-Passerelle-Gender"
	HeaderBirthplace         = "X-Passerelle-Birthplace"
	HeaderBirthcountry       = "X-Passerelle-Birthcountry"
	HeaderReconciliation     = "X-Passerelle-Reconciliation-B64"
	HeaderExternalID         = "X-Passerelle-External-Id"
)

// maxExternalID bounds an external id.
const maxExternalID = 100

// ValidExternalID reports whether s may be an external id: the app's own
// reference of the procedure a login serves (a form, a dossier), given
// when the login starts and handed back with the identity. 1 to 100
// letters, digits and "._:-": an app's identifier, never free text. It
// travels through the citizen's browser: the app checks it against its
// own session, as it does return_to.
func ValidExternalID(s string) bool {
	if s == "" || len(s) > maxExternalID {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// DataHeader is the header of one dataset: X-Passerelle-Data-<Name>-B64,
// with each "_" of the name a "-" (quotient_familial:
// X-Passerelle-Data-Quotient-Familial-B64): Caddy, like nginx, drops
// request headers whose names hold an underscore.
func DataHeader(name string) string {
	return http.CanonicalHeaderKey(Prefix + "Data-" + strings.ReplaceAll(name, "_", "-") + "-B64")
}

// Identity is the citizen's identity pivot as handed to the app.
type Identity struct {
	FamilyName string   `json:"family_name"`
	GivenName  string   `json:"given_name"`
	GivenNames []string `json:"given_names"`
	Birthdate  string   `json:"birthdate"`
	// BirthdatePrecision is day, month or year.
	BirthdatePrecision string `json:"birthdate_precision"`
	Gender             string `json:"gender"`
	Birthplace         string `json:"birthplace"`
	Birthcountry       string `json:"birthcountry"`
}

// Dataset is one API Particulier answer fetched at login: status "ok" with
// the fields the scopes released, or "error" with API Particulier's error.
type Dataset struct {
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data,omitempty"`
	Error  *APIError       `json:"error,omitempty"`
}

// APIError is API Particulier's error: code, title and detail.
type APIError struct {
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// Dataset statuses.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// CodeTooLarge is the code of TooLarge (a Passerelle extension, like
// 00503).
const CodeTooLarge = "00413"

// TooLarge is the dataset handed off in place of one whose data would take
// the hand-off over the front's max_handoff_bytes: the app learns which
// dataset it misses and why, rather than getting a request its server
// refuses (Apache: 8 190 bytes a header; Tomcat: 8 KB of headers in all).
func TooLarge() Dataset {
	return Dataset{Status: StatusError, Error: &APIError{Code: CodeTooLarge, Title: "Données trop volumineuses",
		Detail: "Ces données dépassent la taille que le service peut recevoir : elles ne lui sont pas transmises."}}
}

// Bytes is what h adds to a request: the length of each header's name and
// values, with ": " and CRLF as HTTP/1.1 writes them.
func Bytes(h http.Header) int {
	n := 0
	for name, vals := range h {
		for _, v := range vals {
			n += len(name) + len(v) + 4
		}
	}
	return n
}

// Claims are the assertion's claims: iss (the front's site), aud (the app),
// iat, nbf, exp (a few minutes), jti (unique per signature), sub and acr
// from FranceConnect, the moment (login for Cas 1, transmit for Cas 2), the
// identity, each dataset, the reconciliation in Cas 2, and the app's
// external id when the login started with one.
type Claims struct {
	Issuer         string             `json:"iss"`
	Audience       string             `json:"aud"`
	IssuedAt       int64              `json:"iat"`
	NotBefore      int64              `json:"nbf"`
	Expiry         int64              `json:"exp"`
	ID             string             `json:"jti"`
	Subject        string             `json:"sub"`
	ACR            string             `json:"acr"`
	Moment         string             `json:"moment"`
	Identity       Identity           `json:"identity"`
	Datasets       map[string]Dataset `json:"datasets,omitempty"`
	Reconciliation *reconcile.Result  `json:"reconciliation,omitempty"`
	ExternalID     string             `json:"external_id,omitempty"`
}

// Moments of a hand-off.
const (
	MomentLogin    = "login"    // Cas 1: on every request of the session
	MomentTransmit = "transmit" // Cas 2: once, on the return to the app
)

// Signer signs assertions with the gateway's ES256 key.
type Signer struct {
	signer jose.Signer
	jwks   []byte
}

// GenerateKey returns a new P-256 signing key with its thumbprint as kid.
func GenerateKey() (jose.JSONWebKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, errors.New("handoff: generate key")
	}
	return jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256), Use: "sig"}, nil
}

// NewSigner uses an EC P-256 private key (ES256). A missing kid becomes the
// key's RFC 7638 thumbprint.
func NewSigner(key jose.JSONWebKey) (*Signer, error) {
	priv, ok := key.Key.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("handoff: the assertion key must be an EC P-256 private key (ES256)")
	}
	key.Algorithm, key.Use = string(jose.ES256), "sig"
	if key.KeyID == "" {
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, errors.New("handoff: key thumbprint")
		}
		key.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, errors.New("handoff: signer")
	}
	pub := key.Public()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, errors.New("handoff: jwks")
	}
	return &Signer{signer: s, jwks: jwks}, nil
}

// JWKS is the public key set apps verify assertions with.
func (s *Signer) JWKS() []byte { return s.jwks }

// Sign returns the compact JWT of c, with a fresh jti and the times set
// from now and ttl.
func (s *Signer) Sign(c Claims, now time.Time, ttl time.Duration) (string, error) {
	c.IssuedAt, c.NotBefore, c.Expiry = now.Unix(), now.Add(-5*time.Second).Unix(), now.Add(ttl).Unix()
	var id [16]byte
	_, _ = rand.Read(id[:])
	c.ID = base64.RawURLEncoding.EncodeToString(id[:])
	tok, err := jwt.Signed(s.signer).Claims(c).Serialize()
	if err != nil {
		return "", errors.New("handoff: signing the assertion")
	}
	return tok, nil
}

// Precision returns day, month or year for a FranceConnect birth date and
// its idp_birthdate (catalogue.KnownBirthdate's rules).
func Precision(known string) string {
	switch len(known) {
	case len("2006"):
		return "year"
	case len("2006-01"):
		return "month"
	}
	return "day"
}

// Strip deletes from a client's request every header the front may set:
// anything starting with X-Passerelle- and the extra names, compared
// folded: case aside, and any byte that is not a letter or a digit read as
// "-" (a PHP or CGI app reads X_Passerelle_Sub, even X.Passerelle.Sub, as
// X-Passerelle-Sub: GHSA-f59h-q822-g45g; Caddy drops names with "_" or "."
// unless expected_underscore_headers or expected_dot_headers keep them). A
// citizen must never be able to forge them, whether or not the front sets
// them on this request (a header left in place when the front has nothing
// to say is the forward_auth spoofing of GHSA-7r4p-vjf4-gxv4).
//
// Those names also leave the Connection field: reverse_proxy deletes every
// header a request's Connection names (hop-by-hop, RFC 9110 §7.6.1) after
// the front has set its own, so a citizen listing one there would choose
// which of them the app gets (the reconciliation verdict dropped, the
// identity kept).
func Strip(h http.Header, extra []string) {
	for name := range h {
		if stripped(name, extra) {
			delete(h, name)
		}
	}
	conn, ok := h["Connection"]
	if !ok {
		return
	}
	var kept []string
	for _, v := range conn {
		var tokens []string
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !stripped(t, extra) {
				tokens = append(tokens, t)
			}
		}
		if len(tokens) > 0 {
			kept = append(kept, strings.Join(tokens, ", "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
	} else {
		h["Connection"] = kept
	}
}

// stripped reports whether Strip removes a header name.
func stripped(name string, extra []string) bool {
	return foldedPrefix(name, Prefix) || slices.ContainsFunc(extra, func(e string) bool { return len(e) == len(name) && foldedPrefix(name, e) })
}

// foldedPrefix reports whether name starts with prefix, both folded.
func foldedPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		if fold(name[i]) != fold(prefix[i]) {
			return false
		}
	}
	return true
}

// fold lower-cases an ASCII letter and reads any byte that is not a letter
// or a digit as "-", as CGI gateways name their variables.
func fold(b byte) byte {
	switch {
	case 'A' <= b && b <= 'Z':
		return b + 'a' - 'A'
	case 'a' <= b && b <= 'z', '0' <= b && b <= '9':
		return b
	}
	return '-'
}

// SetHeaders sets the plain headers of c (not the assertion) on h.
func SetHeaders(h http.Header, c *Claims) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	id := &c.Identity
	h.Set(HeaderSub, ascii(c.Subject))
	h.Set(HeaderACR, ascii(c.ACR))
	h.Set(HeaderFamilyName, b64(id.FamilyName))
	h.Set(HeaderGivenNames, b64(strings.Join(id.GivenNames, " ")))
	h.Set(HeaderBirthdate, ascii(id.Birthdate))
	h.Set(HeaderBirthdatePrecision, id.BirthdatePrecision)
	h.Set(HeaderGender, ascii(id.Gender))
	h.Set(HeaderBirthplace, ascii(id.Birthplace))
	h.Set(HeaderBirthcountry, ascii(id.Birthcountry))
	for name, d := range c.Datasets {
		if b, err := json.Marshal(d); err == nil {
			h.Set(DataHeader(name), base64.RawURLEncoding.EncodeToString(b))
		}
	}
	if c.Reconciliation != nil {
		if b, err := json.Marshal(c.Reconciliation); err == nil {
			h.Set(HeaderReconciliation, base64.RawURLEncoding.EncodeToString(b))
		}
	}
	if ValidExternalID(c.ExternalID) {
		h.Set(HeaderExternalID, c.ExternalID)
	}
}

// ascii keeps printable ASCII only: codes and dates from FranceConnect are
// ASCII; anything else is dropped rather than sent as raw bytes.
func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
