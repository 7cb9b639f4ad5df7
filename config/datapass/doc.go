// Package datapass keeps Passerelle's habilitations in step with DataPass,
// the State's service that grants access to API Particulier: its webhooks
// (approve, revoke, archive, transfer… of an authorization request) and its
// API (resync) tell which habilitation is active and with which scopes.
//
// The pipeline, in the order a webhook goes through it ([Processor]):
//
//  1. Signature, before anything else: X-Hub-Signature-256 is "sha256="
//     and the lowercase hex HMAC-SHA256 of the raw body under the webhook
//     secret, compared in constant time; the current and the previous secret
//     are accepted during a rotation ([Verify]).
//  2. Parsing ([Parse]): only derived fields are kept (event, fired_at,
//     request number, organisation SIRET, the authorizations' ids, states,
//     definitions, modalities and scopes); the body, which holds
//     applicants' names and contacts, is never logged nor stored; its
//     SHA-256 names it in the audit trail and in the idempotence key.
//  3. Filtering: a DataPass webhook receives every API Particulier request of
//     every organisation; a request is kept when its SIRET is one of the
//     habilitations file's (or listed), or when it is bound to a
//     habilitation (a transfer away then revokes it).
//  4. Effect ([Derive], [Merge]): what the authorizations grant (active,
//     unrevoked, API Particulier, FranceConnect modality; scopes ∩ the
//     catalogue's), merged with the request's record under three rules: an
//     event older (fired_at) than the record is ignored; on equal times the
//     more restrictive wins; only an approve (or a resync) may widen, every
//     other event can only narrow. A replayed old approve never undoes a
//     revoke.
//  5. Storage and propagation ([Store]): [Memory] on one instance; [Redis]
//     writes the record in one transaction with its publication, and every
//     instance applies it on receipt, reloading the whole state after each
//     (re)subscription since publish/subscribe loses messages. Two
//     different copies of one record at the same time and revision (two
//     instances that each changed it while cut off from each other) are
//     merged the same way, the more restrictive winning, and written back.
//
// The records overlay the habilitations file through
// habilitation.Overlaid: the file keeps the bindings (datapass_id) and
// everything DataPass does not carry (FranceConnect client ids, tokens,
// quotas, dates), and a habilitation it revokes stays revoked.
package datapass
