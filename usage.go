package main

const mainUsage = `rolesenv runs a command with secrets from AWS Secrets Manager and SSM
Parameter Store in its environment, and restarts it when they are rotated.
Credentials come from IAM Roles Anywhere (an X.509 certificate and key) or
from the standard AWS credential chain.

Usage:
  rolesenv run [flags] -- COMMAND [ARGS...]
  rolesenv check [flags] [-- COMMAND]
  rolesenv render [flags]
  rolesenv credential-process [flags]
  rolesenv dev [--dir DIR] [--port N] [--http]
  rolesenv version

Commands:
  run                 resolve secrets, start COMMAND with them, restart it on rotation
  check               validate certificates, credentials and every reference
  render              print the environment COMMAND would get (secrets masked)
  credential-process  print Roles Anywhere credentials for credential_process
  dev                 start a local AWS emulator for trying rolesenv
  pkcs11-list         list the certificates and keys on PKCS#11 tokens
  version             print the version

Examples:
  rolesenv run --env-file /etc/app/app.env -- /usr/bin/app --port 8080
  rolesenv check --env-file /etc/app/app.env
  rolesenv render --env-file app.env --format json

Every flag can also be set with ROLESENV_<NAME> (--trust-anchor-arn is
ROLESENV_TRUST_ANCHOR_ARN); a flag on the command line wins.
Run 'rolesenv COMMAND --help' for a command's flags.
`

// credLogUsage is the help of the credential and logging flags that run,
// check and render share.
const credLogUsage = `  --region REGION, --certificate FILE, --private-key FILE, --intermediates FILE,
  --trust-anchor-arn ARN, --profile-arn ARN, --role-arn ARN, --session-duration N,
  --role-session-name NAME, --endpoint URL, --private-key-passphrase-file FILE,
  --tpm-device PATH, --tpm-key-password-file FILE, --no-tpm-key-password,
  --pkcs11-lib PATH, --pkcs11-pin-file FILE, --reuse-pin
  --log-level LEVEL      debug, info, warn or error (default info)
  --log-format FORMAT    text or json (default text)
  --debug                same as --log-level debug
`
