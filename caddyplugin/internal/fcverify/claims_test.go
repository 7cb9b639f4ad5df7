package fcverify

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// req: A10 — typ, when present, must be token-introspection+jwt.
func TestA10_Typ(t *testing.T) {
	e := newEnv(t)
	for typ, ok := range map[any]bool{
		"token-introspection+jwt":             true,
		"application/token-introspection+jwt": true,
		"TOKEN-INTROSPECTION+JWT":             true,
		"Application/Token-Introspection+JWT": true,
		"JWT":                                 false,
		"at+jwt":                              false,
		"application/jwt":                     false,
		"token-introspection":                 false,
		"":                                    false,
		7:                                     false,
	} {
		_, err := e.check(e.wrap(signAs(t, fcES, e.claims(nil), map[string]any{"typ": typ})))
		if ok && err != nil {
			t.Errorf("typ %v refused: %v", typ, err)
		}
		if !ok {
			wantErr(t, err, ErrBadResponse)
		}
	}
}

// req: A10 — other JWTs signed by the same FranceConnect key are refused.
func TestA10_CrossJWTRefused(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now().Unix()
	idToken := map[string]any{"iss": e.stub.issuer, "aud": fdClientID, "iat": now, "exp": now + 60,
		"sub": subCanary, "nonce": "n", "acr": "eidas1", "at_hash": "x"}
	userinfo := map[string]any{"iss": e.stub.issuer, "aud": fdClientID, "iat": now, "sub": subCanary,
		"given_name": "Angela", "family_name": familyCanary}
	tiJSON, _ := json.Marshal(e.introspection())
	for name, claims := range map[string]map[string]any{
		"id token":                   idToken,
		"userinfo":                   userinfo,
		"flat introspection":         e.introspection(),
		"token_introspection string": {"iss": e.stub.issuer, "aud": fdClientID, "iat": now, "token_introspection": string(tiJSON)},
		"token_introspection array":  {"iss": e.stub.issuer, "aud": fdClientID, "iat": now, "token_introspection": []any{e.introspection()}},
		"token_introspection null":   {"iss": e.stub.issuer, "aud": fdClientID, "iat": now, "token_introspection": nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.check(e.answer(claims))
			wantErr(t, err, ErrBadResponse)
		})
	}
}

// req: A11 — iss byte for byte; outer aud shapes.
func TestA11_AudienceShapes(t *testing.T) {
	e := newEnv(t)
	for aud, ok := range map[string]bool{
		`"` + fdClientID + `"`:               true,
		`["` + fdClientID + `"]`:             true,
		`["other","` + fdClientID + `"]`:     true,
		`null`:                               false,
		`123`:                                false,
		`[]`:                                 false,
		`""`:                                 false,
		`"other"`:                            false,
		`["other"]`:                          false,
		`[123,"` + fdClientID + `"]`:         false,
		`[null,"` + fdClientID + `"]`:        false,
		`{"` + fdClientID + `":true}`:        false,
		`"FD-CLIENT-ID-CANARY"`:              false,
		`"` + fdClientID + ` "`:              false,
		`[["` + fdClientID + `"]]`:           false,
		`true`:                               false,
		`"` + fdClientID + `\u0000"`:         false,
		`["` + fdClientID + `","` + `x"]`:    true,
		`["x","x","` + fdClientID + `","y"]`: true,
	} {
		c := e.claims(nil)
		c["aud"] = json.RawMessage(aud)
		_, err := e.check(e.answer(c))
		if ok && err != nil {
			t.Errorf("aud %s refused: %v", aud, err)
		}
		if !ok {
			wantErr(t, err, ErrBadResponse)
		}
	}
	c := e.claims(nil)
	delete(c, "aud")
	_, err := e.check(e.answer(c))
	wantErr(t, err, ErrBadResponse)

	for _, iss := range []any{e.stub.issuer + "/", e.stub.issuer[:len(e.stub.issuer)-1], "HTTP" + e.stub.issuer[4:],
		"https://fcp-low.integ01.dev-franceconnect.fr/api/v2", 1, nil, []string{e.stub.issuer}} {
		c := e.claims(nil)
		c["iss"] = iss
		_, err := e.check(e.answer(c))
		wantErr(t, err, ErrBadResponse)
	}
	c = e.claims(nil)
	delete(c, "iss")
	_, err = e.check(e.answer(c))
	wantErr(t, err, ErrBadResponse)
}

