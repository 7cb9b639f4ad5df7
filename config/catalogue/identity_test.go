package catalogue

import (
	"slices"
	"testing"
)

// TestKnownBirthdate: a day or month FranceConnect presumed as 01 is
// dropped when idp_birthdate shows the identity provider did not know it;
// a full date, a date without idp_birthdate or one RNIPP corrected is kept.
func TestKnownBirthdate(t *testing.T) {
	for _, tc := range []struct{ birthdate, idp, want string }{
		{"1987-11-01", "1987-11", "1987-11"},
		{"1987-11-01", "1987-11-00", "1987-11"},
		{"1979-01-01", "1979", "1979"},
		{"1979-01-01", "1979-00-00", "1979"},
		{"1979-01-01", "1979-00", "1979"},
		{"1992-11-01", "1992-11-00", "1992-11"},
		// No idp_birthdate: nothing presumed is known, the date stands.
		{"1987-11-01", "", "1987-11-01"},
		// The identity provider knew the full date.
		{"1987-11-01", "1987-11-01", "1987-11-01"},
		// A full date that is not the 1st: RNIPP knows the day.
		{"1987-11-15", "1987-11", "1987-11-15"},
		// RNIPP corrected the year or the month: never degrade it.
		{"1988-01-01", "1987", "1988-01-01"},
		{"1987-12-01", "1987-11", "1987-12-01"},
		// idp knows the month but not the day, birthdate's month is 01:
		// only the day is dropped.
		{"1987-01-01", "1987-01", "1987-01"},
		// Malformed idp_birthdate: ignored.
		{"1987-11-01", "11/1987", "1987-11-01"},
		// Already partial birthdate: as is.
		{"1987-11", "1987", "1987-11"},
	} {
		if got := KnownBirthdate(tc.birthdate, tc.idp); got != tc.want {
			t.Errorf("KnownBirthdate(%q, %q) = %q, want %q", tc.birthdate, tc.idp, got, tc.want)
		}
	}
}

// TestNormalizedPivotReachesProvidersComposed: a FranceConnect identity
// with decomposed accents, typographic apostrophes, odd spacing and a
// presumed date yields the provider parameters a caller's identity would:
// composed, upper-cased, partial date without an invented day.
func TestNormalizedPivotReachesProvidersComposed(t *testing.T) {
	raw := Pivot{
		FamilyName: "Dubino\u0302re", GivenName: "  Joe\u0308lle   Franc\u0327oise ", Gender: "female",
		Birthdate: "1992-08-01", IdpBirthdate: "1992-08", Birthplace: "75117", Birthcountry: "99100",
	}
	p := raw.Normalized()
	for claim, want := range map[Claim][]string{
		ClaimFamilyName:      {"DUBINÔRE"},
		ClaimGivenNames:      {"JOËLLE", "FRANÇOISE"},
		ClaimGivenNamesComma: {"JOËLLE, FRANÇOISE"},
		ClaimBirthYear:       {"1992"},
		ClaimBirthMonth:      {"8"},
		ClaimBirthDay:        nil,
	} {
		got, err := claim.AppendValues(nil, &p)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s = %q, %v; want %q", claim, got, err, want)
		}
	}
	// A route that needs the full date cannot be called with a partial one.
	for _, c := range []Claim{ClaimBirthdateFR, ClaimBirthdate} {
		if _, err := c.AppendValues(nil, &p); err == nil {
			t.Errorf("%s of a partial date accepted: a day would be invented", c)
		}
	}
	abroad := Pivot{FamilyName: "N’Guessan", GivenName: "Koffi Ange", Gender: "male", Birthdate: "1979-01-01",
		IdpBirthdate: "1979", Birthplace: "", Birthcountry: "99326"}.Normalized()
	if abroad.FamilyName != "N'GUESSAN" || abroad.Birthdate != "1979" {
		t.Errorf("born abroad, year only: %+v", abroad)
	}
	for _, c := range []Claim{ClaimBirthplace, ClaimBirthplaceFR, ClaimBirthMonth, ClaimBirthDay} {
		if got, err := c.AppendValues(nil, &abroad); err != nil || len(got) != 0 {
			t.Errorf("%s of a person born abroad in 1979: %q, %v", c, got, err)
		}
	}
}
