package compose_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/config/datapass"
)

// What users.acl grants the passerelle user, exactly. Each item comes from
// the code (redisUse checks that it still does): key prefixes from
// tokencache, upstreamauth, ratelimit (plus redis_rate's "rate:"), the
// front's sessions and DataPass; commands from the go-redis calls and the
// Lua scripts.
var (
	// Redis names in the code → the ACL rule that grants them.
	wantNames = map[string]string{
		"passerelle:v1:fc:":              "~passerelle:v1:fc:*",
		"passerelle:v1:upstream:":        "~passerelle:v1:upstream:*",
		"passerelle:v1:rl:":              "~rate:passerelle:v1:rl:*",
		"passerelle:front:":              "~passerelle:front:*",
		"passerelle:v1:datapass:seen:":   "~passerelle:v1:datapass:seen:*",
		"passerelle:v1:datapass:records": "~passerelle:v1:datapass:records",
		"passerelle:v1:datapass:changes": "&passerelle:v1:datapass:changes",
	}
	// go-redis methods the gateway calls → the commands each sends.
	wantMethods = map[string][]string{
		"Get": {"get"}, "Set": {"set"}, "SetNX": {"set"}, "SetXX": {"set"}, "GetDel": {"getdel"},
		"Del": {"del"}, "Exists": {"exists"}, "Scan": {"scan"}, "Ping": {"ping"},
		"HGet": {"hget"}, "HGetAll": {"hgetall"}, "HSet": {"hset"}, "HSetNX": {"hsetnx"},
		"Watch": {"watch", "unwatch"}, "TxPipelined": {"multi", "exec"},
		"Publish": {"publish"}, "Subscribe": {"subscribe"},
	}
	// Scripts (redislock's deleteIfSame, redis_rate's GCRA) run with
	// EVALSHA, then EVAL on NOSCRIPT; inside, redis_rate calls TIME, GET
	// and SET, deleteIfSame GET and DEL.
	scriptCommands = []string{"eval", "evalsha", "time", "get", "set", "del"}
)

// redisUse scans the non-test Go files of caddyplugin/ and config/: the
// string literals shaped like a Redis name (passerelle:…), the go-redis
// command methods called with a context (in files importing go-redis, or
// on a receiver named like a client), and the Lua of redis.NewScript.
func redisUse(t *testing.T) (prefixes, methods map[string]bool, scripts []string) {
	t.Helper()
	prefixes, methods = map[string]bool{}, map[string]bool{}
	cmdable := map[string]bool{}
	ct := reflect.TypeFor[redis.UniversalClient]()
	for i := range ct.NumMethod() {
		cmdable[ct.Method(i).Name] = true
	}
	nameRE := regexp.MustCompile(`^(rate:)?passerelle:[a-z0-9_]+(:[a-z0-9_]+)*:?$`)
	fset := token.NewFileSet()
	walk := func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		usesRedis := slices.ContainsFunc(f.Imports, func(s *ast.ImportSpec) bool { return s.Path.Value == `"github.com/redis/go-redis/v9"` })
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && nameRE.MatchString(v) {
					prefixes[v] = true
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || len(n.Args) == 0 {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && usesRedis && x.Name == "redis" && sel.Sel.Name == "NewScript" {
					if lit, ok := n.Args[0].(*ast.BasicLit); ok {
						lua, _ := strconv.Unquote(lit.Value)
						scripts = append(scripts, lua)
					}
					return true
				}
				// A client call: in a file importing go-redis, or on a
				// field named like one (a.core.redis.Ping in health.go).
				recv := strings.ToLower(exprString(sel.X))
				client := usesRedis || strings.Contains(recv, "redis") || strings.Contains(recv, "rdb")
				if arg, ok := n.Args[0].(*ast.Ident); ok && client && strings.HasSuffix(strings.ToLower(arg.Name), "ctx") && cmdable[sel.Sel.Name] {
					methods[sel.Sel.Name] = true
				}
			}
			return true
		})
		return nil
	}
	for _, dir := range []string{"../../caddyplugin", "../../config"} {
		if err := filepath.WalkDir(dir, walk); err != nil {
			t.Fatal(err)
		}
	}
	return prefixes, methods, scripts
}

