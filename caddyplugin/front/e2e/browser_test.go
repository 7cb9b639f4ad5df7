package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser returns a fresh headless chromium (its own profile: no cookie
// shared between subtests), or skips when chromium is not installed and
// $CI is not set (.ci/test installs it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%v (at %s: %s)", err, loc, tail(body, 600))
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// testBrowser runs the citizen journeys in a real browser.
func testBrowser(t *testing.T, e *env) {
	t.Run("cas1 login shows identity and quotient familial, then logout", func(t *testing.T) {
		ctx := browser(t)
		do(t, ctx,
			chromedp.Navigate(e.base+"/"),
			chromedp.Click(chromedp.ID("cas1")),
			// Not logged in: the front's login page with FranceConnect's button.
			chromedp.WaitVisible(chromedp.ID("franceconnect")),
		)
		if got := text(t, ctx, ".fr-connect"); !strings.Contains(got, "S’identifier avec") || !strings.Contains(got, "FranceConnect") {
			t.Fatalf("button text %q", got)
		}
		do(t, ctx,
			chromedp.Click(chromedp.ID("franceconnect")),
			chromedp.WaitVisible(chromedp.ID("identity-angela")),
			chromedp.Click(chromedp.ID("identity-angela")),
			chromedp.WaitVisible(chromedp.ID("identity")),
		)
		if loc := location(t, ctx); loc != e.base+"/espace-famille/" {
			t.Fatalf("landed on %s", loc)
		}
		if id := text(t, ctx, "#identity"); !strings.Contains(id, "Angela Claire Louise DUBOIS") || !strings.Contains(id, "1962-08-24") {
			t.Fatalf("identity shown: %q", id)
		}
		ds := text(t, ctx, "#datasets")
		if strings.Count(ds, `"valeur":1380`) != 2 || !strings.Contains(ds, "Quotient-Familial") || !strings.Contains(ds, "Qf-Distant") {
			t.Fatalf("datasets shown: %q", ds)
		}
		if h := text(t, ctx, "#headers"); !strings.Contains(h, "X-Passerelle-Assertion: ey") {
			t.Fatalf("headers shown: %q", h)
		}
		// Logout: the app's link, FranceConnect's session/end, back to /.
		do(t, ctx, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("cas1")))
		if loc := location(t, ctx); loc != e.base+"/" {
			t.Fatalf("after logout: %s", loc)
		}
		do(t, ctx, chromedp.Navigate(e.base+"/espace-famille/"), chromedp.WaitVisible(chromedp.ID("franceconnect")))
	})

	t.Run("cas2 transmit shows the reconciliation verdict", func(t *testing.T) {
		ctx := browser(t)
		do(t, ctx,
			chromedp.Navigate(e.base+"/"),
			chromedp.Click(chromedp.ID("cas2")),
			chromedp.WaitVisible(chromedp.ID("account-angela")),
			chromedp.Click(chromedp.ID("account-angela")), // the app's own login
			chromedp.WaitVisible(chromedp.ID("franceconnect")),
		)
		if got := text(t, ctx, ".fr-callout"); !strings.Contains(got, "votre quotient familial") {
			t.Fatalf("callout %q", got)
		}
		do(t, ctx,
			chromedp.Click(chromedp.ID("franceconnect")),
			chromedp.WaitVisible(chromedp.ID("identity-angela")),
			chromedp.Click(chromedp.ID("identity-angela")),
			chromedp.WaitVisible(chromedp.ID("reconciliation")),
		)
		rec := text(t, ctx, "#reconciliation")
		if !strings.HasPrefix(rec, "probable") || !strings.Contains(rec, "first_given_name_only") || !strings.Contains(rec, "(comparé avec ce compte)") {
			t.Fatalf("reconciliation shown: %q", rec)
		}
		if ds := text(t, ctx, "#datasets"); !strings.Contains(ds, `"valeur":1380`) {
			t.Fatalf("datasets shown: %q", ds)
		}
		// Handed over once: a reload shows the form again, no data.
		do(t, ctx, chromedp.Navigate(e.base+"/demarche/"), chromedp.WaitVisible(chromedp.ID("franceconnect")))
		if body := text(t, ctx, "body"); strings.Contains(body, "Rapprochement") || strings.Contains(body, "1380") {
			t.Fatalf("the hand-off was repeated: %q", tail(body, 400))
		}
	})

	t.Run("pages meet the basic accessibility rules", func(t *testing.T) {
		ctx := browser(t)
		// The login page, an error page, the logout confirmation, the
		// missing-data page: French, one h1, a main landmark, every control
		// and link named, no inline script.
		for _, u := range []string{"/.passerelle/connexion?return_to=/espace-famille/", "/.passerelle/fc/callback?state=x",
			"/.passerelle/fc/logout", "/.passerelle/donnees-indisponibles"} {
			do(t, ctx, chromedp.Navigate(e.base+u), chromedp.WaitVisible(chromedp.ID("contenu")))
			problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11yCheck))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) > 0 {
				t.Errorf("%s: %v", u, problems)
			}
		}
	})

	t.Run("cancel at FranceConnect shows the French page", func(t *testing.T) {
		ctx := browser(t)
		do(t, ctx,
			chromedp.Navigate(e.base+"/espace-famille/"),
			chromedp.WaitVisible(chromedp.ID("franceconnect")),
			chromedp.Click(chromedp.ID("franceconnect")),
			chromedp.WaitVisible(chromedp.ID("cancel")),
			chromedp.Click(chromedp.ID("cancel")),
			chromedp.WaitVisible(chromedp.ID("contenu")), // the front's page, not FranceConnect's
		)
		if h1 := text(t, ctx, "h1"); h1 != "Connexion annulée" {
			t.Fatalf("page title %q", h1)
		}
		if body := text(t, ctx, "main"); !strings.Contains(body, "réessayer") {
			t.Fatalf("page %q", body)
		}
	})
}

// a11yCheck lists what a page lacks of RGAA's basics (language, title,
// one h1, main landmark, named controls and links, new-window links
// announced, no script).
const a11yCheck = `(() => {
	const p = [];
	if (document.documentElement.lang !== "fr") p.push("lang is not fr");
	if (!document.title.trim()) p.push("no title");
	if (document.querySelectorAll("h1").length !== 1) p.push("not exactly one h1");
	if (!document.querySelector("main")) p.push("no main landmark");
	for (const el of document.querySelectorAll("button, a, input:not([type=hidden])")) {
		const name = (el.getAttribute("aria-label") || el.textContent || el.value || "").trim();
		if (!name) p.push("unnamed " + el.tagName.toLowerCase());
		if (el.tagName === "A" && el.target === "_blank" && !/nouvelle fenêtre/.test(el.title)) p.push("new window not announced: " + name);
	}
	if (document.scripts.length) p.push("scripts present");
	return p;
})()`
