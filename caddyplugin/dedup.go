package caddyplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/dedup"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// What configurations derive from identical inputs, shared (package
// dedup): a reload parses no catalogue and generates no OpenAPI document
// that a configuration still alive has, and a replaced configuration kept
// alive by reverse_proxy's idle connections holds no copy of its own.
var (
	catalogues       dedup.Table[catalogue.Catalogue]
	openAPIDocuments dedup.Table[openAPIDocument]
)

// embeddedCatalogue is the key of the embedded catalogue in catalogues.
const embeddedCatalogue = "embedded"

// loadCatalogue returns the catalogue of the file at path, or the embedded
// one when path is "", and its key in catalogues: "sha256:" and the hex
// SHA-256 of the file's content, or "embedded". The catalogue is shared:
// nobody may modify it.
func loadCatalogue(path string) (*catalogue.Catalogue, string, error) {
	if path == "" {
		cat, err := catalogues.Get(embeddedCatalogue, catalogue.Default)
		return cat, embeddedCatalogue, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("catalogue: reading file: %w", err)
	}
	sum := sha256.Sum256(data)
	key := "sha256:" + hex.EncodeToString(sum[:])
	cat, err := catalogues.Get(key, func() (*catalogue.Catalogue, error) { return catalogue.Parse(data) })
	return cat, key, err
}
