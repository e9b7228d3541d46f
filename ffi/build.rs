// Gives the shared library its SONAME, libtether.so.<major>.<minor>, from the crate's version.
//
// While the version is 0.x every minor release may change the ABI, so major.minor is the
// compatibility promise the SONAME makes. The exported symbols need no version script: rustc
// exports only the cdylib's `#[no_mangle]` functions, all named tether_* (checked by
// `make test-install`).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        let minor = env!("CARGO_PKG_VERSION_MINOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtether.so.{major}.{minor}");
    }
}
