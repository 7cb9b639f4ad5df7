// Package container_test checks deploy/container/Dockerfile without Docker:
// its build context (the repository root filtered by /.dockerignore, read
// with Docker's pattern rules) holds the source the build needs and no
// secret, and its go build is the release's (deploy/supplychain/sbom.sh).
package container_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const root = "../.."

// ignorePattern is one line of a .dockerignore.
type ignorePattern struct {
	text      string
	exclusion bool // a "!" line: lets back in
	re        *regexp.Regexp
}

// compilePattern translates a cleaned pattern into a regular expression
// as github.com/moby/patternmatcher does (Docker's and BuildKit's
// .dockerignore): "*" any run of characters but "/", "?" one of them, "**"
// any number of directories ("**/" also none, a trailing "**" anything),
// "\" escapes the next character, [ ] classes; the path must match whole.
func compilePattern(p string) (*regexp.Regexp, error) {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; {
		case ch == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
			}
			if i+1 == len(p) {
				re.WriteString(".*")
			} else {
				re.WriteString("(.*/)?")
			}
		case ch == '*':
			re.WriteString("[^/]*")
		case ch == '?':
			re.WriteString("[^/]")
		case strings.IndexByte(".+()|{}$", ch) >= 0:
			re.WriteString(`\` + string(ch))
		case ch == '\\':
			if i+1 < len(p) {
				i++
				re.WriteString(`\` + string(p[i]))
			} else {
				re.WriteString(`\\`)
			}
		default:
			re.WriteByte(ch)
		}
	}
	re.WriteString("$")
	return regexp.Compile(re.String())
}

// readDockerignore reads a .dockerignore as Docker does
// (patternmatcher/ignorefile.ReadAll, then NewPatternMatcher): "#" lines
// are comments, blank lines skipped, each pattern trimmed, cleaned
// (filepath.Clean: no trailing "/"), a leading "/" dropped, "!" lets back
// in.
func readDockerignore(t *testing.T, file string) []ignorePattern {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []ignorePattern
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p := ignorePattern{}
		if p.exclusion = line[0] == '!'; p.exclusion {
			line = strings.TrimSpace(line[1:])
		}
		line = filepath.ToSlash(filepath.Clean(line))
		if len(line) > 1 && line[0] == '/' {
			line = line[1:]
		}
		if _, err := filepath.Match(line, "."); err != nil {
			t.Fatalf("%s: pattern %q: %v", file, line, err)
		}
		p.text = line
		if p.re, err = compilePattern(line); err != nil {
			t.Fatalf("%s: pattern %q: %v", file, line, err)
		}
		out = append(out, p)
	}
	return out
}

// excluded reports whether a file (slash-separated, relative to the
// context) stays out of the build context: the last pattern matching it or
// one of its parent directories decides (patternmatcher's
// MatchesOrParentMatches).
func excluded(patterns []ignorePattern, file string) bool {
	matched := false
	dirs := strings.Split(path.Dir(file), "/")
	for _, p := range patterns {
		if p.exclusion != matched {
			continue // cannot change the outcome
		}
		match := p.re.MatchString(file)
		for i := 0; !match && dirs[0] != "." && i < len(dirs); i++ {
			match = p.re.MatchString(strings.Join(dirs[:i+1], "/"))
		}
		if match {
			matched = !p.exclusion
		}
	}
	return matched
}

// TestDockerignoreRules checks the pattern rules above on cases of
// Docker's documentation and patternmatcher's tests.
func TestDockerignoreRules(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		file     string
		want     bool
	}{
		{[]string{"*"}, "go.mod", true},
		{[]string{"*"}, "cmd/passerelle/main.go", true},
		{[]string{"*", "!cmd/"}, "cmd/passerelle/main.go", false},
		{[]string{"*", "!cmd/"}, "cmdx/main.go", true},
		{[]string{"*", "!cmd/", "**/*_test.go"}, "cmd/passerelle/main_test.go", true},
		{[]string{"**/secrets"}, "deploy/compose/secrets/ca/internal-ca.key", true},
		{[]string{"**/secrets"}, "secrets/x", true},
		{[]string{"**/secrets"}, "caddyplugin/secrets.go", false},
		{[]string{"*/temp*"}, "somedir/temporary.txt", true},
		{[]string{"*/temp*"}, "a/b/temp.txt", false},
		{[]string{"*/*/temp*"}, "somedir/subdir/temporary.txt", true},
		{[]string{"temp?"}, "tempa", true},
		{[]string{"temp?"}, "tempab", false},
		{[]string{"**/*.go"}, "a/b/c.go", true},
		{[]string{"**/*.go"}, "c.go", true},
		{[]string{"*.md", "!README*.md", "README-secret.md"}, "README.md", false},
		{[]string{"*.md", "!README*.md", "README-secret.md"}, "README-secret.md", true},
		{[]string{"/deploy/compose/.env"}, "deploy/compose/.env", true},
		{[]string{"deploy/compose/habilitations/"}, "deploy/compose/habilitations/habilitations.yaml", true},
		{[]string{"a.b"}, "axb", false},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, ".dockerignore")
		if err := os.WriteFile(file, []byte(strings.Join(c.patterns, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := excluded(readDockerignore(t, file), c.file); got != c.want {
			t.Errorf("%q: %s excluded %v, want %v", c.patterns, c.file, got, c.want)
		}
	}
}

// composeSecretFiles returns, relative to the repository root, the files
// deploy/compose reads that hold secrets or habilitations: its secrets'
// files, .env and the default habilitations directory's file.
func composeSecretFiles(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "deploy/compose/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Secrets map[string]struct {
			File string `json:"file"`
		} `json:"secrets"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range c.Secrets {
		out = append(out, path.Join("deploy/compose", s.File))
	}
	m := regexp.MustCompile(`\$\{PASSERELLE_HABILITATIONS_DIR:-([^}]+)\}`).FindSubmatch(data)
	if len(c.Secrets) == 0 || m == nil {
		t.Fatal("compose.yaml: no secrets, or no default habilitations directory")
	}
	return append(out, path.Join("deploy/compose", string(m[1]), "habilitations.yaml"), "deploy/compose/.env")
}

// initSecretsFiles runs deploy/compose/init-secrets.sh in a temporary copy
// of its default directory and returns every file it wrote there, and
// those it lists as to provide, as paths of the repository
// (deploy/compose/secrets/…); nil without openssl.
func initSecretsFiles(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not found: init-secrets.sh cannot be checked")
		}
		t.Log("openssl not found: init-secrets.sh not run")
		return nil
	}
	script, err := filepath.Abs(filepath.Join(root, "deploy/compose/init-secrets.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "secrets") // the default: secrets/ beside the script
	cmd := exec.Command("bash", script, dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
			t.Fatalf("init-secrets.sh: %v\n%s", err, stderr.String())
		}
	}
	var out []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, path.Join("deploy/compose/secrets", filepath.ToSlash(rel)))
		// issue() writes NAME.csr and NAME.ext beside NAME-tls-cert, then
		// deletes them: in the context while a build runs.
		if name, ok := strings.CutSuffix(rel, "-tls-cert"); ok {
			out = append(out, path.Join("deploy/compose/secrets", name+".csr"), path.Join("deploy/compose/secrets", name+".ext"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`to provide: \S+/([A-Za-z0-9._-]+) `).FindAllStringSubmatch(stderr.String(), -1) {
		out = append(out, path.Join("deploy/compose/secrets", m[1]))
	}
	if !slices.Contains(out, "deploy/compose/secrets/ca/internal-ca.key") || !slices.Contains(out, "deploy/compose/secrets/fc-client-secret") {
		t.Fatalf("init-secrets.sh wrote %q: no CA key, or no FranceConnect secret to provide", out)
	}
	return out
}

// buildFiles returns the files the image's go build reads (the main
// module's Go files and embedded files of cmd/passerelle, with its build
// tags) and go.mod, go.sum.
func buildFiles(t *testing.T, tags string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-tags", tags, "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, "./cmd/passerelle")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

// secretLooking are files no build context should hold.
var secretLooking = regexp.MustCompile(`(^|/)(secrets|testdata)/|(^|/)\.env($|\.)|\.(pem|key|jwk|csr|p12|pfx)$`)

// TestBuildContext (D3): /.dockerignore keeps out of the build context every
// file deploy/compose/init-secrets.sh writes or lists to provide, every
// secret and habilitations file compose.yaml reads, .git and test keys,
// and keeps in the files the image's go build reads; in this checkout as
// it is, nothing secret-looking is in the context.
func TestBuildContext(t *testing.T) {
	patterns := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	secrets := append(composeSecretFiles(t), initSecretsFiles(t)...)
	secrets = append(secrets, ".git/config", "caddyplugin/internal/fcverify/testdata/fuzz_enc_p256.pem")
	for _, f := range secrets {
		if !excluded(patterns, f) {
			t.Errorf("%s is sent to the Docker daemon (build context)", f)
		}
	}
	for _, f := range buildFiles(t, dockerBuild(t).tags) {
		if excluded(patterns, f) {
			t.Errorf("%s, which the build reads, is not in the build context", f)
		}
	}
	// The checkout as it is (untracked files too): what docker build
	// would send.
	sent := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return fs.SkipDir
			}
			return nil
		}
		if excluded(patterns, rel) {
			return nil
		}
		sent++
		if secretLooking.MatchString(rel) {
			t.Errorf("%s is sent to the Docker daemon (build context)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files in the build context", sent)
}

