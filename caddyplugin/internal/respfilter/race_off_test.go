//go:build !race

package respfilter

const raceEnabled = false
