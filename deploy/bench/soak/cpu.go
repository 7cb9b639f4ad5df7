package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes reads the machine's CPU time from /proc/stat, in clock ticks:
// the time stolen by the hypervisor from this VM and the total. Their
// change over a minute tells whether the VM was starved (a neighbour), a
// cause of latency that no process here controls.
func cpuTimes() (steal, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal, then guest times, which user and nice include.
func parseCPULine(line string) (steal, total uint64, err error) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, f := range fields[1:9] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i == 7 {
			steal = v
		}
	}
	return steal, total, nil
}
