// The Go package's C shim: one library call per function, with the failure captured on the
// thread that made it (see shim.h).
#include <stdlib.h>

#include "shim.h"

// Captures the calling thread's last error into a new failure for the Go side, which frees
// it. A failed allocation leaves *fail NULL; the Go side still has the status.
static tether_status capture(tether_status status, tg_failure **fail) {
    if (status == TETHER_OK) {
        return status;
    }
    tg_failure *f = calloc(1, sizeof *f);
    if (f != NULL) {
        tether_last_error_info(&f->info);
        f->message = tether_last_error();
    }
    *fail = f;
    return status;
}

void tg_failure_free(tg_failure *f) {
    if (f != NULL) {
        tether_string_free(f->message);
        free(f);
    }
}

void tg_noop(void) {}

tether_status tg_config_default(tether_config *out, tg_failure **fail) {
    return capture(tether_config_default(out), fail);
}

tether_status tg_new(const tether_config *config, bool manual, uint64_t wall_unix_ns, tether_engine **out,
                     tg_failure **fail) {
    if (manual) {
        return capture(tether_engine_new_manual_clock(config, wall_unix_ns, out), fail);
    }
    return capture(tether_engine_new(config, out), fail);
}

tether_status tg_advance(const tether_engine *e, uint64_t by_ns, tg_failure **fail) {
    return capture(tether_engine_advance_clock(e, by_ns), fail);
}

tether_status tg_config(const tether_engine *e, tether_config *out, tg_failure **fail) {
    return capture(tether_engine_config(e, out), fail);
}

tether_status tg_set_grace_period(const tether_engine *e, uint64_t grace_ns, tg_failure **fail) {
    return capture(tether_engine_set_grace_period(e, grace_ns), fail);
}

tether_status tg_set_default_migration_timeout(const tether_engine *e, uint64_t timeout_ns, uint64_t *effective_ns,
                                               tg_failure **fail) {
    return capture(tether_engine_set_default_migration_timeout(e, timeout_ns, effective_ns), fail);
}

tether_status tg_publish(const tether_engine *e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                         size_t node_len, uint32_t mode, bool readonly, uint64_t migration_timeout_ns,
                         tether_publish_result *out, tg_failure **fail) {
    return capture(tether_engine_publish(e, volume, volume_len, node, node_len, mode, readonly,
                                         migration_timeout_ns, out),
                   fail);
}

tether_status tg_unpublish(const tether_engine *e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                           size_t node_len, tether_unpublish_result *out, tg_failure **fail) {
    return capture(tether_engine_unpublish(e, volume, volume_len, node, node_len, out), fail);
}

tether_status tg_unpublish_all(const tether_engine *e, const uint8_t *volume, size_t volume_len,
                               tether_unpublish_result *out, tg_failure **fail) {
    return capture(tether_engine_unpublish_all(e, volume, volume_len, out), fail);
}

tether_status tg_clear_stale(const tether_engine *e, const uint8_t *volume, size_t volume_len, const uint8_t *node,
                             size_t node_len, tether_stale_result *out, tg_failure **fail) {
    return capture(tether_engine_clear_stale(e, volume, volume_len, node, node_len, out), fail);
}

tether_status tg_is_within_grace_period(const tether_engine *e, const uint8_t *volume, size_t volume_len,
                                        uint64_t grace_ns, bool *out, tg_failure **fail) {
    return capture(tether_engine_is_within_grace_period(e, volume, volume_len, grace_ns, out), fail);
}

tether_status tg_detach_timestamp_get(const tether_engine *e, const uint8_t *volume, size_t volume_len, bool *found,
                                      tether_detach_record *out, tg_failure **fail) {
    return capture(tether_engine_detach_timestamp_get(e, volume, volume_len, found, out), fail);
}

tether_status tg_detach_timestamp_clear(const tether_engine *e, const uint8_t *volume, size_t volume_len,
                                        bool *cleared, tg_failure **fail) {
    return capture(tether_engine_detach_timestamp_clear(e, volume, volume_len, cleared), fail);
}

tether_status tg_get(const tether_engine *e, const uint8_t *volume, size_t volume_len, bool *found,
                     tether_attachment *out, tg_failure **fail) {
    return capture(tether_engine_get(e, volume, volume_len, found, out), fail);
}

tether_status tg_epoch(const tether_engine *e, const uint8_t *volume, size_t volume_len, uint64_t *out,
                       tg_failure **fail) {
    return capture(tether_engine_epoch(e, volume, volume_len, out), fail);
}

tether_status tg_list(const tether_engine *e, char **out_json, size_t *out_len, tg_failure **fail) {
    return capture(tether_engine_list(e, out_json, out_len), fail);
}

tether_status tg_attached_count(const tether_engine *e, size_t *out, tg_failure **fail) {
    return capture(tether_engine_attached_count(e, out), fail);
}

tether_status tg_stats(const tether_engine *e, tether_stats *out, tg_failure **fail) {
    return capture(tether_engine_stats(e, out), fail);
}

tether_status tg_reconcile(const tether_engine *e, const uint8_t *names, size_t names_len, const size_t *lens,
                           size_t count, char **out_json, size_t *out_len, tg_failure **fail) {
    return capture(tether_engine_reconcile_packed(e, names, names_len, lens, count, out_json, out_len), fail);
}

tether_status tg_snapshot(const tether_engine *e, char **out_json, size_t *out_len, tg_failure **fail) {
    return capture(tether_engine_snapshot(e, out_json, out_len), fail);
}

tether_status tg_restore(const tether_engine *e, const uint8_t *json, size_t json_len, tg_failure **fail) {
    return capture(tether_engine_restore(e, json, json_len), fail);
}
