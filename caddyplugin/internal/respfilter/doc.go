// Package respfilter rebuilds a provider success answer keeping only the JSON
// paths released by the effective scopes (SECURITY.md C05, C06; DOMAIN.md §5).
//
// # Path syntax
//
// A path is a dot-separated list of object keys from the root of the answer.
// "[]" after a key means "each element of that array":
//
//	data.quotient_familial
//	data.admissions[].est_inscrit
//	data.statut_actuel.organisme_accueil
//	meta.identity_matching
//
// Keys are 1 to 128 bytes of [A-Za-z0-9_-]. The first segment must be "data",
// "links" or "meta" (the only top-level members of an answer) and takes no
// "[]". "[]" may repeat ("x[][]", arrays of arrays) and may end a path
// ("data.x[]" releases each element of x, only when x is an array). A path
// has at most 32 segments. Releasing a path releases its whole subtree; a
// path under an already released one is redundant and ignored.
//
// # Output
//
// The output is the object {"data":{…},"links":{…},"meta":{…}} rebuilt from
// the parsed input:
//
//   - Object key order of the input is kept, including at the top level;
//     "links" and "meta" are appended as {} when the input lacks them.
//   - Unknown or new provider members are dropped, at any depth.
//   - A released value is copied as its raw input bytes (no re-encoding),
//     so numbers and strings keep their exact provider spelling.
//   - An object on the way to a released path is kept with only its
//     released members, even when none is present: with
//     data.statut_actuel.organisme_accueil released, an input
//     "statut_actuel":{"contrat_trouve":true} becomes "statut_actuel":{}.
//     A parent absent from the input stays absent.
//   - An array on the way to a released path ("x[].y") is kept with each
//     element filtered; an element whose shape does not fit (a non-object
//     where ".y" follows, a non-array where "[]" follows, null…) is dropped.
//   - Shape mismatch is not an error: when a path's parent exists but the
//     value does not have the shape the path needs (x.y on a non-object,
//     x[] on a non-array), the member is dropped. A provider adding nesting
//     or turning a value into null must not leak data nor break the route;
//     the catalogue tests catch real mismatches. A fully released path
//     copies whatever value is there, null included.
//   - "links" or "meta" that are not objects become {}.
//   - With Options.Leaves, a released path releases a leaf only (a
//     string, number, boolean, null, or an array of those): an object
//     there is dropped as a shape mismatch ("links" or "meta" released
//     whole become {}, "data" {}), and so is an object or an array inside
//     an array there, whose scalars are kept. A catalogue whose paths all
//     name leaves then passes nothing a provider puts inside a structure
//     where a leaf was.
//
// # Answers without envelope
//
// API Particulier's legacy v2 routes answer the provider's fields at the
// top level ({"quotientFamilial": …, "allocataires": […]}). Paths compiled
// with CompileBare start at any top-level member and Filter returns the
// top-level object with only the released members (no "data" required,
// nothing appended); every other rule above and below applies.
//
// # Refusals (C06)
//
// Filter refuses, with an error wrapping ErrUnfilterable, a body that is
// over Options.MaxBytes, not valid JSON (trailing bytes or a second value
// included), not an object at the top level, with an "error" or "errors"
// member at the top level that no path releases (an error answer sent with
// status 200 must not become an empty success), without a "data" object
// (enveloped answers only), nested
// deeper than Options.MaxDepth (the top-level object is depth 1), holding a
// duplicate object member name at any depth (names compared after unescaping,
// dropped subtrees included) or invalid UTF-8 anywhere. Parsing uses
// go-json-experiment's jsontext.Decoder, whose defaults reject duplicate names
// and invalid UTF-8. Error messages are fixed strings: they never quote body
// bytes, member names or offsets. On error Filter returns dst unchanged, so a
// caller that writes nothing before Filter succeeded leaks nothing.
package respfilter
