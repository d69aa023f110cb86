package faults

import "syscall"

// dieWithParent makes a child process get SIGKILL when the test binary
// goes away, cleanups or not.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
