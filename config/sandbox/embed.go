package sandbox

import (
	"embed"
	"io/fs"
	"sync"
)

//go:embed payloads
var embedded embed.FS

var embeddedSet = sync.OnceValue(func() *Set {
	sub, err := fs.Sub(embedded, "payloads")
	if err != nil {
		panic("sandbox: embedded payloads: " + err.Error())
	}
	s, err := Load(sub)
	if err != nil {
		panic("sandbox: embedded payloads are broken: " + err.Error())
	}
	return s
})

// Embedded returns the project's own sandbox cases (config/sandbox/payloads),
// loaded once. It panics only if the embedded data is broken, which
// TestEmbeddedLoads rules out.
func Embedded() *Set { return embeddedSet() }

// EmbeddedFS returns the embedded payloads directory, e.g. to serve its README.
func EmbeddedFS() fs.FS {
	sub, _ := fs.Sub(embedded, "payloads")
	return sub
}
