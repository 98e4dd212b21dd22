// Package pkcs11key signs with private keys that live on a PKCS#11 token
// (an HSM, a smart card, a YubiKey's PIV application, SoftHSM) and reads
// certificates from it. A [Key] is a crypto.Signer whose Sign asks the
// token; the key is never read into memory.
//
// Objects are named by RFC 7512 pkcs11: URIs ([ParseURI]): the token by
// its label, manufacturer, model or serial, the slot by its id or
// description, the object by its label (object=) and id (id=). Call
// [Open] for a key, [Certificate] or [Certificates] for certificates,
// [List] to see what a token holds. A URI that matches more than one
// object is an error that lists them (their labels, ids and tokens).
//
// The module (a C shared library) is loaded with purego, without cgo,
// once per process, and initialised with CKF_OS_LOCKING_OK; it is
// finalised when its last user closes. This needs a dynamically linked
// program (a static one cannot load a shared library) on 64-bit Linux or
// macOS, where CK_ULONG is 8 bytes.
//
// A Key keeps one session, logged in as the user, for its life. A session
// the token lost (a token removed and put back, a module whose daemon
// restarted) is opened again, with a new login, at the next signature;
// a token that is not there gives ErrTokenGone, which Error.Unavailable
// reports. Keys that ask for a context-specific login before each
// signature (CKA_ALWAYS_AUTHENTICATE, as PIV's) get the same PIN again
// only with Options.ReusePIN. Other processes may use the token at the
// same time: the module arbitrates. Some modules (SoftHSM's file store)
// show a token that another process is writing to as absent or empty
// for a moment: before a search ends with no token, and before Open
// gives up on a token that failed, the module is finalised and
// initialised again (which ends every session in the process; keys open
// theirs again) and the search is tried again, a few times within about
// a quarter of a second.
//
// Security: the PIN is kept in memory for the life of the Key, to log in
// again. After the token refuses it (or reports it locked), a Key never
// sends it again, so that retries cannot lock the PIN. A locked PIN is
// never sent at all. Any process that can reach the token and knows the
// PIN can sign with the key: the token keeps the key from being copied,
// not from being used.
package pkcs11key
