package profiler

// SetCheckKernelStacks turns the kernel stack cache's check mode on or off.
func SetCheckKernelStacks(on bool) { checkKernelStacks = on }

// SetCheckUserStacks turns the user stack cache's check mode on or off.
func SetCheckUserStacks(on bool) { checkUserStacks = on }

// SetUserStackCache turns the user stack cache on (the default) or off.
func SetUserStackCache(on bool) { noUserStackCache = !on }

// Known reports whether a continuous capture still holds process pid.
func (c *Continuous) Known(pid int) bool {
	m := &c.r.c.s.procs
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byPID[uint32(pid)] != nil
}

// SetThreadsNice sets the nice value of every thread of the process.
var SetThreadsNice = setThreadsNice
