//go:build !race

package caddyplugin

const raceEnabled = false
