package audit

import (
	"io/fs"
	"testing"
)

// req: H01
// TestPrivateMode: a secret file is private with no access for group and
// others, or with read access for its group only when the file is root's
// or the gateway's own, the group is the gateway's effective group, not
// root's, and no other account uses it (a Kubernetes secret volume with
// fsGroup: 0440, owner root, group fsGroup, in an image where only the
// gateway's user has that group).
func TestPrivateMode(t *testing.T) {
	const me, other, shared = 65532, 1000, 111
	const passwd = "root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n" +
		"www:x:1000:111::/var/www:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n"
	const group = "root:x:0:\nnonroot:x:65532:\nweb:x:111:\nnogroup:x:65534:\nsetgid:x:4242:nobody\nghost:x:4343:unknown\n"
	for _, tc := range []struct {
		scenario       string
		perm           fs.FileMode
		uid, gid, egid uint32
		passwd, group  string
		private        bool
	}{
		{"owner only", 0o600, other, other, me, passwd, group, true},
		{"owner read only, root group", 0o400, 0, 0, 0, passwd, group, true},
		{"kubelet's fsGroup mode, owner root", 0o440, 0, me, me, passwd, group, true},
		{"own file, own group reads", 0o640, me, me, me, passwd, group, true},
		{"another owner (nobody), own group", 0o440, 65534, me, me, passwd, group, false},
		{"another group reads", 0o440, 0, other, me, passwd, group, false},
		{"root's group reads", 0o440, 0, 0, 0, passwd, group, false},
		{"own group also another account's primary group", 0o440, 0, shared, shared, passwd, group, false},
		{"own group with a member (a setgid directory's group)", 0o440, 0, 4242, 4242, passwd, group, false},
		{"own group with a member passwd does not name", 0o440, 0, 4343, 4343, passwd, group, false},
		{"databases unreadable", 0o440, 0, me, me, "", "", false},
		{"own group writes", 0o460, 0, me, me, passwd, group, false},
		{"own group executes", 0o450, 0, me, me, passwd, group, false},
		{"others read", 0o444, 0, me, me, passwd, group, false},
		{"others read, group nothing", 0o404, 0, me, me, passwd, group, false},
		{"others execute", 0o401, 0, me, me, passwd, group, false},
	} {
		var pw, gr []byte
		if tc.passwd != "" {
			pw, gr = []byte(tc.passwd), []byte(tc.group)
		}
		if got := privateMode(tc.perm, tc.uid, tc.gid, me, tc.egid, pw, gr); got != tc.private {
			t.Errorf("%s (%#o, owner %d, group %d, egid %d): private %v, want %v", tc.scenario, tc.perm, tc.uid, tc.gid, tc.egid, got, tc.private)
		}
	}
}
