package main

import "context"

const devUsage = `Usage: rolesenv dev [flags]

(The full help text is written with the command.)
`

func cmdDev(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("dev", devUsage)
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	return notLanded("rolesenv dev", 2)
}
