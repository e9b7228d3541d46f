/* The attachment contract through the C ABI: each publish and unpublish outcome and refusal
 * arrives as the right status, outcome kind, epoch, nodes and error details. */
#include <stdlib.h>

#include "check.h"

static void publish_outcomes(void) {
    tether_engine *e = manual_engine();
    tether_publish_result r;

    CHECK_OK(tether_engine_publish(e, ID("pvc-1"), ID("node-a"), TETHER_RWO, false, 0, &r));
    CHECK(r.kind == TETHER_PUBLISHED_ATTACHED && r.epoch == 1 && r.other_node.len == 0);
    CHECK(r.migration_timeout_ns == 0);

    CHECK_OK(tether_engine_publish_cstr(e, "pvc-1", "node-a", TETHER_RWO, false, 0, &r));
    CHECK(r.kind == TETHER_PUBLISHED_ALREADY_ATTACHED && r.epoch == 1);

    /* The outcome may be declined. */
    CHECK_OK(tether_engine_publish(e, ID("pvc-1"), ID("node-a"), TETHER_RWO, false, 0, NULL));

    /* Same node, other access: INCOMPATIBLE, with the existing access in the details. */
    CHECK_STATUS(tether_engine_publish(e, ID("pvc-1"), ID("node-a"), TETHER_RWO, true, 0, &r), TETHER_INCOMPATIBLE);
    tether_error_info info;
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.status == TETHER_INCOMPATIBLE && info.existing_mode == TETHER_RWO && !info.existing_readonly);
    CHECK(info.node_count == 1 && node_is(&info.nodes[0], "node-a"));
    CHECK(last_error_has("pvc-1") && last_error_has("read-only"));

    /* Another node: CONFLICT, naming the holder. */
    CHECK_STATUS(tether_engine_publish(e, ID("pvc-1"), ID("node-b"), TETHER_RWO, false, 0, &r), TETHER_CONFLICT);
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.status == TETHER_CONFLICT && info.node_count == 1 && node_is(&info.nodes[0], "node-a"));
    CHECK(last_error_has("node-a") && last_error_has("node-b"));

    uint64_t epoch = 0;
    CHECK_OK(tether_engine_epoch(e, ID("pvc-1"), &epoch));
    CHECK(epoch == 1);
    CHECK_OK(tether_engine_epoch(e, ID("never-seen"), &epoch));
    CHECK(epoch == 0);
    tether_engine_free(e);
}

