package fcop

import "strings"

// Identity is a test citizen as FranceConnect sends it: the RNIPP identity
// pivot (DOMAIN.md §2), with idp_birthdate when the identity provider knew
// only a year or a year and month (FranceConnect then presumes day or month
// 01 in birthdate).
type Identity struct {
	// Key names the identity on the stand-in's page: the button of the
	// identity has the id "identity-<Key>".
	Key string
	// Label is what the page shows next to the button (no other use).
	Label          string
	GivenName      string
	GivenNameArray []string
	FamilyName     string
	Gender         string
	Birthdate      string
	IdpBirthdate   string
	Birthplace     string
	Birthcountry   string
}

// DefaultIdentities are the stand-in's test citizens, taken from
// FranceConnect's own test identities (its mock identity provider) and from
// the sandbox's FranceConnect cases, so that the data providers of the
// sandbox know most of them:
//
//	angela    DUBOIS Angela Claire Louise, 1962-08-24, Paris 7e (FranceConnect's "test")
//	joelle    Dubinôre Joëlle Françoise: accents, and a name sent decomposed (NFD)
//	maelle    Le Goff Maëlle: a presumed birth date (1987-11, day unknown)
//	koffi     N’Guessan Koffi Ange: born abroad (no birthplace), birth year only
//	anne-laure TROIS-DUPRE Anne-Laure: hyphenated names
//	sans-prenom MARTIN, no given name
//
// Key is the first given name folded to ASCII, lower case ("identity-angela").
func DefaultIdentities() []Identity {
	return []Identity{
		{
			Key: "angela", Label: "Angela Claire Louise DUBOIS — née le 24/08/1962 à Paris 7e",
			GivenName: "Angela Claire Louise", GivenNameArray: []string{"Angela", "Claire", "Louise"},
			FamilyName: "DUBOIS", Gender: "female", Birthdate: "1962-08-24",
			Birthplace: "75107", Birthcountry: "99100",
		},
		{
			Key: "joelle", Label: "Joëlle Françoise Dubinôre — née le 15/08/1992 à Paris 17e",
			// Decomposed accents (U+0302, U+0308, U+0327), as some identity
			// providers send them.
			GivenName: "Joe\u0308lle Franc\u0327oise", GivenNameArray: []string{"Joe\u0308lle", "Franc\u0327oise"},
			FamilyName: "Dubino\u0302re", Gender: "female", Birthdate: "1992-08-15",
			Birthplace: "75117", Birthcountry: "99100",
		},
		{
			Key: "maelle", Label: "Maëlle Le Goff — née en novembre 1987 à Brest (jour inconnu)",
			GivenName: "Maëlle", GivenNameArray: []string{"Maëlle"},
			FamilyName: "Le Goff", Gender: "female", Birthdate: "1987-11-01", IdpBirthdate: "1987-11",
			Birthplace: "29019", Birthcountry: "99100",
		},
		{
			Key: "koffi", Label: "Koffi Ange N’Guessan — né en 1979 en Côte d’Ivoire",
			GivenName: "Koffi Ange", GivenNameArray: []string{"Koffi", "Ange"},
			FamilyName: "N’Guessan", Gender: "male", Birthdate: "1979-01-01", IdpBirthdate: "1979",
			Birthplace: "", Birthcountry: "99326",
		},
		{
			Key: "anne-laure", Label: "Anne-Laure TROIS-DUPRE — née le 03/05/1980 à Lyon 3e",
			GivenName: "Anne-Laure", GivenNameArray: []string{"Anne-Laure"},
			FamilyName: "TROIS-DUPRE", Gender: "female", Birthdate: "1980-05-03",
			Birthplace: "69383", Birthcountry: "99100",
		},
		{
			Key: "sans-prenom", Label: "MARTIN (sans prénom) — né le 02/02/1970 à Marseille 1er",
			FamilyName: "MARTIN", Gender: "male", Birthdate: "1970-02-02",
			Birthplace: "13201", Birthcountry: "99100",
		},
	}
}

// claims returns the identity claims the scopes release, as FranceConnect's
// userinfo and checktoken do: identite_pivot (or profile and birth, or each
// claim's own scope), and idp_birthdate on its own scope.
func (id *Identity) claims(scopes []string) map[string]any {
	all := map[string]any{
		"given_name":       id.GivenName,
		"given_name_array": id.GivenNameArray,
		"family_name":      id.FamilyName,
		"gender":           id.Gender,
		"birthdate":        id.Birthdate,
		"birthplace":       id.Birthplace,
		"birthcountry":     id.Birthcountry,
	}
	if id.GivenNameArray == nil {
		all["given_name_array"] = []string{}
	}
	out := map[string]any{}
	release := func(names ...string) {
		for _, n := range names {
			if v, ok := all[n]; ok {
				out[n] = v
			}
		}
	}
	for _, s := range scopes {
		switch s {
		case "identite_pivot":
			release("given_name", "given_name_array", "family_name", "gender", "birthdate", "birthplace", "birthcountry")
		case "profile":
			release("given_name", "given_name_array", "family_name", "gender", "birthdate")
		case "birth":
			release("birthplace", "birthcountry")
		case "idp_birthdate":
			if id.IdpBirthdate != "" {
				out["idp_birthdate"] = id.IdpBirthdate
			} else {
				out["idp_birthdate"] = id.Birthdate
			}
		default:
			release(s)
		}
	}
	return out
}

// hasScope reports whether the space-separated scope list holds s.
func hasScope(scope, s string) bool {
	for _, f := range strings.Fields(scope) {
		if f == s {
			return true
		}
	}
	return false
}
