package main

import (
	"fmt"
	"time"
)

// CPU time next to time to exec: rolesenv's from its resource usage (the
// child's too, which --once execs in the same process), the floor's from
// the floor program's (floorproc.go).

const cpuColumns = "*CPU* is user + system time of the rolesenv process, median (with `--once` the child, /bin/echo, runs in the same process and adds about half a millisecond); *floor CPU* is the floor program's, a fresh Go process that does the floor's round once (the floor's own time is measured in the harness, without a process start). The baseline runs in the harness, whose CPU is shared with the proxies: it has no CPU column."

// cpuCell is the median of a CPU sample, or – when none was taken.
func cpuCell(s sample) string {
	if len(s) == 0 {
		return "–"
	}
	return ms(s.median())
}

// writeTrustTable writes the cells of trust t, if any, under title; it
// reports whether it wrote any.
func (r *report) writeTrustTable(p printer, t trust, title string) bool {
	var cells []*execCell
	for _, c := range r.exec {
		if c.trust == t {
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		return false
	}
	p("%s\n\n", title)
	p("| refs | RTT | latency | creds | rolesenv median | CPU | p90 | floor | floor CPU | over floor | calls/start | spread |\n")
	p("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range cells {
		p("| %s | %v | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.size.name, c.rtt, c.mode, c.creds,
			ms(c.rolesenv.median()), cpuCell(c.rolesenvCPU), ms(c.rolesenv.p90()), ms(c.floor.median()), cpuCell(c.floorCPU),
			ms(over(c)), callsCell(c), pct(c.rolesenv.spread()))
	}
	return true
}

// plainTargetRows judge the plain-HTTP target cells: at most the floor
// plus one round trip.
func (r *report) plainTargetRows() []targetRow {
	var rows []targetRow
	for _, m := range []latencyMode{viaToxiproxy, viaEmulator} {
		for _, cr := range []creds{credStatic, credRA} {
			c := r.cell(size50, m, targetRTT, cr, trustPlain)
			if c == nil {
				continue
			}
			d := targetRTT - over(c)
			rows = append(rows, targetRow{
				target:   fmt.Sprintf("50 secrets, 20 ms RTT (%s), plain HTTP, %s: at most the floor + 1 RTT", m, cr),
				measured: fmt.Sprintf("%s ms; floor %s ms; floor + %s ms", ms(c.rolesenv.median()), ms(c.floor.median()), ms(over(c))),
				ok:       d >= 0, margin: marginText(d),
				why: "No handshake and no roots here: what is over the floor is the Go process's start and package initialisation (see *Package initialisation*), the configuration, the env file.",
			})
		}
	}
	return rows
}

// cpuTargetRows judge the CPU time of the 50-secret starts at 20 ms
// through Toxiproxy: at most twice the floor program's.
func (r *report) cpuTargetRows() []targetRow {
	var rows []targetRow
	for _, t := range []trust{trustPlain, trustSystem, trustBundle} {
		for _, cr := range []creds{credStatic, credRA} {
			c := r.cell(size50, viaToxiproxy, targetRTT, cr, t)
			if c == nil || len(c.rolesenvCPU) == 0 || len(c.floorCPU) == 0 {
				continue
			}
			re, fl := c.rolesenvCPU.median(), c.floorCPU.median()
			x := float64(re) / float64(max(fl, time.Microsecond))
			why := "rolesenv's package initialisation is larger than the floor program's (the AWS configuration's SSO, SSO OIDC, STS and sign-in clients, see *Package initialisation*), and it reads the configuration, the env file and, with Roles Anywhere, the certificate and key."
			if t == trustSystem {
				why = fmt.Sprintf("rolesenv verifies against the system's roots, which take %s ms of CPU to index here (crypto/x509 would take %s ms to load them); the floor program trusts the emulator's CA alone. %s", ms(r.rootsIndex.median()), ms(r.roots.median()), why)
			}
			rows = append(rows, targetRow{
				target:   fmt.Sprintf("CPU time of a 50-secret start (20 ms, %s, %s): at most twice the floor's", t, cr),
				measured: fmt.Sprintf("%s ms; floor program %s ms; %.1f×", ms(re), ms(fl), x),
				ok:       x <= 2, margin: marginText(2*fl - re),
				why: why,
			})
		}
	}
	return rows
}

// writeStartupDecision says what start-up leaves out, with this run's
// numbers.
func (r *report) writeStartupDecision(p printer) {
	p("**Start-up pays only for what this start needs.** ")
	p("The system's roots are read only when an endpoint is HTTPS and no CA bundle replaces them, in the background as soon as that is known, and they are indexed by subject rather than parsed: %s ms of CPU in a fresh process here, where crypto/x509's system pool takes %s ms, because it parses every certificate of the bundle and then of each file of /etc/ssl/certs, the same certificates two or three times on Debian (`internal/sysroots`; a handshake then parses the one or two roots its chain names, and is verified as crypto/tls would); the garbage collector is off until the exec (or the watch), under a memory limit; rolesenv's own regular expressions compile on first use. ", ms(r.rootsIndex.median()), ms(r.roots.median()))
	if c := r.cell(size50, viaToxiproxy, targetRTT, credStatic, trustPlain); c != nil && len(c.rolesenvCPU) > 0 {
		p("Over plain HTTP a 50-secret start now takes %s ms of CPU against the floor program's %s ms. ", ms(c.rolesenvCPU.median()), ms(c.floorCPU.median()))
	}
	p("What is left before `main` is package initialisation, mostly the SDK's (*Package initialisation*), which every command pays, `version` and `credential-process` included (*Cached `credential-process`*).\n\n")
}
