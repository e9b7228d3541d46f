// Benchmark hooks of the Go package (see benchhook.go): the library's grace check called in a
// loop from C, so a Go benchmark can time the same check without any cgo crossing beside the
// check through cgo, in the same process, on the same engine and keys.
#ifndef TETHER_GO_BENCHHOOK_H
#define TETHER_GO_BENCHHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "shim.h"

// count keys copied out of Go memory, each into an allocation of its own (as a Go or Rust
// program holds its ids), so the C loop touches memory as the Go benchmark does.
typedef struct tg_bench_keys tg_bench_keys;

// Copies the count keys packed back to back in names (lens[i] bytes each). NULL if out of
// memory. Ownership: the caller frees the result with tg_bench_keys_free; names and lens are
// only read during the call.
tg_bench_keys *tg_bench_keys_new(const uint8_t *names, const size_t *lens, size_t count);
void tg_bench_keys_free(tg_bench_keys *k);

// Makes iterations grace checks of keys in the Go benchmark's scattered order (key
// ((first + i) * 7919) % count for i = 1 ..= iterations) and returns how many were inside
// grace_ns; a failed check counts as outside. Thread-safe as the library's call is.
uint64_t tg_bench_grace(tg_engine e, const tg_bench_keys *k, uint64_t first, uint64_t iterations, uint64_t grace_ns);

#endif
