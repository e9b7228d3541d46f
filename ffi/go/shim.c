// The Go package's C shim: one library call per function, with the failure captured on the
// thread that made it (see shim.h).
#include <stdlib.h>

#include "shim.h"

static const tether_engine *engine(tg_engine e) {
    return (const tether_engine *)e;
}

static tg_failure out_of_memory = {.info = {.status = TETHER_PANIC}, .message = NULL};

// NULL for success; otherwise the calling thread's last error, copied for the Go side.
static tg_failure *capture(tether_status status) {
    if (status == TETHER_OK) {
        return NULL;
    }
    tg_failure *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return &out_of_memory;
    }
    tether_last_error_info(&f->info);
    f->info.status = status;
    f->message = tether_last_error();
    return f;
}

void tg_failure_free(tg_failure *f) {
    if (f != NULL && f != &out_of_memory) {
        tether_string_free(f->message);
        free(f);
    }
}

void tg_noop(void) {}

tg_failure *tg_capture(tether_status status) {
    return capture(status);
}

tg_failure *tg_config_default(tether_config *out) {
    return capture(tether_config_default(out));
}

tg_failure *tg_new(const tether_config *config, bool manual, uint64_t wall_unix_ns, tg_engine *out) {
    tether_engine *made = NULL;
    tether_status status = manual ? tether_engine_new_manual_clock(config, wall_unix_ns, &made)
                                  : tether_engine_new(config, &made);
    if (status == TETHER_OK) {
        *out = (tg_engine)made;
    }
    return capture(status);
}

void tg_free(tg_engine e) {
    tether_engine_free((tether_engine *)e);
}

tg_failure *tg_advance(tg_engine e, uint64_t by_ns) {
    return capture(tether_engine_advance_clock(engine(e), by_ns));
}

tg_failure *tg_config(tg_engine e, tether_config *out) {
    return capture(tether_engine_config(engine(e), out));
}

tg_failure *tg_set_grace_period(tg_engine e, uint64_t grace_ns) {
    return capture(tether_engine_set_grace_period(engine(e), grace_ns));
}

tg_failure *tg_set_default_migration_timeout(tg_engine e, uint64_t timeout_ns, uint64_t *effective_ns) {
    return capture(tether_engine_set_default_migration_timeout(engine(e), timeout_ns, effective_ns));
}

tg_failure *tg_publish(tg_engine e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                         size_t node_len, uint32_t mode, bool readonly, uint64_t migration_timeout_ns,
                         tether_publish_result *out) {
    return capture(tether_engine_publish(engine(e), volume, volume_len, node, node_len, mode, readonly,
                                         migration_timeout_ns, out));
}

tg_failure *tg_unpublish(tg_engine e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                           size_t node_len, tether_unpublish_result *out) {
    return capture(tether_engine_unpublish(engine(e), volume, volume_len, node, node_len, out));
}

tg_failure *tg_unpublish_all(tg_engine e, const uint8_t *volume, size_t volume_len,
                               tether_unpublish_result *out) {
    return capture(tether_engine_unpublish_all(engine(e), volume, volume_len, out));
}

tg_failure *tg_clear_stale(tg_engine e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                             size_t node_len, tether_stale_result *out) {
    return capture(tether_engine_clear_stale(engine(e), volume, volume_len, node, node_len, out));
}

void tg_is_within_grace_period(tg_engine e, const uint8_t *volume, size_t volume_len, uint64_t grace_ns,
                               tg_grace_result *out) {
    out->within = false;
    out->failure = (uintptr_t)capture(
        tether_engine_is_within_grace_period(engine(e), volume, volume_len, grace_ns, &out->within));
}

tg_failure *tg_failure_at(uintptr_t failure) {
    return (tg_failure *)failure;
}

tg_failure *tg_detach_timestamp_get(tg_engine e, const uint8_t *volume, size_t volume_len, bool *found,
                                      tether_detach_record *out) {
    return capture(tether_engine_detach_timestamp_get(engine(e), volume, volume_len, found, out));
}

tg_failure *tg_detach_timestamp_clear(tg_engine e, const uint8_t *volume, size_t volume_len,
                                        bool *cleared) {
    return capture(tether_engine_detach_timestamp_clear(engine(e), volume, volume_len, cleared));
}

tg_failure *tg_get(tg_engine e, const uint8_t *volume, size_t volume_len, bool *found,
                     tether_attachment *out) {
    return capture(tether_engine_get(engine(e), volume, volume_len, found, out));
}

tg_failure *tg_epoch(tg_engine e, const uint8_t *volume, size_t volume_len, uint64_t *out) {
    return capture(tether_engine_epoch(engine(e), volume, volume_len, out));
}

tg_failure *tg_list(tg_engine e, char **out_json, size_t *out_len) {
    return capture(tether_engine_list(engine(e), out_json, out_len));
}

tg_failure *tg_attached_count(tg_engine e, size_t *out) {
    return capture(tether_engine_attached_count(engine(e), out));
}

tg_failure *tg_stats(tg_engine e, tether_stats *out) {
    return capture(tether_engine_stats(engine(e), out));
}

tg_failure *tg_reconcile(tg_engine e, const uint8_t *names, size_t names_len, const size_t *lens,
                           size_t count, char **out_json, size_t *out_len) {
    return capture(tether_engine_reconcile_packed(engine(e), names, names_len, lens, count, out_json, out_len));
}

tg_failure *tg_snapshot(tg_engine e, char **out_json, size_t *out_len) {
    return capture(tether_engine_snapshot(engine(e), out_json, out_len));
}

tg_failure *tg_restore(tg_engine e, const uint8_t *json, size_t json_len) {
    return capture(tether_engine_restore(engine(e), json, json_len));
}

tg_failure *tg_fence(tg_engine e, const uint8_t *volume, size_t volume_len, bool *found, tether_fence *out) {
    return capture(tether_engine_fence(engine(e), volume, volume_len, found, out));
}

tg_failure *tg_set_term(tg_engine e, uint64_t term, uint64_t *in_force) {
    return capture(tether_engine_set_term(engine(e), term, in_force));
}

tg_failure *tg_term(tg_engine e, uint64_t *out) {
    return capture(tether_engine_term(engine(e), out));
}

tg_failure *tg_refence(tg_engine e, char **out_json, size_t *out_len) {
    return capture(tether_engine_refence(engine(e), out_json, out_len));
}

tg_failure *tg_forget(tg_engine e, const uint8_t *volume, size_t volume_len, bool *forgotten) {
    return capture(tether_engine_forget(engine(e), volume, volume_len, forgotten));
}

tg_failure *tg_fence_check_supersedes(const tether_fence *fence, const uint8_t *volume, size_t volume_len,
                                      bool has_applied, uint64_t applied_epoch) {
    return capture(tether_fence_check_supersedes(fence, volume, volume_len, has_applied, applied_epoch));
}

tg_failure *tg_fence_check_session(const tether_fence *fence, const uint8_t *volume, size_t volume_len,
                                   const uint8_t *node, size_t node_len, uint64_t presented_epoch) {
    return capture(tether_fence_check_session(fence, volume, volume_len, node, node_len, presented_epoch));
}
