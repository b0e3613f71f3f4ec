package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd's process get SIGKILL when the test binary dies,
// even when it is killed (go test's timeout): an orphaned 'lessee serve'
// would otherwise keep taking the tasks of later runs from their Redis
// database, with an S3 endpoint long gone.
func dieWithTest(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
