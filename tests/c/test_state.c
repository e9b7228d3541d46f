/* Whole-engine calls through the C ABI: settings, counters, the list, snapshot and restore
 * (including documents that must be refused without touching the state), and the version. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

void test_version(void) {
    CHECK(strcmp(tether_version(), TETHER_VERSION_STRING) == 0);
    char expect[64];
    snprintf(expect, sizeof expect, "%d.%d.%d", TETHER_VERSION_MAJOR, TETHER_VERSION_MINOR, TETHER_VERSION_PATCH);
    CHECK(strcmp(expect, TETHER_VERSION_STRING) == 0);
    CHECK(strcmp(tether_status_name(TETHER_MIGRATION_TIMED_OUT), "TETHER_MIGRATION_TIMED_OUT") == 0);
    CHECK(strcmp(tether_status_name(12345), "TETHER_UNKNOWN_STATUS") == 0);
}

static void settings(void) {
    tether_config c;
    CHECK_OK(tether_config_default(&c));
    CHECK(c.grace_period_ns == 30 * SEC && c.default_migration_timeout_ns == 300 * SEC);

    /* Out-of-range settings at creation are refused and nothing is made. */
    tether_engine *e = (tether_engine *)&c; /* a sentinel that must stay untouched */
    tether_config bad = {2 * 3600 * SEC, 300 * SEC};
    CHECK_STATUS(tether_engine_new(&bad, &e), TETHER_INVALID_ARGUMENT);
    CHECK(e == (tether_engine *)&c && last_error_has("grace period"));

    tether_config mine = {10 * SEC, 1 * SEC};
    CHECK_OK(tether_engine_new(&mine, &e));
    CHECK_OK(tether_engine_config(e, &c));
    CHECK(c.grace_period_ns == 10 * SEC && c.default_migration_timeout_ns == 30 * SEC); /* clamped up */

    CHECK_OK(tether_engine_set_grace_period(e, 45 * SEC));
    CHECK_STATUS(tether_engine_set_grace_period(e, 3601 * SEC), TETHER_INVALID_ARGUMENT);
    uint64_t effective = 0;
    CHECK_OK(tether_engine_set_default_migration_timeout(e, 5 * 3600 * SEC, &effective));
    CHECK(effective == 3600 * SEC);
    CHECK_OK(tether_engine_set_default_migration_timeout(e, 90 * SEC, NULL));
    CHECK_OK(tether_engine_config(e, &c));
    CHECK(c.grace_period_ns == 45 * SEC && c.default_migration_timeout_ns == 90 * SEC);

    /* Only a manual clock can be advanced. */
    CHECK_STATUS(tether_engine_advance_clock(e, SEC), TETHER_NOT_MANUAL_CLOCK);
    tether_engine_free(e);
}

