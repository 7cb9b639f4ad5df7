package main

import (
	"crypto/sha256"
	"crypto/tls"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/passerelle-gw/passerelle/config/loadreport"
)

// method describes the run: the binary, the machine, the gateway's
// configuration, the TLS the gateway negotiates, the load; and the
// gateway's RSS now, before any load.
func method(l *loader, tlsConfig *tls.Config) (loadreport.Method, error) {
	c := l.c
	m := loadreport.Method{Protocol: "HTTP/1.1, keep-alive connections", Rate: c.rate, Duration: c.duration.String(), Repetitions: c.repeat,
		Reloads: c.reloads, SoakMinutes: c.soakMinutes, Gateway: c.setup, LogicalCPUs: runtime.NumCPU(),
		LoadGenerator: "vegeta " + vegetaVersion() + " (open loop, constant rate), on the same machine"}
	var err error
	if m.IdleRSSMiB, err = l.rss(); err != nil {
		return m, err
	}
	if m.Binary, err = fileSHA256(c.bin); err != nil {
		return m, err
	}
	info, err := buildinfo.ReadFile(c.bin)
	if err != nil {
		return m, err
	}
	m.GoVersion, m.Revision = info.GoVersion, c.revision
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			m.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		m.Revision += " (with uncommitted changes)"
	}
	if m.ConfigFiles, err = configFiles(c.caddyfile, c.files); err != nil {
		return m, err
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if m.CPU == "" { // arm64 names no model
		m.CPU = strings.TrimSpace(procField("/proc/cpuinfo", "CPU implementer") + " " + procField("/proc/cpuinfo", "CPU part") + " " + runtime.GOARCH)
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemoryMiB = kb / 1024
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(data))
	}
	if m.TLS, err = negotiated(c.gateway, tlsConfig); err != nil {
		return m, fmt.Errorf("TLS to the gateway: %w", err)
	}
	return m, nil
}

// configFiles names a Caddyfile, the files it imports (one level,
// relative to the Caddyfile's directory; an import that is not a file, a
// snippet or a glob, is left out) and the other files the gateway reads,
// each with its SHA-256.
func configFiles(caddyfile string, others []string) ([]string, error) {
	data, err := os.ReadFile(caddyfile)
	if err != nil {
		return nil, err
	}
	paths := []string{caddyfile}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "import" {
			p := filepath.Join(filepath.Dir(caddyfile), f[1])
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				paths = append(paths, p)
			}
		}
	}
	var out []string
	for _, p := range append(paths, others...) {
		sum, err := fileSHA256(p)
		if err != nil {
			return nil, err
		}
		out = append(out, p+" sha256:"+sum)
	}
	return out, nil
}

// fileSHA256 is the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// negotiated is the TLS version and cipher suite of a handshake with the
// site at base, as the load's connections make it.
func negotiated(base string, tlsConfig *tls.Config) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	conn, err := tls.Dial("tcp", net.JoinHostPort(u.Hostname(), u.Port()), tlsConfig)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return tls.VersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite), nil
}

// procField is the value of the first "key: value" line of a /proc file
// with that key ("" when absent).
func procField(path, key string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// vegetaVersion is the version of vegeta this command was built with.
func vegetaVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/tsenart/vegeta/v12" {
				return d.Version
			}
		}
	}
	return "v12"
}
