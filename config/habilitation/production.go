package habilitation

import (
	"errors"
	"fmt"
	"slices"
)

// SandboxAPITokenSHA256 is the SHA-256 of the public sandbox API token
// "sandbox_all_scopes" (deploy/sandbox/habilitations.yaml), which grants every
// scope of the catalogue. A production registry must not hold it.
const SandboxAPITokenSHA256 = "3c6b5d6a47e76d08bb44c46b0fc9f41b0abc29aea6421d272b1ec43e6eaef109"

// publicAPITokens are the SHA-256 digests of every API token published in
// this repository's registries (deploy/*/habilitations.yaml): refused in
// production like the sandbox's. TestPublicTokensRefused keeps the list
// complete.
var publicAPITokens = map[string]string{
	SandboxAPITokenSHA256: "sandbox_all_scopes",
	"4d129fd46e68e139b4cebeb5414cb483392c97ed1f42b5f501d21a8ab25e8b7d": "bench_quota_5_per_second",
}

// sandboxClientIDs are the FS client ids of the public sandbox FranceConnect
// tokens: token_introspection.aud of config/sandbox/payloads/france_connect.
var sandboxClientIDs = map[string]bool{
	"6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950": true, // every sandbox token but one
	"b5e187b8619b73f12daa2c093e8eafe2789c4017883dff8b66c4bd6eaa451930": true, // unpaired_service
}

// SandboxFranceConnectClientIDs returns, sorted, the FranceConnect FS client
// ids of the public sandbox tokens (token_introspection.aud of the cases in
// config/sandbox/payloads/france_connect). A production registry must not
// pair them. The slice is a copy.
func SandboxFranceConnectClientIDs() []string {
	out := make([]string, 0, len(sandboxClientIDs))
	for c := range sandboxClientIDs {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// CheckProduction refuses a registry fit only for the sandbox: one where a
// habilitation holds a public API token (SandboxAPITokenSHA256, or another
// token of the repository's sample registries) or
// is paired with a sandbox FranceConnect client id
// (SandboxFranceConnectClientIDs), since anyone holding the public sandbox
// credentials would then be served real data. Every offending entry is
// reported, named by its index and id; the digest and client id are not
// repeated. It suits WatchOptions.Check.
func (r *Registry) CheckProduction() error {
	if r == nil {
		return nil
	}
	var errs []error
	for i, h := range r.list {
		where := entryName(i, h)
		for k, d := range h.APITokenSHA256 {
			if _, public := publicAPITokens[d]; public {
				errs = append(errs, fmt.Errorf("%s: api_token_sha256[%d]: a public sandbox API token, refused in production", where, k))
			}
		}
		for k, c := range h.FranceConnectClientIDs {
			if sandboxClientIDs[c] {
				errs = append(errs, fmt.Errorf("%s: france_connect_client_ids[%d]: a sandbox FranceConnect client id, refused in production", where, k))
			}
		}
	}
	return errors.Join(errs...)
}
