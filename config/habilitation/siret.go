package habilitation

// ValidSIRET reports whether s is a well-formed SIRET: exactly 14 ASCII digits
// passing the Luhn check, or, for La Poste establishments (SIREN 356000000),
// whose digit sum is a multiple of 5. An all-zero number is refused. No
// trimming: spaces, signs and non-ASCII digits make it invalid.
func ValidSIRET(s string) bool {
	if len(s) != 14 {
		return false
	}
	sum, digitSum := 0, 0
	for i := 0; i < 14; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		digitSum += d
		if i%2 == 0 { // from the right, positions 2, 4, … (14 digits: even indexes)
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	if digitSum == 0 {
		return false
	}
	if sum%10 == 0 {
		return true
	}
	return s[:9] == "356000000" && digitSum%5 == 0
}
