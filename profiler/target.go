package profiler

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"golang.org/x/sys/unix"
)

// filterList is FILTER_LIST in bpf/common.h: the ids compared in the
// programs themselves.
const filterList = bpf.SamplerLimitLIMIT_FILTER_LIST

// target is what a capture profiles: the whole host, pids, tids, a process
// name, or a command scorch starts.
type target struct {
	mode bpf.TargetMode
	pids []uint32
	tids []uint32
	comm [commLen]byte
	cmd  *exec.Cmd
	// exited is closed when a started command has exited, or when every
	// pid or tid target has.
	exited chan struct{}
	// state is the started command's exit state, set before exited closes;
	// stopped says scorch ended it (the capture's duration was over).
	state   *os.ProcessState
	stopped bool
}

func newTarget(p capture.Params) *target {
	t := &target{mode: bpf.SamplerTargetModeTARGET_ALL}
	switch {
	case len(p.PIDs) > 0:
		t.mode = bpf.SamplerTargetModeTARGET_PID
		for _, pid := range p.PIDs {
			t.pids = append(t.pids, uint32(pid))
		}
	case len(p.TIDs) > 0:
		t.mode = bpf.SamplerTargetModeTARGET_TID
		for _, tid := range p.TIDs {
			t.tids = append(t.tids, uint32(tid))
		}
	case p.Comm != "":
		t.mode = bpf.SamplerTargetModeTARGET_COMM
		copy(t.comm[:commLen-1], p.Comm)
	case len(p.Command) > 0:
		t.mode = bpf.SamplerTargetModeTARGET_PID
	}
	return t
}

// configure sets the target variables of bpf/common.h.
func (t *target) configure(v *commonSpecs, follow bool) error {
	// A fixed list of at most filterList ids is compared in the programs
	// themselves, cheaper than a map lookup on every event; a started
	// command and followed forks change the set, so they use the maps.
	ids := t.pids
	if t.mode == bpf.SamplerTargetModeTARGET_TID {
		ids = t.tids
	}
	var list [filterList]uint32
	n := uint32(0)
	if !follow && t.cmd == nil && len(ids) > 0 && len(ids) <= int(filterList) {
		n = uint32(copy(list[:], ids))
	}
	return setVars(
		varValue{v.FilterMode, t.mode},
		varValue{v.FilterComm, t.comm},
		varValue{v.FilterList, list},
		varValue{v.FilterListLen, n},
		varValue{v.FollowForks, follow},
	)
}

// fill writes the pid and tid lists into the filter maps.
func (t *target) fill(pids, tids *ebpf.Map) error {
	one := uint8(1)
	for _, pid := range t.pids {
		if err := pids.Put(pid, one); err != nil {
			return fmt.Errorf("adding pid %d to the filter: %w", pid, err)
		}
	}
	for _, tid := range t.tids {
		if err := tids.Put(tid, one); err != nil {
			return fmt.Errorf("adding tid %d to the filter: %w", tid, err)
		}
	}
	return nil
}

// startCommand starts argv stopped right after its exec, adds it to the
// pid filter, then lets it run, so that its first instruction is profiled.
func (t *target) startCommand(argv []string, pids *ebpf.Map, opts Options) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stdout = opts.CommandStdout
	cmd.Stderr = opts.CommandStderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stderr
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL}

	// ptrace requests must come from the thread that started the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil || !ws.Stopped() {
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			return fmt.Errorf("starting %s: waiting for its exec: %w", argv[0], err)
		}
		return fmt.Errorf("starting %s: did not stop at exec (status %#x)", argv[0], uint32(ws))
	}
	if err := pids.Put(uint32(pid), uint8(1)); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("adding pid %d to the filter: %w", pid, err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("releasing %s: %w", argv[0], err)
	}
	t.cmd = cmd
	t.pids = append(t.pids, uint32(pid))
	t.exited = make(chan struct{})
	go func() {
		cmd.Wait()
		t.state = cmd.ProcessState
		close(t.exited)
	}()
	return nil
}

// ExitCode is a command's status as a shell gives it: its exit code, or
// 128+N when signal N ended it.
func ExitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// watchTargets closes exited once every pid or tid target has exited (gone
// from /proc, or a zombie), checking every interval until done is closed.
func (t *target) watchTargets(done <-chan struct{}, interval time.Duration) {
	ids := t.pids
	if t.mode == bpf.SamplerTargetModeTARGET_TID {
		ids = t.tids
	}
	if t.cmd != nil || len(ids) == 0 || (t.mode != bpf.SamplerTargetModeTARGET_PID && t.mode != bpf.SamplerTargetModeTARGET_TID) {
		return
	}
	t.exited = make(chan struct{})
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			alive := false
			for _, id := range ids {
				if taskAlive(id) {
					alive = true
					break
				}
			}
			if !alive {
				close(t.exited)
				return
			}
		}
	}()
}

// targetsGone reports whether a capture of pids or tids ended because
// every target exited.
func (t *target) targetsGone() bool {
	if t.cmd != nil || t.exited == nil {
		return false
	}
	select {
	case <-t.exited:
		return true
	default:
		return false
	}
}

// taskAlive reports whether a process or thread runs: /proc/ID/stat exists
// and its state is not zombie or dead.
func taskAlive(id uint32) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", id))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the comm may hold ')', the state follows the last.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	st := b[i+2]
	return st != 'Z' && st != 'X' && st != 'x'
}

// stopCommand ends a started command that is still running.
func (t *target) stopCommand() {
	if t.cmd == nil {
		return
	}
	select {
	case <-t.exited:
		return
	default:
	}
	t.stopped = true
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.exited:
	case <-time.After(2 * time.Second):
		t.cmd.Process.Kill()
		<-t.exited
	}
}
