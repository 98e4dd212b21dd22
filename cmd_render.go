package main

import "context"

const renderUsage = `Usage: rolesenv render [flags]

(The full help text is written with the command.)
`

func cmdRender(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("render", renderUsage)
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	return notLanded("rolesenv render", 4)
}
