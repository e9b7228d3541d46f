//! The boundary every export goes through: the panic guard, the thread-local last error, and
//! the checked readers of caller pointers and writers of caller outputs.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::engine::tether_engine;
use crate::status::{tether_status, FfiError};
use crate::types::{tether_error_info, tether_str};

/// The calling thread's last failure: its message (NUL-free) and details.
pub(crate) struct LastError {
    pub(crate) message: CString,
    pub(crate) info: tether_error_info,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Runs `f` behind the panic boundary. On failure the error becomes the calling thread's last
/// error and its status is returned; on success the last error is left as it was.
///
/// The failure is recorded inside the unwinding boundary, out of line, so what crosses it is the
/// status alone, in a register; with the guard inlined into each export, the C ABI grace check
/// runs 90 instructions around the engine's own instead of 109 (callgrind, `examples/abi_cost`).
#[allow(clippy::inline_always, reason = "measured: see above")]
#[inline(always)]
pub(crate) fn guard(f: impl FnOnce() -> Result<(), FfiError>) -> tether_status {
    let status = catch_unwind(AssertUnwindSafe(|| match f() {
        Ok(()) => tether_status::TETHER_OK,
        Err(e) => failed(&e),
    }));
    status.unwrap_or_else(|payload| failed(&panicked(payload.as_ref())))
}

/// A failed call: records `err` as the last error and gives its status.
#[cold]
#[inline(never)]
fn failed(err: &FfiError) -> tether_status {
    record(err);
    err.status()
}

#[cold]
#[inline(never)]
fn panicked(payload: &(dyn std::any::Any + Send)) -> FfiError {
    FfiError::Panic(panic_message(payload).into())
}

/// Runs `f` behind the panic boundary where the function has no status to return; a panic is
/// recorded as the last error and `fallback` returned.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        record(&FfiError::Panic(panic_message(payload.as_ref()).into()));
        fallback
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

fn record(err: &FfiError) {
    // A message can quote caller text (a snapshot's field names), which may hold NUL bytes.
    let text = err.to_string().replace('\0', "\\0");
    let message = CString::new(text).unwrap_or_default();
    let last = LastError { message, info: err.info() };
    // `try_with`: during thread teardown the slot may be gone; the status still tells.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some(last));
}

/// Reads the calling thread's last error, if any.
pub(crate) fn with_last_error<T>(f: impl FnOnce(Option<&LastError>) -> T) -> T {
    LAST_ERROR.with(|slot| f(slot.borrow().as_ref()))
}

/// The engine behind a handle.
///
/// # Safety
/// `p` is NULL or a live handle from `tether_engine_new*` not yet freed.
#[inline]
pub(crate) unsafe fn handle<'a>(p: *const tether_engine) -> Result<&'a tether_engine, FfiError> {
    // SAFETY: the caller promises `p` is NULL or a live handle; `as_ref` handles NULL.
    // Not `ok_or(..)`: that builds the error on every call and runs its drop glue on success.
    match unsafe { p.as_ref() } {
        Some(engine) => Ok(engine),
        None => Err(FfiError::Null("engine")),
    }
}

/// Borrows `len` bytes at `ptr` as UTF-8 text. NULL with length 0 is the empty string.
///
/// # Safety
/// Unless NULL, `ptr` points to `len` readable bytes that stay unchanged during the call.
#[inline]
pub(crate) unsafe fn text<'a>(ptr: *const u8, len: usize, what: &'static str) -> Result<&'a str, FfiError> {
    if ptr.is_null() {
        return if len == 0 { Ok("") } else { Err(FfiError::Null(what)) };
    }
    if isize::try_from(len).is_err() {
        return Err(too_long(len, what));
    }
    // SAFETY: non-NULL, length fits an object, and the caller promises `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    utf8(bytes, what)
}

#[cold]
#[inline(never)]
fn too_long(len: usize, what: &'static str) -> FfiError {
    FfiError::BadArgument { what, problem: format!("{len} bytes is more than any object can hold").into() }
}

/// Checks that `bytes` are UTF-8. Identifiers are short and nearly always ASCII, and checking
/// them for a high bit is several times cheaper than full validation; anything else is
/// validated in full, out of line.
#[inline]
fn utf8<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, FfiError> {
    if is_ascii(bytes) {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    not_ascii(bytes, what)
}

#[inline(never)]
fn not_ascii<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a str, FfiError> {
    std::str::from_utf8(bytes).map_err(|e| FfiError::NotUtf8 { what, at: e.valid_up_to() })
}

/// Whether no byte has its high bit set, read a word at a time: whole words from the start,
/// then the last eight bytes (overlapping what was read), so an id of 8 to 16 bytes costs two
/// loads and no loop over single bytes.
#[inline]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = bytes.len();
    if n < 8 {
        return bytes.is_ascii();
    }
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    let mut seen = word(n - 8);
    let mut at = 0;
    while at + 8 < n {
        seen |= word(at);
        at += 8;
    }
    seen & HIGH == 0
}

/// Borrows a NUL-terminated C string as UTF-8 text.
///
/// # Safety
/// Unless NULL, `p` points to a NUL-terminated string that stays unchanged during the call.
pub(crate) unsafe fn cstr<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::Null(what));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    utf8(bytes, what)
}

