package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// User is an account to run the child as.
type User struct {
	Name   string // as given, for messages
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
}

// UserError is a --user that cannot be used. It is a configuration error.
type UserError struct {
	Spec string
	Err  error
}

func (e *UserError) Error() string { return fmt.Sprintf("--user %s: %v", e.Spec, e.Err) }
func (e *UserError) Unwrap() error { return e.Err }
func (e *UserError) Config() bool  { return true }

// Hint explains the root requirement.
func (e *UserError) Hint() string {
	if errors.Is(e.Err, errNotRoot) {
		return "rolesenv must run as root to start the command as another user (it can then read a root-only key that the command cannot)"
	}
	return ""
}

var errNotRoot = errors.New("switching users needs root")

// geteuid is replaced in tests.
var geteuid = os.Geteuid

// LookupUser resolves "USER[:GROUP]", each a name or a number. The primary
// group is GROUP, or else the user's own; the supplementary groups are
// those the group database lists the user in (initgroups(3) semantics). A
// numeric USER without a passwd entry needs an explicit GROUP. It refuses
// when rolesenv is not root.
func LookupUser(spec string) (*User, error) {
	fail := func(err error) (*User, error) { return nil, &UserError{Spec: spec, Err: err} }
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" || (hasGroup && group == "") {
		return fail(errors.New("want USER or USER:GROUP"))
	}
	if euid := geteuid(); euid != 0 {
		return fail(fmt.Errorf("%w (rolesenv runs as uid %d)", errNotRoot, euid))
	}
	u := &User{Name: spec}
	account, err := lookupAccount(name, &u.UID)
	if err != nil {
		return fail(err)
	}
	switch {
	case hasGroup:
		u.GID, err = lookupGroup(group)
	case account != nil:
		u.GID, err = parseID(account.Gid, fmt.Sprintf("user %q has a non-numeric gid", name))
	default:
		err = fmt.Errorf("uid %s has no passwd entry; give its group as %s:GROUP", name, name)
	}
	if err != nil {
		return fail(err)
	}
	if u.Groups, err = groupsOf(account, u.GID, hasGroup); err != nil {
		return fail(err)
	}
	return u, nil
}

// lookupAccount sets uid from name, a user name or number, and returns its
// passwd entry (nil for a number without one).
func lookupAccount(name string, uid *uint32) (*user.User, error) {
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		*uid = uint32(id)
		account, _ := user.LookupId(name)
		return account, nil
	}
	account, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("unknown user %q", name)
	}
	*uid, err = parseID(account.Uid, fmt.Sprintf("user %q has a non-numeric uid", name))
	return account, err
}

// groupsOf returns gid followed by the supplementary groups of account;
// with an explicit primary group (replaced), the account's own primary
// group is left out.
func groupsOf(account *user.User, gid uint32, replaced bool) ([]uint32, error) {
	groups := []uint32{gid}
	if account == nil {
		return groups, nil
	}
	ids, err := account.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("cannot list the groups of %q: %v", account.Username, err)
	}
	for _, s := range ids {
		if s == account.Gid && replaced {
			continue
		}
		if id, err := strconv.ParseUint(s, 10, 32); err == nil && !slices.Contains(groups, uint32(id)) {
			groups = append(groups, uint32(id))
		}
	}
	return groups, nil
}

func parseID(s, msg string) (uint32, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New(msg)
	}
	return uint32(id), nil
}

func lookupGroup(group string) (uint32, error) {
	if id, err := strconv.ParseUint(group, 10, 32); err == nil {
		return uint32(id), nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("unknown group %q", group)
	}
	return parseID(g.Gid, fmt.Sprintf("group %q has a non-numeric gid", group))
}

func (u *User) credential() *syscall.Credential {
	return &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: slices.Clone(u.Groups)}
}

// become switches this process to u (for Exec): groups, then gid, then
// uid, since each step needs the privilege the next one drops.
func (u *User) become() error {
	groups := make([]int, len(u.Groups))
	for i, g := range u.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return err
	}
	if err := syscall.Setgid(int(u.GID)); err != nil {
		return err
	}
	return syscall.Setuid(int(u.UID))
}
