// Linking with `-tags tether_shared`: libtether.so of an installed prefix, found through
// pkg-config (PKG_CONFIG_PATH); the program then needs the library at run time.

//go:build tether_shared

package tether

/*
#cgo pkg-config: tether
*/
import "C"
