//go:build unix

package audit

import (
	"io/fs"
	"syscall"
)

// fileOwner returns the owner and group of a file, from its stat.
func fileOwner(info fs.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}