// goBuild is a go build command line: its words, the output (-o) apart.
type goBuild struct {
	words []string
	out   string
	tags  string
}

func parseGoBuild(t *testing.T, file, line string) goBuild {
	t.Helper()
	var b goBuild
	words := strings.Fields(line)
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-o" && i+1 < len(words):
			i++
			b.out = words[i]
		case w == "-tags" && i+1 < len(words):
			b.tags = words[i+1]
			b.words = append(b.words, w)
		default:
			b.words = append(b.words, w)
		}
	}
	if !slices.Contains(b.words, "build") || b.out == "" {
		t.Fatalf("%s: not a go build with -o: %q", file, line)
	}
	return b
}

// dockerBuild returns the Dockerfile's go build (its RUN line, continued
// lines joined).
func dockerBuild(t *testing.T) goBuild {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.ReplaceAll(string(data), "\\\n", " ")
	var runs []string
	for _, l := range strings.Split(joined, "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(l), "RUN "); ok && strings.Contains(r, "go build") {
			runs = append(runs, r)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("Dockerfile: %d RUN lines with go build, want 1", len(runs))
	}
	return parseGoBuild(t, "Dockerfile", runs[0])
}

// TestBuildMatchesRelease (D4): the image's binary is the release's: the
// Dockerfile's go build is deploy/supplychain/sbom.sh's word for word
// (environment, flags, tags, package; the output path aside), with the
// toolchain go.mod names, and the runtime stage copies that output.
func TestBuildMatchesRelease(t *testing.T) {
	sbom, err := os.ReadFile(filepath.Join(root, "deploy/supplychain/sbom.sh"))
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?s)\nbuild\(\) \{\n(.*?)\n\}`).FindSubmatch(sbom)
	if fn == nil {
		t.Fatal("sbom.sh: no build() function")
	}
	var lines []string
	for _, l := range strings.Split(string(fn[1]), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("sbom.sh: build() is %d commands, want 1: %q", len(lines), lines)
	}
	release := parseGoBuild(t, "sbom.sh", lines[0])
	image := dockerBuild(t)
	if !slices.Equal(image.words, release.words) || release.out != `"$1"` {
		t.Errorf("the Dockerfile does not build the release's binary:\n  Dockerfile: %s\n  sbom.sh:    %s",
			strings.Join(image.words, " "), strings.Join(release.words, " "))
	}
	release2, err := os.ReadFile(filepath.Join(root, "deploy/supplychain/release.sh"))
	if err != nil || !bytes.Contains(release2, []byte("bash deploy/supplychain/sbom.sh")) {
		t.Errorf("release.sh does not build with sbom.sh (%v)", err)
	}

	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=build ` + regexp.QuoteMeta(image.out) + ` `).Match(df) {
		t.Errorf("the runtime stage does not copy the build's output %s", image.out)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	tc := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindSubmatch(gomod)
	if tc == nil {
		t.Fatal("go.mod: no toolchain line")
	}
	if !regexp.MustCompile(`(?m)^FROM golang:` + regexp.QuoteMeta(string(tc[1])) + `[-@ ]`).Match(df) {
		t.Errorf("the Dockerfile's build stage is not golang:%s (go.mod's toolchain)", tc[1])
	}
	if !bytes.Contains(sbom, []byte("GOTOOLCHAIN:-go"+string(tc[1])+"}")) {
		t.Errorf("sbom.sh does not default to go.mod's toolchain go%s", tc[1])
	}
}