// exprString prints a selector chain (a.core.redis).
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return ""
}

// aclUser returns the rules of one user line of users.acl.
func aclUser(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile("redis/users.acl")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "user" && f[1] == name {
			return f[2:]
		}
	}
	t.Fatalf("users.acl: no user %s", name)
	return nil
}

func TestRedisACLMatchesCode(t *testing.T) {
	names, methods, scripts := redisUse(t)
	want := map[string]bool{}
	for n, rule := range wantNames {
		want[rule] = true
		if !names[n] {
			t.Errorf("the code no longer names %q: take %s out of users.acl and wantNames", n, rule)
		}
	}
	for n := range names {
		if _, ok := wantNames[n]; !ok {
			t.Errorf("the code names the Redis key or channel %q: grant it in redis/users.acl (user passerelle) and add it to wantNames", n)
		}
	}
	for _, c := range scriptCommands {
		want["+"+c] = true
	}
	for m := range methods {
		cmds, ok := wantMethods[m]
		if !ok {
			t.Errorf("the code calls go-redis' %s: grant its command in users.acl, list it in wantMethods and exercise it in TestRedisACL", m)
		}
		for _, c := range cmds {
			want["+"+c] = true
		}
	}
	for m := range wantMethods {
		if !methods[m] { // granted for code that may come back: said, not failed
			t.Logf("the code no longer calls go-redis' %s (granted by users.acl)", m)
		}
	}
	if len(scripts) == 0 {
		t.Error("no redis.NewScript found: the scan is broken, or deleteIfSame moved")
	}
	for _, lua := range scripts {
		for _, m := range regexp.MustCompile(`redis\.call\(\s*['"](\w+)['"]`).FindAllStringSubmatch(lua, -1) {
			if !slices.Contains(scriptCommands, strings.ToLower(m[1])) {
				t.Errorf("a script calls %s, not in scriptCommands nor granted", m[1])
			}
		}
	}
	// The user's grants, root and selector together, are exactly those.
	got := map[string]bool{}
	for _, r := range aclUser(t, "passerelle") {
		r = strings.Trim(r, "()")
		switch {
		case r == "on" || r == "resetkeys" || r == "resetchannels" || r == "-@all":
		case strings.HasPrefix(r, "~") || strings.HasPrefix(r, "&") || strings.HasPrefix(r, "+") && !strings.HasPrefix(r, "+@"):
			got[r] = true
		default:
			t.Errorf("users.acl: passerelle has the rule %q", r)
		}
	}
	// Over-grants: a rule no entry of wantNames, wantMethods or
	// scriptCommands justifies (a method the code stopped calling is only
	// logged above: the DataPass store is still moving).
	justified := maps.Clone(want)
	for _, cmds := range wantMethods {
		for _, c := range cmds {
			justified["+"+c] = true
		}
	}
	for r := range got {
		if !justified[r] {
			t.Errorf("users.acl grants passerelle %s, which no call of the code justifies", r)
		}
	}
	for r := range want {
		if !got[r] {
			t.Errorf("users.acl does not grant passerelle %s, which the code uses", r)
		}
	}
}

