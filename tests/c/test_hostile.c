/* Hostile inputs: NULL pointers everywhere, invalid UTF-8, empty, over-long and NUL-holding
 * identifiers, impossible lengths, bad enum values; every one refused with the right status,
 * outputs untouched, state unchanged; plus the last-error API and a deliberate panic. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"

static void null_engine(void) {
    const tether_status N = TETHER_NULL_POINTER;
    tether_publish_result pr;
    tether_unpublish_result ur;
    tether_stale_result sr;
    tether_attachment at;
    tether_detach_record dr;
    tether_config cfg;
    tether_stats st;
    bool b;
    uint64_t u;
    size_t z;
    char *json;
    CHECK_STATUS(tether_engine_publish(NULL, ID("v"), ID("n"), TETHER_RWO, false, 0, &pr), N);
    CHECK(last_error_has("engine is a NULL pointer"));
    CHECK_STATUS(tether_engine_publish_cstr(NULL, "v", "n", TETHER_RWO, false, 0, &pr), N);
    CHECK_STATUS(tether_engine_unpublish(NULL, ID("v"), ID("n"), &ur), N);
    CHECK_STATUS(tether_engine_unpublish_cstr(NULL, "v", "n", &ur), N);
    CHECK_STATUS(tether_engine_unpublish_all(NULL, ID("v"), &ur), N);
    CHECK_STATUS(tether_engine_clear_stale(NULL, ID("v"), ID("n"), &sr), N);
    CHECK_STATUS(tether_engine_clear_stale_cstr(NULL, "v", "n", &sr), N);
    CHECK_STATUS(tether_engine_is_within_grace_period(NULL, ID("v"), SEC, &b), N);
    CHECK_STATUS(tether_engine_is_within_grace_period_cstr(NULL, "v", SEC, &b), N);
    CHECK_STATUS(tether_engine_detach_timestamp_get(NULL, ID("v"), &b, &dr), N);
    CHECK_STATUS(tether_engine_detach_timestamp_clear(NULL, ID("v"), &b), N);
    CHECK_STATUS(tether_engine_get(NULL, ID("v"), &b, &at), N);
    CHECK_STATUS(tether_engine_get_cstr(NULL, "v", &b, &at), N);
    CHECK_STATUS(tether_engine_epoch(NULL, ID("v"), &u), N);
    CHECK_STATUS(tether_engine_list(NULL, &json, &z), N);
    CHECK_STATUS(tether_engine_attached_count(NULL, &z), N);
    CHECK_STATUS(tether_engine_stats(NULL, &st), N);
    CHECK_STATUS(tether_engine_reconcile(NULL, NULL, 0, &json, NULL), N);
    CHECK_STATUS(tether_engine_reconcile_packed(NULL, NULL, 0, NULL, 0, &json, NULL), N);
    CHECK_STATUS(tether_engine_snapshot(NULL, &json, NULL), N);
    CHECK_STATUS(tether_engine_restore(NULL, ID("{}")), N);
    CHECK_STATUS(tether_engine_restore_cstr(NULL, "{}"), N);
    CHECK_STATUS(tether_engine_config(NULL, &cfg), N);
    CHECK_STATUS(tether_engine_set_grace_period(NULL, SEC), N);
    CHECK_STATUS(tether_engine_set_default_migration_timeout(NULL, SEC, &u), N);
    CHECK_STATUS(tether_engine_advance_clock(NULL, SEC), N);
    CHECK_STATUS(tether_engine_new(NULL, NULL), N);
    CHECK_STATUS(tether_engine_new_manual_clock(NULL, WALL0, NULL), N);
    CHECK_STATUS(tether_config_default(NULL), N);
    tether_engine_free(NULL);
    tether_string_free(NULL);
}

static void null_arguments(tether_engine *e) {
    const tether_status N = TETHER_NULL_POINTER;
    tether_attachment at;
    tether_detach_record dr;
    bool b;
    char *json;
    /* A NULL id with a length, and NULL C strings. */
    CHECK_STATUS(tether_engine_publish(e, NULL, 3, ID("n"), TETHER_RWO, false, 0, NULL), N);
    CHECK(last_error_has("volume id is a NULL pointer"));
    CHECK_STATUS(tether_engine_publish(e, ID("v"), NULL, 1, TETHER_RWO, false, 0, NULL), N);
    CHECK(last_error_has("node id is a NULL pointer"));
    CHECK_STATUS(tether_engine_publish_cstr(e, NULL, "n", TETHER_RWO, false, 0, NULL), N);
    CHECK_STATUS(tether_engine_publish_cstr(e, "v", NULL, TETHER_RWO, false, 0, NULL), N);
    CHECK_STATUS(tether_engine_unpublish_cstr(e, "v", NULL, NULL), N);
    CHECK_STATUS(tether_engine_clear_stale_cstr(e, NULL, "n", NULL), N);
    CHECK_STATUS(tether_engine_is_within_grace_period_cstr(e, NULL, SEC, &b), N);
    CHECK_STATUS(tether_engine_get_cstr(e, NULL, &b, &at), N);
    CHECK_STATUS(tether_engine_restore_cstr(e, NULL), N);
    CHECK_STATUS(tether_engine_restore(e, NULL, 10), N);
    /* Required outputs. */
    CHECK_STATUS(tether_engine_is_within_grace_period(e, ID("v"), SEC, NULL), N);
    CHECK_STATUS(tether_engine_get(e, ID("v"), NULL, &at), N);
    CHECK_STATUS(tether_engine_get(e, ID("v"), &b, NULL), N);
    CHECK_STATUS(tether_engine_detach_timestamp_get(e, ID("v"), NULL, &dr), N);
    CHECK_STATUS(tether_engine_detach_timestamp_get(e, ID("v"), &b, NULL), N);
    CHECK_STATUS(tether_engine_epoch(e, ID("v"), NULL), N);
    CHECK_STATUS(tether_engine_list(e, NULL, NULL), N);
    CHECK_STATUS(tether_engine_attached_count(e, NULL), N);
    CHECK_STATUS(tether_engine_stats(e, NULL), N);
    CHECK_STATUS(tether_engine_snapshot(e, NULL, NULL), N);
    CHECK_STATUS(tether_engine_config(e, NULL), N);
    CHECK_STATUS(tether_engine_reconcile(e, NULL, 0, NULL, NULL), N);
    CHECK_STATUS(tether_engine_reconcile(e, NULL, 2, &json, NULL), N);
    size_t lens[] = {1};
    CHECK_STATUS(tether_engine_reconcile_packed(e, NULL, 1, lens, 1, &json, NULL), N);
    CHECK_STATUS(tether_engine_reconcile_packed(e, ID("a"), NULL, 1, &json, NULL), N);
}