static void handoff_inside_grace(void) {
    tether_engine *e = manual_engine();
    tether_publish_result r;
    tether_unpublish_result u;
    bool within = false;

    CHECK_OK(tether_engine_publish(e, ID("pvc-h"), ID("node-a"), TETHER_RWO, false, 0, &r));
    CHECK_OK(tether_engine_is_within_grace_period(e, ID("pvc-h"), 30 * SEC, &within));
    CHECK(!within);
    CHECK_OK(tether_engine_unpublish(e, ID("pvc-h"), ID("node-a"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_DETACHED && u.epoch == 2 && u.node_count == 1);
    CHECK(node_is(&u.nodes[0], "node-a"));

    CHECK_OK(tether_engine_advance_clock(e, 5 * SEC));
    CHECK_OK(tether_engine_is_within_grace_period(e, ID("pvc-h"), 30 * SEC, &within));
    CHECK(within);
    CHECK_OK(tether_engine_is_within_grace_period_cstr(e, "pvc-h", 5 * SEC, &within));
    CHECK(!within);

    bool found = false;
    tether_detach_record d;
    CHECK_OK(tether_engine_detach_timestamp_get(e, ID("pvc-h"), &found, &d));
    CHECK(found && node_is(&d.node, "node-a") && d.at_unix_ns == WALL0 && d.age_ns == 5 * SEC);

    /* A late re-attach on A, then B inside the grace period: handed off from A. */
    CHECK_OK(tether_engine_publish(e, ID("pvc-h"), ID("node-a"), TETHER_RWO, false, 0, &r));
    CHECK(r.kind == TETHER_PUBLISHED_ATTACHED && r.epoch == 3);
    CHECK_OK(tether_engine_publish(e, ID("pvc-h"), ID("node-b"), TETHER_RWO, false, 0, &r));
    CHECK(r.kind == TETHER_PUBLISHED_HANDED_OFF && r.epoch == 4 && node_is(&r.other_node, "node-a"));

    /* The record was consumed by the handoff. */
    CHECK_OK(tether_engine_detach_timestamp_get(e, ID("pvc-h"), &found, &d));
    CHECK(!found);

    /* Clearing a record: true once, then false. */
    bool cleared = false;
    CHECK_OK(tether_engine_unpublish_cstr(e, "pvc-h", "node-b", &u));
    CHECK_OK(tether_engine_detach_timestamp_clear(e, ID("pvc-h"), &cleared));
    CHECK(cleared);
    CHECK_OK(tether_engine_detach_timestamp_clear(e, ID("pvc-h"), &cleared));
    CHECK(!cleared);
    CHECK_OK(tether_engine_detach_timestamp_clear(e, ID("pvc-h"), NULL));
    CHECK_OK(tether_engine_is_within_grace_period(e, ID("pvc-h"), 30 * SEC, &within));
    CHECK(!within);
    tether_engine_free(e);
}

static void migration(void) {
    tether_engine *e = manual_engine();
    tether_publish_result r;
    tether_unpublish_result u;
    tether_error_info info;

    CHECK_OK(tether_engine_publish(e, ID("vm-disk"), ID("src"), TETHER_RWX, false, 0, &r));
    CHECK_OK(tether_engine_publish(e, ID("vm-disk"), ID("dst"), TETHER_RWX, false, 60 * SEC, &r));
    CHECK(r.kind == TETHER_PUBLISHED_MIGRATION_STARTED && node_is(&r.other_node, "src"));
    CHECK(r.migration_timeout_ns == 60 * SEC && r.epoch == 2);

    bool found = false;
    tether_attachment a;
    CHECK_OK(tether_engine_get(e, ID("vm-disk"), &found, &a));
    CHECK(found && a.mode == TETHER_RWX && a.node_count == 2 && a.migrating);
    CHECK(node_is(&a.nodes[0], "src") && node_is(&a.nodes[1], "dst") && a.migration_timeout_ns == 60 * SEC);

    CHECK_STATUS(tether_engine_publish(e, ID("vm-disk"), ID("third"), TETHER_RWX, false, 0, &r),
                 TETHER_MIGRATION_LIMIT);
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.node_count == 2 && node_is(&info.nodes[0], "src") && node_is(&info.nodes[1], "dst"));

    CHECK_OK(tether_engine_advance_clock(e, 61 * SEC));
    CHECK_STATUS(tether_engine_publish(e, ID("vm-disk"), ID("third"), TETHER_RWX, false, 0, &r),
                 TETHER_MIGRATION_TIMED_OUT);
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.elapsed_ns == 61 * SEC && info.timeout_ns == 60 * SEC && info.node_count == 2);

    /* Reconcile reports the timed-out migration once. */
    tether_str both[] = {{(const uint8_t *)"src", 3}, {(const uint8_t *)"dst", 3}};
    char *json = NULL;
    CHECK_OK(tether_engine_reconcile(e, both, 2, &json, NULL));
    CHECK(json && strstr(json, "\"timed_out_migrations\":[{\"volume\":\"vm-disk\",\"source\":\"src\""));
    tether_string_free(json);
    CHECK_OK(tether_engine_reconcile(e, both, 2, &json, NULL));
    CHECK(json && strstr(json, "\"timed_out_migrations\":[]"));
    tether_string_free(json);

    /* The source leaving completes the migration. */
    CHECK_OK(tether_engine_unpublish(e, ID("vm-disk"), ID("src"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_MIGRATION_COMPLETED && u.duration_ns == 61 * SEC && u.node_count == 2);
    CHECK(node_is(&u.nodes[0], "src") && node_is(&u.nodes[1], "dst") && u.epoch == 3);

    /* A new migration whose target leaves is aborted. */
    CHECK_OK(tether_engine_publish(e, ID("vm-disk"), ID("src"), TETHER_RWX, false, 0, &r));
    CHECK(r.migration_timeout_ns == 300 * SEC);
    CHECK_OK(tether_engine_unpublish(e, ID("vm-disk"), ID("src"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_MIGRATION_ABORTED && node_is(&u.nodes[0], "dst"));
    CHECK(node_is(&u.nodes[1], "src"));

    /* Unpublish from every node, then nothing is left. */
    CHECK_OK(tether_engine_publish(e, ID("vm-disk"), ID("next"), TETHER_RWX, false, 0, &r));
    CHECK_OK(tether_engine_unpublish_all(e, ID("vm-disk"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_DETACHED && u.node_count == 2);
    CHECK_OK(tether_engine_unpublish_all(e, ID("vm-disk"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_NOT_ATTACHED && u.epoch == 0 && u.node_count == 0);
    CHECK_OK(tether_engine_unpublish(e, ID("vm-disk"), ID("nobody"), NULL));
    CHECK_OK(tether_engine_get_cstr(e, "vm-disk", &found, &a));
    CHECK(!found);
    tether_engine_free(e);
}

static void stale_and_reconcile(void) {
    tether_engine *e = manual_engine();
    tether_stale_result s;

    CHECK_OK(tether_engine_publish(e, ID("pvc-s"), ID("gone"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_clear_stale(e, ID("pvc-s"), ID("other"), &s));
    CHECK(s.kind == TETHER_STALE_NOT_ATTACHED && s.epoch == 0);
    CHECK_OK(tether_engine_clear_stale_cstr(e, "pvc-s", "gone", &s));
    CHECK(s.kind == TETHER_STALE_CLEARED && s.epoch == 2 && s.remaining.len == 0);

    CHECK_OK(tether_engine_publish(e, ID("pvc-r"), ID("lost"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("pvc-k"), ID("live"), TETHER_RWO, false, 0, NULL));
    tether_str live[] = {{(const uint8_t *)"live", 4}};
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(tether_engine_reconcile(e, live, 1, &json, &len));
    CHECK(json != NULL && strlen(json) == len);
    CHECK(json && strstr(json, "\"pending\":[{\"node\":\"lost\"") && strstr(json, "\"clears_in_ns\":30000000000"));
    CHECK(json && strstr(json, "\"cleared\":[]"));
    tether_string_free(json);

    CHECK_OK(tether_engine_advance_clock(e, 30 * SEC));
    const char packed[] = "liveextra";
    size_t lens[] = {4, 5};
    CHECK_OK(tether_engine_reconcile_packed(e, (const uint8_t *)packed, 9, lens, 2, &json, NULL));
    CHECK(json && strstr(json, "\"cleared\":[{\"volume\":\"pvc-r\",\"node\":\"lost\",\"epoch\":2,"
                               "\"fence\":{\"epoch\":2,\"mode\":\"RWO\",\"readonly\":false,\"nodes\":[]}}]"));
    tether_string_free(json);

    size_t count = 0;
    CHECK_OK(tether_engine_attached_count(e, &count));
    CHECK(count == 1);

    /* A node that comes back before its grace period is out keeps its volume. */
    CHECK_OK(tether_engine_reconcile(e, NULL, 0, &json, NULL));
    tether_string_free(json);
    CHECK_OK(tether_engine_reconcile(e, live, 1, &json, NULL));
    CHECK(json && strstr(json, "\"returned\":[\"live\"]"));
    tether_string_free(json);
    tether_engine_free(e);
}

void test_contract(void) {
    publish_outcomes();
    handoff_inside_grace();
    migration();
    stale_and_reconcile();
}
