//go:build !linux && !darwin

package inject

// systemArgLimits assumes 256 KiB elsewhere, the smallest ARG_MAX of the
// systems rolesenv is built for.
func systemArgLimits() argLimits { return argLimits{total: 256 << 10} }
