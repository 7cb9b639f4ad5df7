package audit

import (
	"io/fs"
	"testing"
)

// req: H01
// TestPrivateMode: a secret file is private with no access for group and
// others, or with read access for the process's own non-root group only
// (a Kubernetes secret volume with fsGroup: 0440, group fsGroup).
func TestPrivateMode(t *testing.T) {
	const own, other = 65532, 1000
	for _, tc := range []struct {
		perm     fs.FileMode
		gid      uint32
		egid     uint32
		private  bool
		scenario string
	}{
		{0o600, other, own, true, "owner only"},
		{0o400, 0, 0, true, "owner read only, root group"},
		{0o440, own, own, true, "kubelet's fsGroup mode"},
		{0o640, own, own, true, "owner writes, own group reads"},
		{0o440, other, own, false, "another group reads"},
		{0o440, 0, 0, false, "root's group reads"},
		{0o460, own, own, false, "own group writes"},
		{0o450, own, own, false, "own group executes"},
		{0o444, own, own, false, "others read"},
		{0o404, own, own, false, "others read, group nothing"},
		{0o401, own, own, false, "others execute"},
	} {
		if got := privateMode(tc.perm, tc.gid, tc.egid); got != tc.private {
			t.Errorf("%s (%#o, gid %d, egid %d): private %v, want %v", tc.scenario, tc.perm, tc.gid, tc.egid, got, tc.private)
		}
	}
}