/// An identifier argument as C passed it: (pointer, length) or NUL-terminated.
#[derive(Clone, Copy)]
pub(crate) enum Id {
    Bytes(*const u8, usize),
    CStr(*const c_char),
}

impl Id {
    /// Borrows the identifier as text.
    ///
    /// # Safety
    /// As for [`text`] or [`cstr`].
    #[inline]
    pub(crate) unsafe fn read<'a>(self, what: &'static str) -> Result<&'a str, FfiError> {
        match self {
            // SAFETY: forwarded from the caller.
            Self::Bytes(ptr, len) => unsafe { text(ptr, len, what) },
            // SAFETY: forwarded from the caller.
            Self::CStr(p) => unsafe { cstr(p, what) },
        }
    }
}

/// Borrows an array of `count` (pointer, length) identifiers as text.
///
/// # Safety
/// Unless NULL, `items` points to `count` readable `tether_str`, each valid as for [`text`].
pub(crate) unsafe fn str_array<'a>(
    items: *const tether_str,
    count: usize,
    what: &'static str,
) -> Result<Vec<&'a str>, FfiError> {
    if items.is_null() {
        return if count == 0 { Ok(Vec::new()) } else { Err(FfiError::Null(what)) };
    }
    if count > isize::MAX as usize / std::mem::size_of::<tether_str>() {
        return Err(FfiError::BadArgument {
            what,
            problem: format!("{count} entries is more than any array can hold").into(),
        });
    }
    // SAFETY: non-NULL, size fits an object, and the caller promises `count` readable entries.
    let items = unsafe { std::slice::from_raw_parts(items, count) };
    // SAFETY: each entry is valid as the caller promised.
    items.iter().map(|s| unsafe { text(s.ptr, s.len, what) }).collect()
}

/// A caller's output slot, checked non-NULL before any work is done so that a failure can
/// never leave an output half written.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// A required output.
    ///
    /// # Safety
    /// Unless NULL, `p` is valid for a write of `T` and aligned, for the whole call.
    #[inline]
    pub(crate) unsafe fn new(p: *mut T, what: &'static str) -> Result<Self, FfiError> {
        match NonNull::new(p) {
            Some(p) => Ok(Self(p)),
            None => Err(FfiError::Null(what)),
        }
    }

    /// An output the caller may decline by passing NULL.
    ///
    /// # Safety
    /// As for [`Out::new`].
    pub(crate) unsafe fn optional(p: *mut T) -> Option<Self> {
        NonNull::new(p).map(Self)
    }

    /// Writes the value, without reading or dropping what was there (it may be uninitialised).
    #[inline]
    pub(crate) fn write(self, value: T) {
        // SAFETY: non-NULL by construction; validity and alignment were promised to `new`.
        unsafe { self.0.as_ptr().write(value) }
    }

    /// Zero-fills the output, then lets `fill` write its fields in place through the pointer
    /// (see `fill.rs`); `fill` must leave every field a valid value.
    #[inline]
    pub(crate) fn fill(self, fill: impl FnOnce(*mut T)) {
        let p = self.0.as_ptr();
        // SAFETY: non-NULL by construction; validity and alignment were promised to `new`.
        unsafe { p.write_bytes(0, 1) };
        fill(p);
    }
}

/// Runs `read` behind the boundary on a handle and writes its value to the required `out`:
/// the whole body of every export that reads one value of the engine.
///
/// # Safety
/// `engine` is NULL or live; `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn read_value<T>(
    engine: *const tether_engine,
    out: *mut T,
    read: impl FnOnce(&tether_engine) -> T,
) -> tether_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (h, out) = unsafe { (handle(engine)?, Out::new(out, "out")?) };
        out.write(read(h));
        Ok(())
    })
}

/// Runs `read` behind the boundary on a handle and hands the text it makes to the caller (see
/// [`give_string`]): the whole body of every export that returns a document.
///
/// # Safety
/// `engine` is NULL or live; `out_json` and `out_len` are NULL or writable.
pub(crate) unsafe fn read_document(
    engine: *const tether_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
    read: impl FnOnce(&tether_engine) -> String,
) -> tether_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (h, out, len) = unsafe { (handle(engine)?, Out::new(out_json, "out_json")?, Out::optional(out_len)) };
        give_string(read(h), out, len)
    })
}

/// Hands `text` to the caller as an owned NUL-terminated string (freed by
/// `tether_string_free`), and its length in bytes when `len` is given.
pub(crate) fn give_string(text: String, out: Out<*mut c_char>, len: Option<Out<usize>>) -> Result<(), FfiError> {
    let n = text.len();
    let owned = CString::new(text).map_err(|e| {
        FfiError::Panic(format!("an output string holds a NUL byte at offset {}", e.nul_position()).into())
    })?;
    out.write(owned.into_raw());
    if let Some(len) = len {
        len.write(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_ascii;

    /// The word-at-a-time check agrees with the standard library's at every length and every
    /// position of a high bit, up to three words.
    #[test]
    fn is_ascii_agrees_with_std() {
        for len in 0..=24 {
            let clean = vec![b'a'; len];
            assert!(is_ascii(&clean), "{len} ASCII bytes");
            for at in 0..len {
                let mut bytes = clean.clone();
                bytes[at] = 0x80;
                assert_eq!(is_ascii(&bytes), bytes.is_ascii(), "high bit at {at} of {len}");
            }
        }
    }
}
