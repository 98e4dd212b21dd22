package main

import "context"

const credprocUsage = `Usage: rolesenv credential-process [flags]

(The full help text is written with the command.)
`

func cmdCredentialProcess(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("credential-process", credprocUsage)
	if err := fs.parse(a, args); err != nil {
		if err == errHelp {
			return nil
		}
		return err
	}
	return notLanded("rolesenv credential-process", 3)
}
