package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// compare measures two rolesenv binaries on the cells that the start-up
// targets are about, alternating them sample by sample so that the
// machine's load touches both alike, and prints a table: the numbers
// before and after a change (`-rolesenv OLD -compare NEW`).
func (b *bench) compare(ctx context.Context, w io.Writer, other string, samples int) error {
	id, err := b.identity()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "| refs | RTT | latency | creds | trust | A median | B median | A CPU | B CPU | A p90 | B p90 | floor median | floor CPU |\n")
	fmt.Fprintf(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range []*execCell{
		{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credStatic},
		{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credRA},
		{size: size50, mode: viaToxiproxy, rtt: 100 * time.Millisecond, creds: credRA},
		{size: size50, mode: viaEmulator, rtt: 20 * time.Millisecond, creds: credRA},
		{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credRA, trust: trustBundle},
		{size: size1, mode: viaEmulator, rtt: 0, creds: credStatic},
		{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credStatic, trust: trustPlain},
		{size: size50, mode: viaToxiproxy, rtt: 20 * time.Millisecond, creds: credRA, trust: trustPlain},
	} {
		logf("compare: %s", c.key())
		a := *c
		bb := *c
		if err := b.measureExec(ctx, id, &a, samples, false); err != nil {
			return err
		}
		saved := b.rolesenv
		b.rolesenv = other
		err := b.measureExec(ctx, id, &bb, samples, false)
		b.rolesenv = saved
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "| %s | %v | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.size.name, c.rtt, c.mode, c.creds, c.trust,
			ms(a.rolesenv.median()), ms(bb.rolesenv.median()), cpuCell(a.rolesenvCPU), cpuCell(bb.rolesenvCPU), ms(a.rolesenv.p90()), ms(bb.rolesenv.p90()),
			ms(sample(append(a.floor, bb.floor...)).median()), cpuCell(append(a.floorCPU, bb.floorCPU...)))
	}
	return nil
}
