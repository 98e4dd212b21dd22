package main

import (
	"log/slog"

	"github.com/rolesenv/rolesenv/inject"
)

// The binary's pages. Code and read-only data of rolesenv's executable
// that the process touches are mapped into it, and counted in its RSS,
// 64 KB at a time (the kernel's fault-around): package initialisation
// and start-up touch most of the binary, a check a large part of it.
// They are page cache, shared with every process mapping the file and
// counted in a cgroup's memory.current whether mapped or not, but ps and
// top count them for each process. A watching rolesenv unmaps them when
// start-up is done and again after each check (dropBinaryPages), so that
// between checks it holds only what it maps while it waits.

// dropPages unmaps the binary's pages; a failure only costs memory and
// is logged at debug level.
func dropPages(log *slog.Logger) {
	if _, err := dropBinaryPages(); err != nil {
		log.Debug("the binary's pages stay mapped", "err", err)
	}
}

// dropPagesAfterCheck returns observe (which may be nil) followed by
// dropPages: the pages a check mapped are unmapped when it settles.
func dropPagesAfterCheck(log *slog.Logger, observe func(inject.CheckEvent)) func(inject.CheckEvent) {
	return func(e inject.CheckEvent) {
		if observe != nil {
			observe(e)
		}
		dropPages(log)
	}
}
