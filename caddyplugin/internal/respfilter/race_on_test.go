//go:build race

package respfilter

// sync.Pool drops items at random under the race detector.
const raceEnabled = true