// redisServer runs redis-server with the ACL file and the directives of
// redis.conf that hold no path, address or TLS setting (deployed: true),
// or with the ACL file alone.
func redisServer(t *testing.T, aclFile string, deployed bool) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found (apt-get install redis-server)")
		}
		t.Skip("redis-server not found: install it (apt-get install redis-server)")
	}
	var extra []string
	if deployed {
		data, err := os.ReadFile("redis/redis.conf")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := confFields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], "tls-") ||
				slices.Contains([]string{"bind", "port", "dir", "aclfile"}, f[0]) {
				continue
			}
			extra = append(extra, append([]string{"--" + f[0]}, f[1:]...)...)
		}
		if !slices.Contains(extra, "--rename-command") {
			t.Fatal("redis.conf renames no command")
		}
	}
	for range 3 { // a free port may be taken between probe and bind
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--aclfile", aclFile, "--loglevel", "warning"}, extra...)
		cmd := exec.Command(bin, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		if waitRedis(t, addr, done, &out) {
			return addr
		}
	}
	t.Fatal("redis-server did not start")
	return ""
}

// waitRedis waits for the server to answer; false when it exited because
// its port was taken meanwhile.
func waitRedis(t *testing.T, addr string, done <-chan struct{}, out *strings.Builder) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			if strings.Contains(out.String(), "Address already in use") {
				return false
			}
			t.Fatalf("redis-server exited: %s", out.String())
		default:
		}
		if answers(addr) {
			return true
		}
	}
	t.Fatal("redis-server did not answer within 5s")
	return false
}

// confFields splits a redis.conf line, "" being an empty argument.
func confFields(line string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`"([^"]*)"|(\S+)`).FindAllStringSubmatch(line, -1) {
		if m[2] != "" {
			out = append(out, m[2])
		} else {
			out = append(out, m[1])
		}
	}
	return out
}

// answers reports whether a Redis replies (NOAUTH counts) to an inline PING.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-"))
}

// client is built as the gateway builds its own (tokencache.NewRedisClient):
// RESP3 with HELLO AUTH, no CLIENT SETINFO, no maintenance notifications.
func client(t *testing.T, addr, user, pass string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: addr, Username: user, Password: pass, MaxRetries: -1, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// renderACL writes the hashes file for the given passwords and runs
// redis/render-acl.sh on users.acl.
func renderACL(t *testing.T, passwords map[string]string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	var hashes strings.Builder
	for user, pw := range passwords {
		fmt.Fprintf(&hashes, "%s %x\n", user, sha256.Sum256([]byte(pw)))
	}
	if err := os.WriteFile(filepath.Join(dir, "hashes"), []byte(hashes.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "users.acl")
	msg, err := exec.Command("sh", "redis/render-acl.sh", "redis/users.acl", filepath.Join(dir, "hashes"), out).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, msg)
	}
	return out, nil
}

// aclDenied reports a refusal by the ACL (NOPERM, or inside a script), or
// by Redis' own default for DEBUG.
func aclDenied(err error) bool {
	m := err.Error()
	return strings.HasPrefix(m, "NOPERM") || strings.Contains(m, "The user executing the script can't") ||
		strings.Contains(m, "DEBUG command not allowed")
}

