package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procStat is what /proc says about one process at one moment.
type procStat struct {
	cpu      time.Duration // on-CPU time of its live threads (schedstat, ns)
	ticksCPU time.Duration // utime+stime, exited threads included (10 ms ticks)
	rssKB    int64         // VmRSS
	hwmKB    int64         // VmHWM: the peak RSS
	anonKB   int64         // RssAnon
	fileKB   int64         // RssFile
	wakeups  int64         // voluntary context switches of the live threads
	threads  int
}

// readProc reads /proc/PID. It needs Linux.
func readProc(pid int) (procStat, error) {
	var st procStat
	base := fmt.Sprintf("/proc/%d", pid)
	status, err := os.ReadFile(base + "/status")
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			st.rssKB = n
		case "VmHWM":
			st.hwmKB = n
		case "RssAnon":
			st.anonKB = n
		case "RssFile":
			st.fileKB = n
		case "Threads":
			st.threads = int(n)
		}
	}
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return st, err
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 14th and 15th fields of the whole line.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			stt, _ := strconv.ParseInt(f[12], 10, 64)
			st.ticksCPU = time.Duration(ut+stt) * 10 * time.Millisecond
		}
	}
	tasks, err := filepath.Glob(base + "/task/*")
	if err != nil {
		return st, err
	}
	for _, t := range tasks {
		if b, err := os.ReadFile(t + "/schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				st.cpu += time.Duration(ns)
			}
		}
		if b, err := os.ReadFile(t + "/status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					st.wakeups += n
				}
			}
		}
	}
	return st, nil
}
