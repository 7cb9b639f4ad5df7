package habilitation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Registry is an immutable set of habilitations, safe for concurrent use.
type Registry struct {
	list       []*Habilitation
	byClient   map[string]*Habilitation
	byID       map[string]*Habilitation
	byAPIToken map[[sha256.Size]byte]*Habilitation
	byDataPass map[string]*Habilitation
}

// newRegistry indexes list, whose ids, client ids and token digests are
// valid and unique, and whose limiter keys are set.
func newRegistry(list []*Habilitation) *Registry {
	r := &Registry{
		list:       list,
		byClient:   make(map[string]*Habilitation),
		byID:       make(map[string]*Habilitation, len(list)),
		byAPIToken: make(map[[sha256.Size]byte]*Habilitation),
		byDataPass: make(map[string]*Habilitation),
	}
	for _, h := range list {
		r.byID[h.ID] = h
		if h.DataPassID != "" {
			r.byDataPass[h.DataPassID] = h
		}
		for _, c := range h.FranceConnectClientIDs {
			r.byClient[c] = h
		}
		for _, d := range h.APITokenSHA256 {
			var sum [sha256.Size]byte
			_, _ = hex.Decode(sum[:], []byte(d)) // validated by parseEntry
			r.byAPIToken[sum] = h
		}
	}
	return r
}

// ByAPIToken returns the habilitation holding an API bearer token, found
// by the token's SHA-256 (the token itself is never stored). The lookup is
// by digest, so its timing says nothing about the token. It checks neither
// ActiveAt nor Allows.
func (r *Registry) ByAPIToken(token string) (*Habilitation, bool) {
	if r == nil || len(r.byAPIToken) == 0 {
		return nil, false
	}
	h, ok := r.byAPIToken[sha256.Sum256([]byte(token))]
	return h, ok
}

// APITokenPrefix starts every API token that `passerelle mint-api-token`
// makes: "pa_" then 32 random bytes in base64url (43 characters).
const APITokenPrefix = "pa_"

// HasAPITokenShape reports whether a bearer may be an API token, known to
// this registry or not (revoked, rotated, another deployment's), or one
// truncated, padded or lengthened: it starts with APITokenPrefix and is not
// 43 characters long. FranceConnect's opaque access tokens are 43
// characters (oidc-provider's default), and one in 262 144 of them starts
// with "pa_": those still go to FranceConnect.
func HasAPITokenShape(token string) bool {
	return strings.HasPrefix(token, APITokenPrefix) && len(token) != fcAccessTokenLen
}

// fcAccessTokenLen is the length of FranceConnect's access tokens.
const fcAccessTokenLen = 43

// ByClientID returns the habilitation paired with a FranceConnect FS client id
// (token_introspection.aud), by exact comparison. It checks neither ActiveAt
// nor Allows.
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

// ByDataPassID returns the habilitation bound to a DataPass request number
// (field datapass_id).
func (r *Registry) ByDataPassID(id string) (*Habilitation, bool) {
	if r == nil {
		return nil, false
	}
	h, ok := r.byDataPass[id]
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