// req: A12 — outer iat at every boundary ±1 s with the injected clock.
func TestA12_IssuedAtBoundaries(t *testing.T) {
	for _, skew := range []time.Duration{0, DefaultSkew, 30 * time.Second} {
		e := newEnv(t, func(c *Config) { c.Skew = skew })
		if skew == 0 {
			skew = DefaultSkew // zero means default
		}
		now := e.clock.Now()
		for off, ok := range map[time.Duration]bool{
			skew:                                 true,
			skew + time.Second:                   false,
			0:                                    true,
			-DefaultMaxIssuedAge:                 true,
			-DefaultMaxIssuedAge - 1*time.Second: false,
			-time.Hour:                           false,
			24 * time.Hour:                       false,
		} {
			c := e.claims(nil)
			c["iat"] = now.Add(off).Unix()
			_, err := e.check(e.answer(c))
			if ok && err != nil {
				t.Errorf("skew %v iat now%+v refused: %v", skew, off, err)
			}
			if !ok {
				wantErr(t, err, ErrBadResponse)
			}
		}
	}
	e := newEnv(t)
	for _, iat := range []any{"1704965332", nil, -1, 1e300, true, []int{1}} {
		c := e.claims(nil)
		c["iat"] = iat
		_, err := e.check(e.answer(c))
		wantErr(t, err, ErrBadResponse)
	}
	c := e.claims(nil)
	delete(c, "iat")
	_, err := e.check(e.answer(c))
	wantErr(t, err, ErrBadResponse)
}

