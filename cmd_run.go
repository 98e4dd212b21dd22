package main

import "context"

const runUsage = `Usage: rolesenv run [flags]

(The full help text is written with the command.)
`

func cmdRun(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("run", runUsage)
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	return notLanded("rolesenv run", 5)
}