static void bad_text(tether_engine *e) {
    const char bad[] = "pv\xc3\x28"; /* a two-byte sequence cut short */
    char long_id[TETHER_MAX_ID_LEN + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    tether_publish_result r;

    CHECK_STATUS(tether_engine_publish(e, ID(bad), ID("n"), TETHER_RWO, false, 0, &r), TETHER_INVALID_UTF8);
    CHECK(last_error_has("volume id is not valid UTF-8 (bad byte at offset 2)"));
    CHECK_STATUS(tether_engine_publish_cstr(e, "v", bad, TETHER_RWO, false, 0, &r), TETHER_INVALID_UTF8);
    CHECK_STATUS(tether_engine_unpublish(e, ID("v"), ID(bad), NULL), TETHER_INVALID_UTF8);
    CHECK_STATUS(tether_engine_restore_cstr(e, bad), TETHER_INVALID_UTF8);

    /* Empty ids, through NULL with length 0 and through "". */
    CHECK_STATUS(tether_engine_publish(e, NULL, 0, ID("n"), TETHER_RWO, false, 0, &r), TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("volume id") && last_error_has("empty"));
    CHECK_STATUS(tether_engine_publish_cstr(e, "v", "", TETHER_RWO, false, 0, &r), TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("node id") && last_error_has("empty"));

    /* 129 bytes is one too many; 128 is fine. */
    CHECK_STATUS(tether_engine_publish_cstr(e, long_id, "n", TETHER_RWO, false, 0, &r), TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("129 bytes long; the limit is 128"));
    CHECK_OK(tether_engine_publish(e, (const uint8_t *)long_id, TETHER_MAX_ID_LEN, ID("n"), TETHER_RWO, false, 0, &r));

    /* A NUL inside a (pointer, length) id; an impossible length is refused before any read. */
    CHECK_STATUS(tether_engine_publish(e, (const uint8_t *)"a\0b", 3, ID("n"), TETHER_RWO, false, 0, &r),
                 TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("NUL byte at offset 1"));
    CHECK_STATUS(tether_engine_publish(e, (const uint8_t *)"v", SIZE_MAX, ID("n"), TETHER_RWO, false, 0, &r),
                 TETHER_INVALID_ARGUMENT);
    tether_str one[1] = {{(const uint8_t *)"x", 1}};
    char *report = NULL;
    CHECK_STATUS(tether_engine_reconcile(e, one, SIZE_MAX, &report, NULL), TETHER_INVALID_ARGUMENT);
    CHECK(report == NULL && last_error_has("more than any array can hold"));

    /* Not an access mode. */
    CHECK_STATUS(tether_engine_publish(e, ID("v"), ID("n"), 7, false, 0, &r), TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("7 is not a tether_access_mode"));

    /* Reconcile: one bad name refuses the whole call; packed lengths must add up. */
    char *json = NULL;
    tether_str names[] = {{(const uint8_t *)"ok", 2}, {(const uint8_t *)"", 0}};
    CHECK_STATUS(tether_engine_reconcile(e, names, 2, &json, NULL), TETHER_INVALID_ARGUMENT);
    size_t short_lens[] = {1, 1};
    CHECK_STATUS(tether_engine_reconcile_packed(e, ID("abc"), short_lens, 2, &json, NULL), TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("leave 1 bytes"));
    size_t long_lens[] = {2, 2};
    CHECK_STATUS(tether_engine_reconcile_packed(e, ID("abc"), long_lens, 2, &json, NULL), TETHER_INVALID_ARGUMENT);
    size_t cut_lens[] = {1, 1};
    CHECK_STATUS(tether_engine_reconcile_packed(e, (const uint8_t *)"\xc3\xa9", 2, cut_lens, 2, &json, NULL),
                 TETHER_INVALID_ARGUMENT);
    CHECK(json == NULL);
}

/* A failed call leaves every output as it was. */
static void no_partial_success(tether_engine *e) {
    CHECK_OK(tether_engine_publish(e, ID("held"), ID("a"), TETHER_RWO, false, 0, NULL));
    tether_publish_result r;
    memset(&r, POISON, sizeof r);
    CHECK_STATUS(tether_engine_publish(e, ID("held"), ID("b"), TETHER_RWO, false, 0, &r), TETHER_CONFLICT);
    CHECK(untouched(&r, sizeof r));

    tether_attachment at;
    bool found;
    memset(&at, POISON, sizeof at);
    memset(&found, POISON, sizeof found);
    CHECK_STATUS(tether_engine_get(e, ID(""), &found, &at), TETHER_INVALID_ARGUMENT);
    CHECK(untouched(&at, sizeof at) && untouched(&found, sizeof found));
    /* Not attached: `found` is written, the attachment is not. */
    CHECK_OK(tether_engine_get(e, ID("free"), &found, &at));
    CHECK(!found && untouched(&at, sizeof at));

    char *json;
    size_t len;
    memset(&json, POISON, sizeof json);
    memset(&len, POISON, sizeof len);
    size_t lens[] = {5};
    CHECK_STATUS(tether_engine_reconcile_packed(e, ID("abc"), lens, 1, &json, &len), TETHER_INVALID_ARGUMENT);
    CHECK(untouched(&json, sizeof json) && untouched(&len, sizeof len));

    tether_stats s;
    CHECK_OK(tether_engine_stats(e, &s));
    CHECK(s.conflicts == 1 && s.attached == 2);
}

static void last_error_api(void) {
    CHECK_STATUS(tether_engine_set_grace_period(NULL, 0), TETHER_NULL_POINTER);
    const char *want = "engine is a NULL pointer; pass a valid pointer";
    size_t n = 0;
    char small[8];
    memset(small, POISON, sizeof small);
    CHECK_STATUS(tether_last_error_copy(small, sizeof small, &n), TETHER_BUFFER_TOO_SMALL);
    CHECK(n == strlen(want) && untouched(small, sizeof small));
    CHECK_STATUS(tether_last_error_copy(NULL, 0, &n), TETHER_BUFFER_TOO_SMALL);
    CHECK_STATUS(tether_last_error_copy(NULL, 5, &n), TETHER_NULL_POINTER);
    char exact[64];
    CHECK(n + 1 <= sizeof exact);
    CHECK_OK(tether_last_error_copy(exact, n + 1, NULL));
    CHECK(strcmp(exact, want) == 0);
    /* Reading the error did not change it. */
    tether_error_info info;
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.status == TETHER_NULL_POINTER && info.node_count == 0);
    CHECK_STATUS(tether_last_error_info(NULL), TETHER_NULL_POINTER);
    CHECK(last_error_has(want));

#ifdef TETHER_TEST_HOOKS
    /* A deliberate panic arrives as a status with a message; the process lives on. */
    CHECK_STATUS(tether_debug_panic(), TETHER_PANIC);
    CHECK(last_error_has("deliberate"));
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.status == TETHER_PANIC);
#endif
}

void test_hostile(void) {
    null_engine();
    tether_engine *e = manual_engine();
    null_arguments(e);
    bad_text(e);
    no_partial_success(e);
    tether_engine_free(e);
    last_error_api();
}
