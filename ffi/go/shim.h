// The Go package's C shim. Each tg_ function makes one library call and, when it fails,
// captures the thread-local last error on the same thread, inside the same cgo call: a
// goroutine may change threads between two cgo calls, so reading the error in a second call
// could return another call's error. Each returns NULL on success and the failure otherwise
// (returned rather than stored through an argument, which would cost a cgo pointer check on
// every call); the grace check, the hot path, returns its failure as an integer instead (below).
#ifndef TETHER_GO_SHIM_H
#define TETHER_GO_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether.h"

// The engine handle as an integer: cgo checks every pointer argument for Go pointers at run
// time, a C handle included; it does not check an integer. The shim casts it back.
typedef uintptr_t tg_engine;

// A failed call's details (info.status is its status), allocated only on failure; freed by
// tg_failure_free. If that allocation fails, a static failure with status TETHER_PANIC and no
// message stands in.
typedef struct tg_failure {
    tether_error_info info;
    // The library's message (owned: freed with the failure); NULL if it could not be read.
    char *message;
} tg_failure;

void tg_failure_free(tg_failure *f);

// Does nothing: the cost of a cgo call alone, for the benchmarks.
void tg_noop(void);
// The failure of a call made outside this shim (NULL for success): for the test hooks of
// debug_hooks.go, which call a function the public header does not declare.
tg_failure *tg_capture(tether_status status);

tg_failure *tg_config_default(tether_config *out);
tg_failure *tg_new(const tether_config *config, bool manual, uint64_t wall_unix_ns, tg_engine *out);
void tg_free(tg_engine e);
tg_failure *tg_advance(tg_engine e, uint64_t by_ns);
tg_failure *tg_config(tg_engine e, tether_config *out);
tg_failure *tg_set_grace_period(tg_engine e, uint64_t grace_ns);
tg_failure *tg_set_default_migration_timeout(tg_engine e, uint64_t timeout_ns, uint64_t *effective_ns);

tg_failure *tg_publish(tg_engine e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                         size_t node_len, uint32_t mode, bool readonly, uint64_t migration_timeout_ns,
                         tether_publish_result *out);
tg_failure *tg_unpublish(tg_engine e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                           size_t node_len, tether_unpublish_result *out);
tg_failure *tg_unpublish_all(tg_engine e, const uint8_t *volume, size_t volume_len,
                               tether_unpublish_result *out);
tg_failure *tg_clear_stale(tg_engine e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                             size_t node_len, tether_stale_result *out);

// The grace check, the package's hot path, returns nothing: a cgo call with a result pays for
// two extra calls (_cgo_topofstack) to find where to store it. Its answer and its failure come
// back in one struct of the caller's that holds no pointer type, so cgo has nothing to check in
// it either. failure is 0 on success, otherwise a tg_failure * as an integer (read it with
// tg_failure_at).
typedef struct tg_grace_result {
    uintptr_t failure;
    bool within;
} tg_grace_result;

void tg_is_within_grace_period(tg_engine e, const uint8_t *volume, size_t volume_len, uint64_t grace_ns,
                               tg_grace_result *out);
tg_failure *tg_failure_at(uintptr_t failure);
tg_failure *tg_detach_timestamp_get(tg_engine e, const uint8_t *volume, size_t volume_len, bool *found,
                                      tether_detach_record *out);
tg_failure *tg_detach_timestamp_clear(tg_engine e, const uint8_t *volume, size_t volume_len,
                                        bool *cleared);
tg_failure *tg_get(tg_engine e, const uint8_t *volume, size_t volume_len, bool *found,
                     tether_attachment *out);
tg_failure *tg_epoch(tg_engine e, const uint8_t *volume, size_t volume_len, uint64_t *out);
tg_failure *tg_list(tg_engine e, char **out_json, size_t *out_len);
tg_failure *tg_attached_count(tg_engine e, size_t *out);
tg_failure *tg_stats(tg_engine e, tether_stats *out);

tg_failure *tg_reconcile(tg_engine e, const uint8_t *names, size_t names_len, const size_t *lens,
                           size_t count, char **out_json, size_t *out_len);
tg_failure *tg_snapshot(tg_engine e, char **out_json, size_t *out_len);
tg_failure *tg_restore(tg_engine e, const uint8_t *json, size_t json_len);

tg_failure *tg_fence(tg_engine e, const uint8_t *volume, size_t volume_len, bool *found, tether_fence *out);
tg_failure *tg_set_term(tg_engine e, uint64_t term, uint64_t *in_force);
tg_failure *tg_term(tg_engine e, uint64_t *out);
tg_failure *tg_refence(tg_engine e, char **out_json, size_t *out_len);
tg_failure *tg_forget(tg_engine e, const uint8_t *volume, size_t volume_len, bool *forgotten);
tg_failure *tg_fence_check_supersedes(const tether_fence *fence, const uint8_t *volume, size_t volume_len,
                                      bool has_applied, uint64_t applied_epoch);
tg_failure *tg_fence_check_session(const tether_fence *fence, const uint8_t *volume, size_t volume_len,
                                   const uint8_t *node, size_t node_len, uint64_t presented_epoch);

#endif
