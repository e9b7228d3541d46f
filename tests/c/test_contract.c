/* What the C ABI adds to the contract, beyond the corpus (tests/c/corpus/ runs every row of it
 * over this ABI): the NUL-terminated _cstr variants, outputs the caller may decline (NULL), the
 * lengths and text of returned JSON, the packed reconcile, the wall time of a detach record, and
 * the message text next to the error details. */
#include <stdlib.h>

#include "check.h"

static void cstr_variants_and_declined_outputs(void) {
    tether_engine *e = manual_engine();
    tether_publish_result r;
    tether_unpublish_result u;
    tether_stale_result s;
    bool found = false, within = false, cleared = false;
    tether_attachment a;

    CHECK_OK(tether_engine_publish_cstr(e, "pvc-1", "node-a", TETHER_RWO, false, 0, &r));
    CHECK(r.kind == TETHER_PUBLISHED_ATTACHED && r.epoch == 1 && r.other_node.len == 0);
    /* Every outcome may be declined. */
    CHECK_OK(tether_engine_publish(e, ID("pvc-1"), ID("node-a"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_get_cstr(e, "pvc-1", &found, &a));
    CHECK(found && a.node_count == 1 && node_is(&a.nodes[0], "node-a") && a.since_unix_ns == WALL0);

    /* The message names what the details say. */
    CHECK_STATUS(tether_engine_publish(e, ID("pvc-1"), ID("node-a"), TETHER_RWO, true, 0, &r), TETHER_INCOMPATIBLE);
    CHECK(last_error_has("pvc-1") && last_error_has("read-only"));
    CHECK_STATUS(tether_engine_publish(e, ID("pvc-1"), ID("node-b"), TETHER_RWO, false, 0, &r), TETHER_CONFLICT);
    CHECK(last_error_has("node-a") && last_error_has("node-b"));

    CHECK_OK(tether_engine_unpublish_cstr(e, "pvc-1", "node-a", &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_DETACHED && u.epoch == 2);
    CHECK_OK(tether_engine_unpublish(e, ID("pvc-1"), ID("nobody"), NULL));
    CHECK_OK(tether_engine_unpublish_all(e, ID("pvc-1"), NULL));

    CHECK_OK(tether_engine_advance_clock(e, 5 * SEC));
    CHECK_OK(tether_engine_is_within_grace_period_cstr(e, "pvc-1", 30 * SEC, &within));
    CHECK(within);
    tether_detach_record d;
    CHECK_OK(tether_engine_detach_timestamp_get(e, ID("pvc-1"), &found, &d));
    CHECK(found && d.at_unix_ns == WALL0 && d.age_ns == 5 * SEC);
    CHECK_OK(tether_engine_detach_timestamp_clear(e, ID("pvc-1"), NULL));
    CHECK_OK(tether_engine_detach_timestamp_clear(e, ID("pvc-1"), &cleared));
    CHECK(!cleared);

    CHECK_OK(tether_engine_publish(e, ID("pvc-s"), ID("gone"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_clear_stale_cstr(e, "pvc-s", "gone", &s));
    CHECK(s.kind == TETHER_STALE_CLEARED && s.remaining.len == 0);
    CHECK_OK(tether_engine_clear_stale(e, ID("pvc-s"), ID("gone"), NULL));
    tether_engine_free(e);
}

static void reconcile_json_and_packed_names(void) {
    tether_engine *e = manual_engine();
    CHECK_OK(tether_engine_publish(e, ID("pvc-r"), ID("lost"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("pvc-k"), ID("live"), TETHER_RWO, false, 0, NULL));
    tether_str live[] = {{(const uint8_t *)"live", 4}};
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(tether_engine_reconcile(e, live, 1, &json, &len));
    CHECK(json != NULL && strlen(json) == len);
    CHECK(json && strstr(json, "\"pending\":[{\"node\":\"lost\"") && strstr(json, "\"clears_in_ns\":30000000000"));
    tether_string_free(json);

    CHECK_OK(tether_engine_advance_clock(e, 30 * SEC));
    const char packed[] = "liveextra";
    size_t lens[] = {4, 5};
    CHECK_OK(tether_engine_reconcile_packed(e, (const uint8_t *)packed, 9, lens, 2, &json, NULL));
    CHECK(json && strstr(json, "\"cleared\":[{\"volume\":\"pvc-r\",\"node\":\"lost\",\"epoch\":2,"
                               "\"fence\":{\"epoch\":2,\"mode\":\"RWO\",\"readonly\":false,\"nodes\":[]}}]"));
    tether_string_free(json);

    /* No live node at all: a NULL array with count 0. */
    CHECK_OK(tether_engine_reconcile(e, NULL, 0, &json, NULL));
    tether_string_free(json);
    tether_engine_free(e);
}

void test_contract(void) {
    cstr_variants_and_declined_outputs();
    reconcile_json_and_packed_names();
}
