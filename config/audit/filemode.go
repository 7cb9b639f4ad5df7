package audit

import (
	"bytes"
	"io/fs"
	"os"
	"strconv"
)

// PrivateFile reports whether a secret or key file is private to the
// gateway (SECURITY.md H01): others have no access, and its group at most
// read access, only when the file is root's or the process's own, its group
// is the process's effective group and not root's, and no other account
// uses that group (as its primary group in /etc/passwd, or as a member in
// /etc/group). That last case is the mode a Kubernetes secret volume gives
// its files with fsGroup set: defaultMode 0400 becomes 0440, owner root,
// group fsGroup (kubernetes/kubernetes#57923), the pod's own.
func PrivateFile(info fs.FileInfo) bool {
	perm := info.Mode().Perm()
	if perm&0o077 == 0 {
		return true // the databases need not be read
	}
	uid, gid, ok := fileOwner(info)
	if !ok {
		return false // no owner to judge the group by
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	group, _ := os.ReadFile("/etc/group")
	return privateMode(perm, uid, gid, uint32(os.Geteuid()), uint32(os.Getegid()), passwd, group)
}

// ownGroupRead is PrivateFile's rule on a file's permission bits, owner and
// group, for a process of effective user euid and group egid: the group
// may read, nothing more, and others nothing.
func ownGroupRead(perm fs.FileMode, uid, gid, euid, egid uint32) bool {
	switch {
	case perm&0o077 == 0:
		return true
	case perm&0o037 != 0: // group write or execute, or any access by others
		return false
	}
	return (uid == 0 || uid == euid) && gid != 0 && gid == egid
}

// groupShared reports whether an account other than euid uses group gid,
// by the passwd and group databases' text: as its primary group, or as a
// member. A member the passwd text does not name, or a database that could
// not be read (nil), counts as another account.
func groupShared(passwd, group []byte, gid, euid uint32) bool {
	if passwd == nil || group == nil {
		return true
	}
	uids := map[string]uint32{}
	for line := range bytes.Lines(passwd) {
		f := bytes.Split(bytes.TrimSpace(line), []byte(":"))
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.ParseUint(string(f[2]), 10, 32)
		primary, err2 := strconv.ParseUint(string(f[3]), 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		uids[string(f[0])] = uint32(uid)
		if uint32(primary) == gid && uint32(uid) != euid {
			return true
		}
	}
	for line := range bytes.Lines(group) {
		f := bytes.Split(bytes.TrimSpace(line), []byte(":"))
		if len(f) < 4 || string(f[2]) != strconv.FormatUint(uint64(gid), 10) {
			continue
		}
		for _, m := range bytes.Split(f[3], []byte(",")) {
			if len(m) == 0 {
				continue
			}
			if uid, ok := uids[string(m)]; !ok || uid != euid {
				return true
			}
		}
	}
	return false
}

// privateMode is PrivateFile's rule on a file's mode, owner and group, for
// a process of effective user euid and group egid, given the passwd and
// group databases' text.
func privateMode(perm fs.FileMode, uid, gid, euid, egid uint32, passwd, group []byte) bool {
	if perm&0o077 == 0 {
		return true
	}
	return ownGroupRead(perm, uid, gid, euid, egid) && !groupShared(passwd, group, gid, euid)
}
