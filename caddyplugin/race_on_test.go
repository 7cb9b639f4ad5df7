//go:build race

package caddyplugin

// sync.Pool drops items at random under the race detector.
const raceEnabled = true
