//go:build !linux

package faults

import "syscall"

// dieWithParent: only Linux can tie a child's life to its parent's; elsewhere
// the suite's cleanups stop serve.
func dieWithParent() *syscall.SysProcAttr { return nil }