// req: A12, A13 — FranceConnect sends no exp nor nbf; a signed answer that
// carries them is bound by them, at ±1 s of the skew: outer exp not past,
// outer and inner nbf not in the future, numeric.
func TestA12_ExpAndNotBeforeWhenPresent(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	skew := DefaultSkew
	for name, tc := range map[string]struct {
		inner bool
		claim string
		val   any
		ok    bool
	}{
		"outer exp in an hour":  {claim: "exp", val: now.Add(time.Hour).Unix(), ok: true},
		"outer exp now-skew+1s": {claim: "exp", val: now.Add(-skew + time.Second).Unix(), ok: true},
		"outer exp now-skew":    {claim: "exp", val: now.Add(-skew).Unix()},
		"outer exp an hour ago": {claim: "exp", val: now.Add(-time.Hour).Unix()},
		"outer exp string":      {claim: "exp", val: "4102444800"},
		"outer nbf now":         {claim: "nbf", val: now.Unix(), ok: true},
		"outer nbf now+skew":    {claim: "nbf", val: now.Add(skew).Unix(), ok: true},
		"outer nbf now+skew+1s": {claim: "nbf", val: now.Add(skew + time.Second).Unix()},
		"outer nbf in an hour":  {claim: "nbf", val: now.Add(time.Hour).Unix()},
		"outer nbf null":        {claim: "nbf", val: nil},
		"inner nbf now+skew":    {inner: true, claim: "nbf", val: now.Add(skew).Unix(), ok: true},
		"inner nbf now+skew+1s": {inner: true, claim: "nbf", val: now.Add(skew + time.Second).Unix()},
		"inner nbf in an hour":  {inner: true, claim: "nbf", val: now.Add(time.Hour).Unix()},
		"inner nbf string":      {inner: true, claim: "nbf", val: "0"},
		"inner nbf an hour ago": {inner: true, claim: "nbf", val: now.Add(-time.Hour).Unix(), ok: true},
		"outer exp in a minute": {claim: "exp", val: now.Add(time.Minute).Unix(), ok: true},
	} {
		t.Run(name, func(t *testing.T) {
			ti := e.introspection()
			c := e.claims(ti)
			if tc.inner {
				ti[tc.claim] = tc.val
			} else {
				c[tc.claim] = tc.val
			}
			f, err := e.check(e.answer(c))
			if tc.ok {
				if err != nil || !f.Active {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantErr(t, err, ErrBadResponse)
		})
	}
}

// req: A13 — expiry from token_introspection.exp only, at ±1 s.
func TestA13_ExpiryBoundaries(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	ti := func(iat, exp time.Time) map[string]any {
		m := e.introspection()
		m["iat"], m["exp"] = iat.Unix(), exp.Unix()
		return m
	}
	skew := DefaultSkew
	// now < exp + skew.
	f, err := e.check(e.answer(e.claims(ti(now.Add(-time.Minute), now.Add(-skew+time.Second)))))
	if err != nil || !f.Active {
		t.Fatalf("exp+skew-1s: %v", err)
	}
	_, err = e.check(e.answer(e.claims(ti(now.Add(-time.Minute), now.Add(-skew)))))
	wantErr(t, err, ErrTokenExpired)
	if Reason(err) != ReasonTokenExpired {
		t.Fatal(Reason(err))
	}
	// iat ≤ now + skew.
	if _, err := e.check(e.answer(e.claims(ti(now.Add(skew), now.Add(time.Hour))))); err != nil {
		t.Fatalf("iat=now+skew: %v", err)
	}
	_, err = e.check(e.answer(e.claims(ti(now.Add(skew+time.Second), now.Add(time.Hour)))))
	wantErr(t, err, ErrBadResponse)
	// iat < exp.
	_, err = e.check(e.answer(e.claims(ti(now, now))))
	wantErr(t, err, ErrBadResponse)
	// The outer layer never extends expiry.
	c := e.claims(ti(now.Add(-2*time.Minute), now.Add(-time.Minute)))
	c["exp"] = now.Add(time.Hour).Unix()
	c["expires_in"] = 3600
	_, err = e.check(e.answer(c))
	wantErr(t, err, ErrTokenExpired)
}

// req: A13 — property test over random iat/exp/now (claims layer only).
func TestA13_ExpiryProperty(t *testing.T) {
	v := &Verifier{cfg: Config{Skew: DefaultSkew}}
	r := rand.New(rand.NewPCG(1, 2))
	base := t0.Unix()
	for range 20000 {
		iat := base + r.Int64N(400) - 200
		exp := base + r.Int64N(400) - 200
		now := time.Unix(base+r.Int64N(400)-200, r.Int64N(1e9))
		ti := object{}
		for k, val := range map[string]any{"active": true, "iat": iat, "exp": exp, "sub": "s", "aud": "a", "scope": ""} {
			ti[k], _ = json.Marshal(val)
		}
		f, err := v.checkIntrospection(ti, now)
		skewS := int64(DefaultSkew / time.Second)
		malformed := iat >= exp || time.Unix(iat, 0).After(now.Add(DefaultSkew))
		expired := !now.Before(time.Unix(exp+skewS, 0))
		switch {
		case malformed:
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("iat=%d exp=%d now=%v: %v", iat, exp, now, err)
			}
		case expired:
			if !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("iat=%d exp=%d now=%v: %v", iat, exp, now, err)
			}
		default:
			if err != nil || !f.Active || !f.ExpiresAt.Equal(time.Unix(exp, 0)) {
				t.Fatalf("iat=%d exp=%d now=%v: %v", iat, exp, now, err)
			}
		}
	}
}

