package warehouse

import "syscall"

// sysProcAttr puts the server in its own process group (Stop signals the
// group; a Ctrl-C in verdict's terminal reaches verdict, which stops the
// server in order) and has the kernel send it SIGTERM when its parent dies.
//
// Pdeathsig fires when the OS thread that started the child exits, not the
// process. Go keeps its threads for the life of the process unless a
// goroutine exits while locked to its thread with runtime.LockOSThread, which
// the code that calls StartLocal must not do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
