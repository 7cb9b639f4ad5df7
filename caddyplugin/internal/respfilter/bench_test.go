package respfilter

import "testing"

func benchFilter(b *testing.B, body string, paths ...string) {
	p := mustCompile(b, paths...)
	in := []byte(body)
	dst := make([]byte, 0, len(in))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = Filter(dst[:0], in, p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilterQF: quotient familial answer, scopes cnaf_quotient_familial
// and cnaf_enfants (allocataires and adresse dropped).
func BenchmarkFilterQF(b *testing.B) {
	benchFilter(b, qfBody, "data.quotient_familial", "data.enfants")
}

// qf2KB is the QF sample grown to about 2 KiB (two allocataires, four
// enfants), the size the brief names.
var qf2KB = func() string {
	alloc := `{"nom_naissance":"DUPONT","nom_usage":null,"prenoms":"PAUL LOUIS","date_naissance":"1962-08-24","sexe":"M"}`
	enf := `{"nom_naissance":"DUPONT","nom_usage":null,"prenoms":"PIERRE","date_naissance":"2018-01-10","sexe":"M"}`
	return `{"data":{"allocataires":[` + alloc + `,` + alloc + `],"enfants":[` + enf + `,` + enf + `,` + enf + `,` + enf + `,` + enf + `,` + enf + `,` + enf + `,` + enf + `],"adresse":{"destinataire":"Monsieur DUPONT PAUL","numero_libelle_voie":"1 RUE MONTORGUEIL","code_postal_ville":"75002 PARIS","pays":"FRANCE"},"quotient_familial":{"fournisseur":"CNAF","valeur":2550,"annee":2024,"mois":2,"annee_calcul":2024,"mois_calcul":12}},"links":{},"meta":{}}`
}()

func BenchmarkFilterQF2KB(b *testing.B) {
	benchFilter(b, qf2KB, "data.quotient_familial", "data.enfants")
}

func BenchmarkFilterQFAllScopes(b *testing.B) {
	benchFilter(b, qfBody, "data.allocataires", "data.enfants", "data.adresse", "data.quotient_familial")
}

func BenchmarkFilterMESRIArray(b *testing.B) {
	benchFilter(b, mesriBody, "data.admissions[].date_debut", "data.admissions[].date_fin", "data.admissions[].est_inscrit")
}

func BenchmarkFilterQFParallel(b *testing.B) {
	p := mustCompile(b, "data.quotient_familial", "data.enfants")
	in := []byte(qfBody)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, len(in))
		for pb.Next() {
			var err error
			if dst, err = Filter(dst[:0], in, p, Options{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