// req: A14 — active must be the boolean true; required members.
func TestA14_ActiveShapes(t *testing.T) {
	e := newEnv(t)
	f, err := e.check(e.answer(e.claims(map[string]any{"active": false})))
	if err != nil || f.Active || f.Sub != "" || f.ClientID != "" {
		t.Fatalf("inactive: %+v %v", f, err)
	}
	for _, active := range []any{"true", 1, nil, "false", 0, []bool{true}, map[string]any{}} {
		m := e.introspection()
		m["active"] = active
		_, err := e.check(e.answer(e.claims(m)))
		wantErr(t, err, ErrBadResponse)
	}
	for _, missing := range []string{"active", "exp", "iat", "sub", "aud", "scope"} {
		m := e.introspection()
		delete(m, missing)
		_, err := e.check(e.answer(e.claims(m)))
		wantErr(t, err, ErrBadResponse)
	}
	for name, val := range map[string]any{"sub": "", "scope": []string{"openid"}, "exp": "1", "sub2": nil,
		"acr": 1, "family_name": 1, "given_name_array": "Angela", "birthdate": nil} {
		m := e.introspection()
		if name == "sub2" {
			name = "sub"
		}
		m[name] = val
		_, err := e.check(e.answer(e.claims(m)))
		wantErr(t, err, ErrBadResponse)
	}
	// idp_birthdate, when present, is read as the identity provider's date.
	m := e.introspection()
	m["birthdate"], m["idp_birthdate"] = "1987-11-01", "1987-11"
	if f, err := e.check(e.answer(e.claims(m))); err != nil || f.Identity.IdpBirthdate != "1987-11" || f.Identity.Birthdate != "1987-11-01" {
		t.Fatalf("idp_birthdate: %+v %v", f, err)
	}
	// Informational: any other type is ignored, not a reason to refuse.
	for _, v := range []any{nil, 1987, []string{"1987"}} {
		m["idp_birthdate"] = v
		if f, err := e.check(e.answer(e.claims(m))); err != nil || f.Identity.IdpBirthdate != "" {
			t.Fatalf("idp_birthdate %v: %+v %v", v, f, err)
		}
	}
	// Empty scope is allowed while active; scopes split on spaces.
	m = e.introspection()
	m["scope"] = ""
	if f, err := e.check(e.answer(e.claims(m))); err != nil || len(f.Scopes) != 0 || !f.Active {
		t.Fatalf("empty scope: %+v %v", f, err)
	}
	m["scope"] = " openid  profile birth "
	if f, err := e.check(e.answer(e.claims(m))); err != nil || len(f.Scopes) != 3 || !f.HasScope("birth") {
		t.Fatalf("scopes: %+v %v", f, err)
	}
}

// req: A15 — the caller is exactly one non-empty token_introspection.aud.
func TestA15_CallerAudience(t *testing.T) {
	e := newEnv(t)
	for aud, ok := range map[string]bool{
		`"fs"`: true, `["fs"]`: true, `["fs","other"]`: false, `""`: false, `[""]`: false,
		`[]`: false, `1`: false, `null`: false, `[1]`: false, `{"fs":1}`: false,
	} {
		m := e.introspection()
		m["aud"] = json.RawMessage(aud)
		f, err := e.check(e.answer(e.claims(m)))
		if ok && (err != nil || f.ClientID != "fs") {
			t.Errorf("aud %s: %+v %v", aud, f, err)
		}
		if !ok {
			wantErr(t, err, ErrBadResponse)
		}
	}
}

// req: A11 — fuzz the claims JSON: never panics; accepted ⇒ invariants.
func FuzzA11_Claims(f *testing.F) {
	iss := "https://fc.example/api/v2"
	v := &Verifier{cfg: Config{Issuer: iss, ClientID: "fd", Skew: DefaultSkew, MaxIssuedAge: DefaultMaxIssuedAge}}
	now := t0
	seed, _ := json.Marshal(map[string]any{"iss": iss, "aud": "fd", "iat": now.Unix(), "token_introspection": map[string]any{
		"active": true, "aud": "fs", "sub": "s", "iat": now.Unix() - 4, "exp": now.Unix() + 56, "scope": "openid", "acr": "eidas1",
		"given_name_array": []string{"a"}}})
	f.Add(seed)
	f.Add([]byte(`{"iss":"https://fc.example/api/v2","aud":["x","fd"],"iat":1704965332,"token_introspection":{"active":false}}`))
	f.Add([]byte(`{"iss":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ti, err := v.checkOuter(data, now)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		var c map[string]any
		if json.Unmarshal(data, &c) != nil || c["iss"] != iss {
			t.Fatalf("accepted outer claims with wrong iss: %s", data)
		}
		facts, err := v.checkIntrospection(ti, now)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		tim, _ := c["token_introspection"].(map[string]any)
		if tim == nil || tim["active"] != facts.Active {
			t.Fatalf("active mismatch: %s", data)
		}
		if facts.Active && (facts.Sub == "" || facts.ClientID == "" || !now.Before(facts.ExpiresAt.Add(DefaultSkew))) {
			t.Fatalf("active facts break invariants: %s", data)
		}
	})
}
