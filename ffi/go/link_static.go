// Linking, by default: the archive of an installed prefix, found through pkg-config
// (PKG_CONFIG_PATH), so a program's binary carries the engine and needs no libtether.so.

//go:build !tether_shared

package tether

// The build tag is on the file rather than on a #cgo line because Go's build cache keys a package
// on its files, not on pkg-config's answer: a tag that only changed a #cgo line would reuse the
// other linking's cached package.

/*
#cgo pkg-config: --static --define-variable=tether_library=:libtether.a tether
*/
import "C"