func TestRedisACL(t *testing.T) {
	pw := map[string]string{"passerelle": randomHex(24), "replica": randomHex(24), "sentinel": randomHex(24)}
	if out, err := renderACL(t, map[string]string{"passerelle": pw["passerelle"]}); err == nil {
		t.Error("render-acl.sh accepts users without a password hash")
	} else if _, statErr := os.Stat(out); statErr == nil {
		t.Error("render-acl.sh left a file behind after refusing")
	}
	aclFile, err := renderACL(t, pw)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deployed := redisServer(t, aclFile, true)
	plain := redisServer(t, aclFile, false)

	// Everything the gateway sends, as it sends it.
	c := client(t, deployed, "passerelle", pw["passerelle"])
	ok := func(what string, err error) {
		t.Helper()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Errorf("%s as passerelle: %v", what, err)
		}
	}
	ok("PING", c.Ping(ctx).Err())
	for _, prefix := range []string{"passerelle:v1:fc:", "passerelle:v1:upstream:"} { // tokencache, upstreamauth
		key := prefix + randomHex(32)
		ok("SET PX "+prefix, c.Set(ctx, key, "sealed", 1500*time.Millisecond).Err())
		ok("GET "+prefix, c.Get(ctx, key).Err())
		ok("SET NX PX (lock) "+prefix, c.SetNX(ctx, key+":lock", "held", 2*time.Second).Err())
		ok("EXISTS (lock) "+prefix, c.Exists(ctx, key+":lock").Err())
		// redislock's compare-and-delete, of locks (their holder's value)
		// and tokens (upstreamauth's sealed value), while both are there;
		// first EVALSHA (NOSCRIPT) then EVAL, then EVALSHA.
		_, _, scripts := redisUse(t)
		for k, v := range map[string]string{key + ":lock": "held", key: "sealed"} {
			for _, lua := range scripts {
				for range 2 {
					ok("script (EVALSHA/EVAL) "+k, redis.NewScript(lua).Run(ctx, c, []string{k}, v).Err())
				}
			}
			if n, err := c.Exists(ctx, k).Result(); err != nil || n != 0 {
				t.Errorf("%s: the compare-and-delete left the key (%d, %v)", k, n, err)
			}
		}
		ok("DEL (lock) "+prefix, c.Del(ctx, key+":lock").Err())
	}
	lim := redis_rate.NewLimiter(c) // ratelimit: "rate:passerelle:v1:rl:…"
	for range 2 {
		res, err := lim.Allow(ctx, "passerelle:v1:rl:hab:"+randomHex(8), redis_rate.PerSecond(5))
		if ok("redis_rate Allow", err); err == nil && res.Allowed != 1 {
			t.Errorf("redis_rate refused the first request: %+v", res)
		}
	}
	st := session.NewRedis(c) // the front's sessions, through its own store
	prefix := "passerelle:front:" + randomHex(6) + ":"
	ok("session Set", st.Set(ctx, prefix+"s:1", []byte("sealed"), time.Minute))
	_, _, err = st.Get(ctx, prefix+"s:1")
	ok("session Get", err)
	_, err = st.Replace(ctx, prefix+"s:1", []byte("sealed2"), time.Minute)
	ok("session Replace (SET XX)", err)
	n, err := st.Count(ctx, prefix+"s:")
	if ok("session Count (SCAN)", err); n != 1 {
		t.Errorf("session Count: %d, want 1", n)
	}
	_, _, err = st.Take(ctx, prefix+"s:1")
	ok("session Take (GETDEL)", err)
	ok("session Delete", st.Delete(ctx, prefix+"s:1"))

	// DataPass records, through config/datapass' own Redis store: a
	// follower subscribes and reloads, another instance applies a record
	// (WATCH, HGET, MULTI, HSET, PUBLISH, EXEC), the follower fetches it.
	var mu sync.Mutex
	var logged []string
	logf := func(msg string, err error) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf("%s: %v", msg, err))
	}
	errs := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(logged) }
	sealKey := bytes.Repeat([]byte{7}, 32) // every instance holds the same (derived from the webhook secret)
	follower := datapass.NewRedis(client(t, deployed, "passerelle", pw["passerelle"]), sealKey)
	follower.Log = logf
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { follower.Run(fctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("DataPass as passerelle: %s never happened; store errors: %v", what, errs())
			}
		}
	}
	eventually("the follower's first reload", follower.Live().LiveReady)
	dp := datapass.NewRedis(c, sealKey)
	dp.Log = logf
	rec := datapass.Record{RequestID: "424242", FiredAt: time.Now().UnixNano(), Event: "approve",
		SIRET: "13002526500013", Active: true, Scopes: []string{"cnaf_quotient_familial"}}
	_, _, err = dp.Apply(ctx, rec)
	ok("datapass Apply", err)
	eventually("the follower's fetch of a published record", func() bool { _, found := follower.Live().Record(rec.RequestID); return found })
	sum := sha256.Sum256([]byte("a delivery"))
	ok("datapass MarkSeen", dp.MarkSeen(ctx, sum))
	seen, err := dp.Seen(ctx, sum)
	if ok("datapass Seen", err); !seen {
		t.Error("datapass Seen: false after MarkSeen")
	}
	ok("datapass Reload (HGETALL)", dp.Reload(ctx))
	if e := errs(); len(e) > 0 {
		t.Errorf("DataPass store errors as passerelle: %v", e)
	}

	// Refused: renamed away in the deployed configuration, and refused by
	// the ACL alone on the plain server.
	refused := func(addr, user, pass string, args ...any) {
		t.Helper()
		err := client(t, addr, user, pass).Do(ctx, args...).Err()
		if err == nil || errors.Is(err, redis.Nil) || (addr == plain && !aclDenied(err)) {
			t.Errorf("%v as %s on the %s server: %v, want refused", args, user, map[bool]string{true: "plain", false: "deployed"}[addr == plain], err)
		}
	}
	for _, addr := range []string{deployed, plain} {
		for _, cmd := range [][]any{{"FLUSHALL"}, {"FLUSHDB"}, {"KEYS", "*"}, {"DEBUG", "SLEEP", "0"}} {
			refused(addr, "passerelle", pw["passerelle"], cmd...)
			refused(addr, "sentinel", pw["sentinel"], cmd...)
		}
		for _, cmd := range [][]any{
			{"CONFIG", "GET", "maxmemory"}, {"CONFIG", "SET", "maxmemory", "1"},
			{"SET", "other:key", "x"}, {"GET", "passerelle:v2:x"}, {"GET", "passerelle:hab:1"},
			{"SET", "rate:other", "1"}, {"EVAL", "return redis.call('GET', 'other:key')", "0"},
			{"EVAL", "return redis.call('FLUSHALL')", "0"}, {"EVAL", "return 1", "1", "other:key"},
			{"PUBLISH", "passerelle:habilitations", "x"}, {"SUBSCRIBE", "passerelle:habilitations"},
			{"ACL", "LIST"}, {"INFO"}, {"CLIENT", "LIST"}, {"SCRIPT", "FLUSH"}, {"REPLICAOF", "NO", "ONE"},
			{"HSET", "passerelle:v1:fc:x", "a", "b"}, {"HGET", "passerelle:v1:fc:x", "a"}, {"INCR", "passerelle:v1:fc:x"},
			{"DEL", datapass.RecordsKey}, {"SET", datapass.RecordsKey, "x"}, {"HDEL", datapass.RecordsKey, "424242"},
			{"PUBLISH", "passerelle:v1:datapass:other", "x"}, {"WATCH", "passerelle:v1:datapass:other"},
		} {
			refused(addr, "passerelle", pw["passerelle"], cmd...)
		}
		for _, cmd := range [][]any{{"GET", "passerelle:v1:fc:x"}, {"CONFIG", "GET", "*"}, {"SET", "passerelle:v1:fc:x", "1"}} {
			refused(addr, "sentinel", pw["sentinel"], cmd...)
			refused(addr, "replica", pw["replica"], cmd...)
		}
		if err := client(t, addr, "sentinel", pw["sentinel"]).Info(ctx, "replication").Err(); err != nil {
			t.Errorf("INFO as sentinel: %v", err)
		}
		if err := client(t, addr, "replica", pw["replica"]).Ping(ctx).Err(); err != nil {
			t.Errorf("PING as replica: %v", err)
		}
		// The default user and wrong passwords get nothing.
		for _, cred := range [][2]string{{"", ""}, {"default", ""}, {"default", "x"}, {"passerelle", "wrong"}, {"replica", pw["passerelle"]}} {
			if err := client(t, addr, cred[0], cred[1]).Ping(ctx).Err(); err == nil {
				t.Errorf("PING as %q with password %q: answered", cred[0], cred[1])
			}
		}
	}
}
