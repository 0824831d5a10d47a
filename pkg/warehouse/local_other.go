//go:build !linux

package warehouse

import "syscall"

// sysProcAttr puts the server in its own process group. Outside Linux there
// is no parent-death signal: a server whose parent is killed keeps running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
