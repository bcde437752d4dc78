package fleet

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Origin is where a process runs, as its cgroup path tells: the systemd
// unit, the container and the Kubernetes pod.
type Origin struct {
	Unit        string // systemd service unit without ".service", e.g. "nginx"
	ContainerID string // 64 hex digits (docker, containerd, CRI-O, podman)
	PodUID      string // Kubernetes pod UID with dashes
}

// containerIDRe finds a container id in a cgroup path component: docker-ID.scope,
// cri-containerd-ID.scope, crio-ID.scope, libpod-ID.scope or a bare ID
// (cgroupfs driver, /kubepods/burstable/podUID/ID, /docker/ID).
var containerIDRe = regexp.MustCompile(`^(?:[a-z-]+-)?([0-9a-f]{64})(?:\.scope)?$`)

// podRe finds a pod UID: "pod1234-..." (cgroupfs) or
// "kubepods-burstable-pod1234_....slice" (systemd driver, dashes as _).
var podRe = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$`)

// ParseCgroup reads /proc/PID/cgroup: the unified (v2) hierarchy's path
// when there is one, else the v1 name=systemd path, else the first v1
// controller path that is not "/".
func ParseCgroup(data []byte) Origin {
	var v2, systemd, other string
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		// hierarchy-ID:controller-list:cgroup-path; the path may hold ':'.
		id, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		ctrl, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case string(id) == "0" && len(ctrl) == 0:
			v2 = string(path)
		case string(ctrl) == "name=systemd":
			systemd = string(path)
		case other == "" && len(path) > 1:
			other = string(path)
		}
	}
	path := v2
	if path == "" || path == "/" {
		path = systemd
	}
	if path == "" || path == "/" {
		path = other
	}
	return originOfPath(path)
}

func originOfPath(path string) Origin {
	var o Origin
	for part := range strings.SplitSeq(path, "/") {
		if part == "" {
			continue
		}
		if m := podRe.FindStringSubmatch(part); m != nil {
			o.PodUID = strings.ReplaceAll(m[1], "_", "-")
			continue
		}
		if m := containerIDRe.FindStringSubmatch(part); m != nil {
			o.ContainerID = m[1]
			continue
		}
		// The innermost service wins (a unit under user@1000.service), but
		// the user manager itself and units inside a container are not
		// the service: the container is.
		if name, ok := strings.CutSuffix(part, ".service"); ok && name != "" &&
			!strings.HasPrefix(name, "user@") && o.ContainerID == "" {
			o.Unit = name
		}
	}
	if o.ContainerID != "" {
		o.Unit = ""
	}
	return o
}

// Identity is what the labels of a process's series come from.
type Identity struct {
	Service     string // service_name
	Unit        string
	ContainerID string
	Container   string // container name, where the runtime's files tell
	Pod         string
	Namespace   string
	Kernel      bool // a kernel thread
}

// identifier finds the identity of processes from /proc and the container
// runtimes' files under root ("/" on the host; a DaemonSet mounts the
// host's /var/log and /var/lib/docker). Entries are kept while a process
// keeps appearing in windows.
type identifier struct {
	root string

	mu      sync.Mutex
	byPID   map[uint32]*pidEntry
	byCID   map[string]containerInfo
	podDirs map[string][2]string // pod UID -> namespace, name
	epoch   uint64
}

type pidEntry struct {
	id    Identity
	start string // process start time, to tell a reused pid
	epoch uint64
}

type containerInfo struct{ name, pod, namespace string }

func newIdentifier(root string) *identifier {
	if root == "" {
		root = "/"
	}
	return &identifier{root: root, byPID: make(map[uint32]*pidEntry), byCID: make(map[string]containerInfo)}
}

func (d *identifier) path(p ...string) string {
	return filepath.Join(append([]string{d.root}, p...)...)
}

// identify returns the identity of pid; comm is the process name from the
// capture, used when neither a unit nor a container names the service and
// when the process is gone.
func (d *identifier) identify(pid uint32, comm string) Identity {
	d.mu.Lock()
	defer d.mu.Unlock()
	pidDir := d.path("proc", strconv.FormatUint(uint64(pid), 10))
	stat, statErr := os.ReadFile(filepath.Join(pidDir, "stat"))
	start, kthread := parseStat(stat)
	if e, ok := d.byPID[pid]; ok && (statErr != nil || e.start == start) {
		e.epoch = d.epoch
		return e.id
	}
	id := Identity{Service: comm}
	if statErr == nil {
		if kthread {
			id = Identity{Service: "kernel", Kernel: true}
		} else if cg, err := os.ReadFile(filepath.Join(pidDir, "cgroup")); err == nil {
			o := ParseCgroup(cg)
			id.Unit, id.ContainerID = o.Unit, o.ContainerID
			if o.ContainerID != "" {
				ci := d.container(o.ContainerID, o.PodUID)
				id.Container, id.Pod, id.Namespace = ci.name, ci.pod, ci.namespace
			}
			switch {
			case id.Unit != "":
				id.Service = id.Unit
			case id.Namespace != "" && id.Container != "":
				id.Service = id.Namespace + "/" + id.Container // Grafana Alloy's convention
			case id.Container != "":
				id.Service = id.Container
			}
		}
	}
	if id.Service == "" {
		id.Service = "unknown"
	}
	if statErr == nil { // a process gone before its first look is not kept
		d.byPID[pid] = &pidEntry{id: id, start: start, epoch: d.epoch}
	}
	return id
}

// sweep forgets processes not seen since the last sweep; called once per
// window so the tables stay as large as the host's live processes.
func (d *identifier) sweep() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for pid, e := range d.byPID {
		if e.epoch != d.epoch {
			delete(d.byPID, pid)
		}
	}
	live := make(map[string]bool)
	for _, e := range d.byPID {
		live[e.id.ContainerID] = true
	}
	for cid := range d.byCID {
		if !live[cid] {
			delete(d.byCID, cid)
		}
	}
	d.podDirs = nil // re-read on the next unknown pod
	d.epoch++
}

// parseStat returns the start time field and whether the PF_KTHREAD flag
// is set, from /proc/PID/stat (the comm field may hold spaces and ')').
func parseStat(b []byte) (start string, kthread bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")": state(3) ppid(4) ... flags(9) ... starttime(22).
	if len(f) < 20 {
		return "", false
	}
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	return f[19], flags&0x00200000 != 0
}

// container names a container from the files the runtimes leave on the
// host: kubelet's /var/log/containers/POD_NAMESPACE_CONTAINER-ID.log links,
// docker's /var/lib/docker/containers/ID/config.v2.json, and kubelet's
// /var/log/pods/NAMESPACE_POD_UID directories for the pod alone.
func (d *identifier) container(cid, podUID string) containerInfo {
	if ci, ok := d.byCID[cid]; ok {
		return ci
	}
	var ci containerInfo
	if m, _ := filepath.Glob(d.path("var", "log", "containers", "*-"+cid+".log")); len(m) > 0 {
		base := strings.TrimSuffix(filepath.Base(m[0]), "-"+cid+".log")
		if parts := strings.SplitN(base, "_", 3); len(parts) == 3 {
			ci = containerInfo{pod: parts[0], namespace: parts[1], name: parts[2]}
		}
	}
	if ci.name == "" {
		if b, err := os.ReadFile(d.path("var", "lib", "docker", "containers", cid, "config.v2.json")); err == nil {
			var cfg struct{ Name string }
			if json.Unmarshal(b, &cfg) == nil {
				ci.name = strings.TrimPrefix(cfg.Name, "/")
			}
		}
	}
	if ci.pod == "" && podUID != "" {
		if d.podDirs == nil {
			d.podDirs = make(map[string][2]string)
			entries, _ := os.ReadDir(d.path("var", "log", "pods"))
			for _, e := range entries {
				// NAMESPACE_NAME_UID; names and namespaces hold no '_'.
				if parts := strings.SplitN(e.Name(), "_", 3); len(parts) == 3 {
					d.podDirs[parts[2]] = [2]string{parts[0], parts[1]}
				}
			}
		}
		if p, ok := d.podDirs[podUID]; ok {
			ci.namespace, ci.pod = p[0], p[1]
		}
	}
	d.byCID[cid] = ci
	return ci
}
