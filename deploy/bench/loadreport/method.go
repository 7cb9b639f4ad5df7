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
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// method describes the run: the binary, the machine, the TLS the gateway
// negotiates, the load; and the gateway's RSS now, before any load.
func method(c config, tlsConfig *tls.Config) (Method, error) {
	m := Method{Protocol: "HTTP/1.1, keep-alive connections", Rate: c.rate, Duration: c.duration.String(), Repetitions: c.repeat,
		LoadGenerator: "vegeta " + vegetaVersion() + " (open loop, constant rate), on the same machine", LogicalCPUs: runtime.NumCPU()}
	var err error
	if m.IdleRSSMiB, err = procStatusMiB(c.pid, "VmRSS"); err != nil {
		return m, err
	}
	f, err := os.Open(c.bin)
	if err != nil {
		return m, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return m, err
	}
	m.Binary = hex.EncodeToString(h.Sum(nil))
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
	m.CPU = procField("/proc/cpuinfo", "model name")
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
