package audit

import (
	"io/fs"
	"os"
	"syscall"
)

// PrivateFile reports whether a secret or key file is private to the
// gateway (SECURITY.md H01): others have no access, and its group at most
// read access, only when that group is the process's own effective group
// and not root's. That last case is the mode a Kubernetes secret volume
// gives its files with fsGroup set: defaultMode 0400 becomes 0440, group
// fsGroup (kubernetes/kubernetes#57923), which the pod's own user holds.
func PrivateFile(info fs.FileInfo) bool {
	var gid uint32
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		gid = st.Gid
	}
	return privateMode(info.Mode().Perm(), gid, uint32(os.Getegid()))
}

// privateMode is PrivateFile's rule on a file's permission bits and group,
// for a process whose effective group is egid.
func privateMode(perm fs.FileMode, gid, egid uint32) bool {
	switch {
	case perm&0o077 == 0:
		return true
	case perm&0o037 != 0: // group write or execute, or any access by others
		return false
	}
	return gid != 0 && gid == egid
}
