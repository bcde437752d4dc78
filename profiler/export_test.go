package profiler

// SetCheckKernelStacks turns the kernel stack cache's check mode on or off.
func SetCheckKernelStacks(on bool) { checkKernelStacks = on }
