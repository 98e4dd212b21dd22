package main

import "context"

const checkUsage = `Usage: rolesenv check [flags]

(The full help text is written with the command.)
`

func cmdCheck(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("check", checkUsage)
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	return notLanded("rolesenv check", 6)
}
