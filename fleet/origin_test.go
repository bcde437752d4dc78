package fleet

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseCgroup(t *testing.T) {
	const cid = "3f4e2a9d0c1b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
	for _, tc := range []struct {
		name, in string
		want     Origin
	}{
		{"systemd service", "0::/system.slice/nginx.service\n", Origin{Unit: "nginx"}},
		{"user unit under the user manager", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service\n", Origin{Unit: "backup"}},
		{"session scope", "0::/user.slice/user-0.slice/session-3.scope\n", Origin{}},
		{"root", "0::/\n", Origin{}},
		{"docker", "0::/system.slice/docker-" + cid + ".scope\n", Origin{ContainerID: cid}},
		{"docker cgroupfs", "0::/docker/" + cid + "\n", Origin{ContainerID: cid}},
		{"podman", "0::/machine.slice/libpod-" + cid + ".scope/container\n", Origin{ContainerID: cid}},
		{"k8s systemd driver", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8f7e6d5c_4b3a_2910_8f7e_6d5c4b3a2910.slice/cri-containerd-" + cid + ".scope\n",
			Origin{ContainerID: cid, PodUID: "8f7e6d5c-4b3a-2910-8f7e-6d5c4b3a2910"}},
		{"k8s cgroupfs", "0::/kubepods/besteffort/pod8f7e6d5c-4b3a-2910-8f7e-6d5c4b3a2910/" + cid + "\n",
			Origin{ContainerID: cid, PodUID: "8f7e6d5c-4b3a-2910-8f7e-6d5c4b3a2910"}},
		{"crio", "0::/kubepods.slice/kubepods-pod8f7e6d5c_4b3a_2910_8f7e_6d5c4b3a2910.slice/crio-" + cid + ".scope\n",
			Origin{ContainerID: cid, PodUID: "8f7e6d5c-4b3a-2910-8f7e-6d5c4b3a2910"}},
		{"service inside a container is the container", "0::/system.slice/docker-" + cid + ".scope/system.slice/sshd.service\n", Origin{ContainerID: cid}},
		{"v1 hybrid: name=systemd", "12:memory:/x\n1:name=systemd:/system.slice/cron.service\n0::/\n", Origin{Unit: "cron"}},
		{"v1 only", "4:memory:/system.slice/postgresql.service\n3:cpu:/\n", Origin{Unit: "postgresql"}},
		{"garbage", "no colons here\n::\n", Origin{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseCgroup([]byte(tc.in)); got != tc.want {
				t.Errorf("ParseCgroup(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/nginx.service\n"))
	f.Add([]byte("0::/kubepods/besteffort/pod8f7e6d5c-4b3a-2910-8f7e-6d5c4b3a2910/3f4e2a9d0c1b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f\n"))
	f.Add([]byte("1:name=systemd:/a.service\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o := ParseCgroup(b)
		if o.ContainerID != "" && o.Unit != "" {
			t.Errorf("both a container and a unit: %+v", o)
		}
		if o.ContainerID != "" && len(o.ContainerID) != 64 {
			t.Errorf("container id %q", o.ContainerID)
		}
	})
}

// TestIdentify builds a fake /proc and the runtimes' files and checks the
// service_name order: systemd unit, then container, then process name.
func TestIdentify(t *testing.T) {
	const cid = "3f4e2a9d0c1b5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
	const cid2 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const uid = "8f7e6d5c-4b3a-2910-8f7e-6d5c4b3a2910"
	root := t.TempDir()
	write := func(path, data string) {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(comm string, flags uint64) string {
		// pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22)
		return "10 (" + comm + ") S 1 1 1 0 -1 " + itoa(flags) + " 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n"
	}
	write("proc/10/stat", stat("nginx: worker", 0x400100))
	write("proc/10/cgroup", "0::/system.slice/nginx.service\n")
	write("proc/11/stat", stat("java", 0x400100))
	write("proc/11/cgroup", "0::/kubepods/burstable/pod"+uid+"/"+cid+"\n")
	write("var/log/containers/web-7d9f_shop_api-"+cid+".log", "")
	write("proc/12/stat", stat("redis-server", 0x400100))
	write("proc/12/cgroup", "0::/system.slice/docker-"+cid2+".scope\n")
	write("var/lib/docker/containers/"+cid2+"/config.v2.json", `{"Name":"/cache"}`)
	write("proc/13/stat", stat("kworker/0:1", 0x04208060))
	write("proc/13/cgroup", "0::/\n")
	write("proc/14/stat", stat("my app", 0x400100))
	write("proc/14/cgroup", "0::/user.slice/user-0.slice/session-1.scope\n")
	d := newIdentifier(root)
	for _, tc := range []struct {
		pid  uint32
		comm string
		want Identity
	}{
		{10, "nginx", Identity{Service: "nginx", Unit: "nginx"}},
		{11, "java", Identity{Service: "shop/api", ContainerID: cid, Container: "api", Pod: "web-7d9f", Namespace: "shop"}},
		{12, "redis-server", Identity{Service: "cache", ContainerID: cid2, Container: "cache"}},
		{13, "kworker/0:1", Identity{Service: "kernel", Kernel: true}},
		{14, "my app", Identity{Service: "my app"}},
		{99, "gone", Identity{Service: "gone"}}, // exited: the capture's name
	} {
		if got := d.identify(tc.pid, tc.comm); got != tc.want {
			t.Errorf("pid %d: %+v, want %+v", tc.pid, got, tc.want)
		}
	}
	// A sweep forgets processes not seen since; a reused pid is looked up again.
	d.sweep()
	d.identify(10, "nginx")
	d.sweep()
	if _, ok := d.byPID[11]; ok {
		t.Error("pid 11 kept after two sweeps without it")
	}
	write("proc/10/stat", "10 (sh) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 99999 0 0\n")
	write("proc/10/cgroup", "0::/\n")
	if got := d.identify(10, "sh"); got.Service != "sh" {
		t.Errorf("reused pid 10: %+v, want service sh", got)
	}
}

func itoa(n uint64) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
