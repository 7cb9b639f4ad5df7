// Package dedup shares the immutable values that configurations derive from
// identical inputs: the catalogue parsed from the same bytes, the OpenAPI
// document of the same routes. A reload then parses and generates nothing
// new, and a replaced configuration that lingers holds no copy of its own.
//
// Replaced configurations do linger: Caddy cleans a configuration up while
// its last requests are still running, so the connections those requests
// give back to reverse_proxy's transport stay idle there until their
// timeout (2 minutes by default), and with them the whole configuration
// they were made by. Fifty reloads in half a minute kept fifty catalogues
// and fifty OpenAPI documents alive, ~1.8 MiB a configuration.
//
// A Table holds weak pointers only: a value lives while a configuration
// references it, and its entry goes with it.
package dedup

import (
	"errors"
	"runtime"
	"sync"
	"weak"
)

var errNoValue = errors.New("dedup: no value made")

// Table maps keys to shared values. The zero value is ready to use; a Table
// must not be copied.
type Table[V any] struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[V]
}

// Get returns the value of key, made by build when no configuration holds
// one: concurrent callers with one key get one value, built once. build's
// error is returned and nothing is kept. The value is shared: nobody may
// modify it.
//
// build runs under the table's lock (configurations load one at a time):
// it must not call Get on the same table.
func (t *Table[V]) Get(key string, build func() (*V, error)) (*V, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v := t.m[key].Value(); v != nil {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errNoValue
	}
	if t.m == nil {
		t.m = map[string]weak.Pointer[V]{}
	}
	wp := weak.Make(v)
	t.m[key] = wp
	runtime.AddCleanup(v, t.forget, entry[V]{key, wp})
	return v, nil
}

// entry names a table entry for its cleanup: the key and the weak pointer
// it was made with, so that a newer value under the same key stays.
type entry[V any] struct {
	key string
	wp  weak.Pointer[V]
}

func (t *Table[V]) forget(e entry[V]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[e.key] == e.wp {
		delete(t.m, e.key)
	}
}

// Len returns the number of entries, values collected but not yet
// forgotten included.
func (t *Table[V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