static void stats_and_list(void) {
    tether_engine *e = manual_engine();
    CHECK_OK(tether_engine_publish(e, ID("b-vol"), ID("n1"), TETHER_RWO, true, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("a-vol"), ID("n1"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("a-vol"), ID("n2"), TETHER_RWX, false, 0, NULL));
    CHECK_STATUS(tether_engine_publish(e, ID("b-vol"), ID("n2"), TETHER_RWO, false, 0, NULL), TETHER_CONFLICT);
    CHECK_STATUS(tether_engine_publish(e, ID(""), ID("n2"), TETHER_RWO, false, 0, NULL), TETHER_INVALID_ARGUMENT);

    tether_stats s;
    CHECK_OK(tether_engine_stats(e, &s));
    CHECK(s.attached == 2 && s.migrations_started == 1 && s.conflicts == 1 && s.active_migrations == 1);
    CHECK(s.invalid_input == 1 && s.detached == 0);

    char *json = NULL;
    size_t len = 0;
    CHECK_OK(tether_engine_list(e, &json, &len));
    CHECK(json != NULL && strlen(json) == len);
    /* Sorted by volume, the migration reported on the RWX volume. */
    CHECK(json && strncmp(json, "[{\"volume\":\"a-vol\",\"mode\":\"RWX\",\"readonly\":false,\"nodes\":[\"n1\",\"n2\"]", 68) == 0);
    CHECK(json && strstr(json, "\"migration\":{\"elapsed_ns\":0,\"timeout_ns\":300000000000}"));
    CHECK(json && strstr(json, "{\"volume\":\"b-vol\",\"mode\":\"RWO\",\"readonly\":true,\"nodes\":[\"n1\"],\"epoch\":1,"
                               "\"since_unix_ns\":1764151482000000000,\"migration\":null,\"admitted\":[1]}]"));
    CHECK(json && strstr(json, "\"admitted\":[1,2]}"));
    tether_string_free(json);
    tether_engine_free(e);
}

/* Restoring `doc` must fail with `want` and leave `e`'s snapshot exactly as it was. */
static void refused_restore(tether_engine *e, const char *doc, size_t len, tether_status want, const char *says) {
    char *before = NULL, *after = NULL;
    CHECK_OK(tether_engine_snapshot(e, &before, NULL));
    CHECK_STATUS(tether_engine_restore(e, (const uint8_t *)doc, len), want);
    CHECK(last_error_has(says));
    CHECK_OK(tether_engine_snapshot(e, &after, NULL));
    CHECK(before && after && strcmp(before, after) == 0);
    tether_string_free(before);
    tether_string_free(after);
}

static void snapshot_and_restore(void) {
    tether_engine *e = manual_engine();
    CHECK_OK(tether_engine_publish(e, ID("pvc-1"), ID("a"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("pvc-2"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("pvc-2"), ID("b"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("pvc-3"), ID("c"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_unpublish(e, ID("pvc-3"), ID("c"), NULL));

    char *doc = NULL;
    size_t len = 0;
    CHECK_OK(tether_engine_snapshot(e, &doc, &len));
    CHECK(doc && strlen(doc) == len && strncmp(doc, "{\"version\":2,", 13) == 0);

    /* A second engine restored from the document reads back the same document and state. */
    tether_engine *copy = manual_engine();
    CHECK_OK(tether_engine_restore(copy, (const uint8_t *)doc, len));
    char *again = NULL;
    CHECK_OK(tether_engine_snapshot(copy, &again, NULL));
    CHECK(again && strcmp(doc, again) == 0);
    uint64_t epoch = 0;
    CHECK_OK(tether_engine_epoch(copy, ID("pvc-3"), &epoch));
    CHECK(epoch == 2);
    CHECK_STATUS(tether_engine_publish(copy, ID("pvc-1"), ID("z"), TETHER_RWO, false, 0, NULL), TETHER_CONFLICT);
    CHECK_OK(tether_engine_restore_cstr(copy, doc));
    tether_string_free(again);

    /* Truncated, unknown-version and inconsistent documents are refused; nothing changes. */
    refused_restore(copy, doc, len / 2, TETHER_BAD_SNAPSHOT, "malformed");
    refused_restore(copy, "", 0, TETHER_BAD_SNAPSHOT, "malformed");
    const char *v9 = "{\"version\":9,\"taken_at_unix_nanos\":0,\"volumes\":[],\"missing_nodes\":[]}";
    refused_restore(copy, v9, strlen(v9), TETHER_BAD_SNAPSHOT, "version 9");
    const char *rwo2 = "{\"version\":1,\"taken_at_unix_nanos\":0,\"volumes\":[{\"volume\":\"v\",\"epoch\":1,"
                       "\"attachment\":{\"mode\":\"RWO\",\"readonly\":false,\"nodes\":[\"a\",\"b\"],"
                       "\"since_unix_nanos\":0,\"migration_timeout_ms\":60000}}],\"missing_nodes\":[]}";
    refused_restore(copy, rwo2, strlen(rwo2), TETHER_BAD_SNAPSHOT, "RWO volume is attached to two nodes");
    const char *three = "{\"version\":1,\"taken_at_unix_nanos\":0,\"volumes\":[{\"volume\":\"v\",\"epoch\":1,"
                        "\"attachment\":{\"mode\":\"RWX\",\"readonly\":false,\"nodes\":[\"a\",\"b\",\"c\"],"
                        "\"since_unix_nanos\":0,\"migration_timeout_ms\":60000}}],\"missing_nodes\":[]}";
    refused_restore(copy, three, strlen(three), TETHER_BAD_SNAPSHOT, "3 nodes");
    const char *dup = "{\"version\":1,\"taken_at_unix_nanos\":0,\"volumes\":[{\"volume\":\"v\",\"epoch\":1},"
                      "{\"volume\":\"v\",\"epoch\":2}],\"missing_nodes\":[]}";
    refused_restore(copy, dup, strlen(dup), TETHER_BAD_SNAPSHOT, "more than once");
    const char *nul = "{\"version\":1,\"taken_at_unix_nanos\":0,\"volumes\":[],\"missing_nodes\":[],\"x\\u0000\":1}";
    refused_restore(copy, nul, strlen(nul), TETHER_BAD_SNAPSHOT, "unknown field");
    const char bad_utf8[] = "{\"version\":1,\"taken_at_unix_nanos\":0,\"volumes\":[{\"volume\":\"\xff\"}]}";
    refused_restore(copy, bad_utf8, sizeof bad_utf8 - 1, TETHER_INVALID_UTF8, "not valid UTF-8");

    tether_string_free(doc);
    tether_engine_free(copy);
    tether_engine_free(e);
}

void test_state(void) {
    settings();
    stats_and_list();
    snapshot_and_restore();
}
