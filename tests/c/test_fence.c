/* Fences through the C ABI, as DESIGN.md's "Epochs, admissions and fences" states them: who
 * is in the fence through a migration, an abort, a detach, a handoff and a stale clear; the
 * storage target's two rules; terms and the re-fence; forget; the counters that go with them. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* `volume`'s fence now; fails the check (and returns a zeroed fence) when it is untracked. */
static tether_fence fence_of(tether_engine *e, const char *volume) {
    tether_fence f;
    memset(&f, 0, sizeof f);
    bool found = false;
    CHECK_OK(tether_engine_fence(e, ID(volume), &found, &f));
    CHECK(found);
    return f;
}

/* Whether a target holding `f` admits `node` presenting `epoch`. */
static bool session_ok(const tether_fence *f, const char *volume, const char *node, uint64_t epoch) {
    return tether_fence_check_session(f, ID(volume), ID(node), epoch) == TETHER_OK;
}

/* Whether a target that applied `applied` may apply `f`. */
static bool supersedes(const tether_fence *f, const tether_fence *applied) {
    return tether_fence_check_supersedes(f, ID("vm"), true, applied->epoch) == TETHER_OK;
}

/* Migration: both nodes during, only the target after completion, only the source after an
 * abort, nobody after a detach; each fence supersedes the one before and never the reverse. */
static void through_a_migration(void) {
    tether_engine *e = manual_engine();
    tether_publish_result p;
    tether_unpublish_result u;

    CHECK_OK(tether_engine_publish(e, ID("vm"), ID("src"), TETHER_RWX, false, 0, &p));
    CHECK(p.admitted_epoch == 1 && p.fence.epoch == 1 && admits(&p.fence, 1, "src", 1, NULL, 0));
    CHECK(p.fence.mode == TETHER_RWX && !p.fence.readonly);
    tether_fence before = p.fence;

    CHECK_OK(tether_engine_publish(e, ID("vm"), ID("dst"), TETHER_RWX, false, 0, &p));
    CHECK(p.kind == TETHER_PUBLISHED_MIGRATION_STARTED && p.admitted_epoch == 2);
    CHECK(p.fence.epoch == 2 && admits(&p.fence, 2, "src", 1, "dst", 2));
    tether_fence during = fence_of(e, "vm");
    CHECK(memcmp(&during, &p.fence, sizeof during) == 0);
    CHECK(session_ok(&during, "vm", "src", 1) && session_ok(&during, "vm", "dst", 2));
    CHECK(!session_ok(&during, "vm", "dst", 1) && !session_ok(&during, "vm", "other", 9));
    CHECK(supersedes(&during, &before) && !supersedes(&before, &during) && !supersedes(&during, &during));

    /* An idempotent re-publish returns the same admission epoch and changes no fence. */
    CHECK_OK(tether_engine_publish(e, ID("vm"), ID("dst"), TETHER_RWX, false, 0, &p));
    CHECK(p.kind == TETHER_PUBLISHED_ALREADY_ATTACHED && p.admitted_epoch == 2 && p.fence.epoch == 2);

    CHECK_OK(tether_engine_unpublish(e, ID("vm"), ID("src"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_MIGRATION_COMPLETED && u.fence.epoch == 3);
    CHECK(admits(&u.fence, 1, "dst", 2, NULL, 0) && !session_ok(&u.fence, "vm", "src", 1));
    CHECK(supersedes(&u.fence, &during));

    /* A second migration back to src, aborted: only the source (dst) stays. */
    CHECK_OK(tether_engine_publish(e, ID("vm"), ID("src"), TETHER_RWX, false, 0, &p));
    CHECK(p.admitted_epoch == 4 && admits(&p.fence, 2, "dst", 2, "src", 4));
    CHECK_OK(tether_engine_unpublish(e, ID("vm"), ID("src"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_MIGRATION_ABORTED && u.fence.epoch == 5);
    CHECK(admits(&u.fence, 1, "dst", 2, NULL, 0) && !session_ok(&u.fence, "vm", "src", 4));

    /* A detach leaves a tracked volume with an empty fence, which a target must still apply. */
    CHECK_OK(tether_engine_unpublish(e, ID("vm"), ID("dst"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_DETACHED && u.fence.epoch == 6 && admits(&u.fence, 0, NULL, 0, NULL, 0));
    tether_fence after = fence_of(e, "vm");
    CHECK(after.epoch == 6 && after.node_count == 0 && !session_ok(&after, "vm", "dst", 6));

    /* Nothing changed: the zeroed fence of NOT_ATTACHED. */
    CHECK_OK(tether_engine_unpublish(e, ID("vm"), ID("dst"), &u));
    CHECK(u.kind == TETHER_UNPUBLISHED_NOT_ATTACHED && u.fence.epoch == 0 && u.fence.node_count == 0);
    tether_engine_free(e);
}

/* A handoff moves the fence to the new holder; a stale clear leaves only the other side. */
static void handoff_and_stale_clear(void) {
    tether_engine *e = manual_engine();
    tether_publish_result p;
    CHECK_OK(tether_engine_publish(e, ID("h"), ID("a"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_unpublish(e, ID("h"), ID("a"), NULL));
    CHECK_OK(tether_engine_publish(e, ID("h"), ID("a"), TETHER_RWO, false, 0, &p)); /* a late re-attach */
    CHECK(p.admitted_epoch == 3 && admits(&p.fence, 1, "a", 3, NULL, 0));
    CHECK_OK(tether_engine_advance_clock(e, 5 * SEC));
    CHECK_OK(tether_engine_publish(e, ID("h"), ID("b"), TETHER_RWO, false, 0, &p));
    CHECK(p.kind == TETHER_PUBLISHED_HANDED_OFF && p.admitted_epoch == 4);
    CHECK(p.fence.epoch == 4 && admits(&p.fence, 1, "b", 4, NULL, 0) && !session_ok(&p.fence, "h", "a", 3));

    tether_stale_result s;
    CHECK_OK(tether_engine_publish(e, ID("s"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("s"), ID("b"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_clear_stale(e, ID("s"), ID("a"), &s));
    CHECK(s.kind == TETHER_STALE_CLEARED && s.fence.epoch == 3 && admits(&s.fence, 1, "b", 2, NULL, 0));
    CHECK_OK(tether_engine_clear_stale(e, ID("s"), ID("a"), &s));
    CHECK(s.kind == TETHER_STALE_NOT_ATTACHED && s.fence.epoch == 0 && s.fence.node_count == 0);
    tether_engine_free(e);
}

/* After set_term(t) and a re-fence every tracked epoch is at least t << 32 and every admission
 * is as it was; later changes issue epochs above it; a term never goes down. */
static void terms_and_refence(void) {
    tether_engine *e = manual_engine();
    const uint64_t t = 3, floor = t << 32;
    CHECK_OK(tether_engine_publish(e, ID("t1"), ID("a"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("t2"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("t2"), ID("b"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("t3"), ID("c"), TETHER_RWO, false, 0, NULL));
    CHECK_OK(tether_engine_unpublish(e, ID("t3"), ID("c"), NULL));

    uint64_t term = 99;
    CHECK_OK(tether_engine_term(e, &term));
    CHECK(term == 0);
    CHECK_OK(tether_engine_set_term(e, t, &term));
    CHECK(term == t);
    char *json = NULL;
    size_t len = 0;
    CHECK_OK(tether_engine_refence(e, &json, &len));
    CHECK(json != NULL && strlen(json) == len);
    CHECK(json && strncmp(json, "[{\"volume\":\"t1\",\"fence\":{\"epoch\":12884901888,\"mode\":\"RWO\"", 57) == 0);
    CHECK(json && strstr(json, "{\"volume\":\"t3\",\"fence\":{\"epoch\":12884901888,\"mode\":\"RWO\","
                               "\"readonly\":false,\"nodes\":[]}}]"));
    tether_string_free(json);

    tether_fence f1 = fence_of(e, "t1"), f2 = fence_of(e, "t2"), f3 = fence_of(e, "t3");
    CHECK(f1.epoch >= floor && f2.epoch >= floor && f3.epoch >= floor);
    CHECK(admits(&f1, 1, "a", 1, NULL, 0) && admits(&f2, 2, "a", 1, "b", 2) && admits(&f3, 0, NULL, 0, NULL, 0));
    bool found = false;
    tether_attachment at;
    CHECK_OK(tether_engine_get(e, ID("t2"), &found, &at));
    CHECK(found && at.epoch == f2.epoch && at.admitted[0] == 1 && at.admitted[1] == 2);

    /* The nodes' sessions carry on with the admission epochs they were given. */
    CHECK(session_ok(&f2, "t2", "a", 1) && session_ok(&f2, "t2", "b", 2));
    tether_publish_result p;
    CHECK_OK(tether_engine_publish(e, ID("t1"), ID("a"), TETHER_RWO, false, 0, &p));
    CHECK(p.kind == TETHER_PUBLISHED_ALREADY_ATTACHED && p.admitted_epoch == 1 && p.epoch == f1.epoch);
    CHECK_OK(tether_engine_publish(e, ID("t4"), ID("d"), TETHER_RWO, false, 0, &p));
    CHECK(p.epoch >= floor && p.admitted_epoch >= floor);

    /* A term never goes down; one above UINT32_MAX is refused and changes nothing. */
    CHECK_OK(tether_engine_set_term(e, 1, &term));
    CHECK(term == t);
    CHECK_STATUS(tether_engine_set_term(e, (uint64_t)UINT32_MAX + 1, &term), TETHER_INVALID_ARGUMENT);
    CHECK(last_error_has("term") && last_error_has("4294967295"));
    CHECK_OK(tether_engine_term(e, &term));
    CHECK(term == t);

    /* The term survives a snapshot. */
    char *doc = NULL;
    CHECK_OK(tether_engine_snapshot(e, &doc, &len));
    tether_engine *copy = manual_engine();
    CHECK_OK(tether_engine_restore(copy, (const uint8_t *)doc, len));
    CHECK_OK(tether_engine_term(copy, &term));
    CHECK(term == t);
    tether_fence restored = fence_of(copy, "t2");
    CHECK(restored.epoch >= f2.epoch && admits(&restored, 2, "a", 1, "b", 2));
    tether_string_free(doc);
    tether_engine_free(copy);
    tether_engine_free(e);
}

/* Forget drops only an unattached volume's record; a recreated volume starts above it. */
static void forget(void) {
    tether_engine *e = manual_engine();
    bool forgotten = true;
    CHECK_OK(tether_engine_forget(e, ID("never"), &forgotten));
    CHECK(!forgotten);

    CHECK_OK(tether_engine_publish(e, ID("f"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("f"), ID("b"), TETHER_RWX, false, 0, NULL));
    memset(&forgotten, POISON, sizeof forgotten);
    CHECK_STATUS(tether_engine_forget(e, ID("f"), &forgotten), TETHER_STILL_ATTACHED);
    CHECK(untouched(&forgotten, sizeof forgotten));
    tether_error_info info;
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.status == TETHER_STILL_ATTACHED && info.node_count == 2);
    CHECK(node_is(&info.nodes[0], "a") && node_is(&info.nodes[1], "b"));
    CHECK(last_error_has("still attached") && last_error_has("\"f\""));

    CHECK_OK(tether_engine_unpublish_all(e, ID("f"), NULL));
    CHECK_OK(tether_engine_forget(e, ID("f"), &forgotten));
    CHECK(forgotten);
    CHECK_OK(tether_engine_forget(e, ID("f"), NULL));
    tether_fence f;
    memset(&f, POISON, sizeof f);
    bool found = true;
    CHECK_OK(tether_engine_fence(e, ID("f"), &found, &f));
    CHECK(!found && untouched(&f, sizeof f));
    uint64_t epoch = 1;
    CHECK_OK(tether_engine_epoch(e, ID("f"), &epoch));
    CHECK(epoch == 0);
    tether_publish_result p;
    CHECK_OK(tether_engine_publish(e, ID("f"), ID("a"), TETHER_RWO, false, 0, &p));
    CHECK(p.epoch > 3);
    tether_engine_free(e);
}

/* A volume whose epoch reached its maximum refuses every change; nothing wraps. A document at
 * that epoch is refused (no change could follow it); one a change below it restores. */
static void epoch_exhausted(void) {
    tether_engine *e = manual_engine();
    const char *fmt =
        "{\"version\":2,\"taken_at_unix_nanos\":%llu,\"term\":0,\"epoch_floor\":0,\"volumes\":[{\"volume\":\"x\","
        "\"epoch\":%llu,\"attachment\":{\"mode\":\"RWO\",\"readonly\":false,\"nodes\":[\"a\"],"
        "\"admitted\":[1],\"since_unix_nanos\":%llu}}],\"missing_nodes\":[]}";
    char doc[512];
    snprintf(doc, sizeof doc, fmt, (unsigned long long)WALL0, (unsigned long long)(UINT64_MAX - 1),
             (unsigned long long)WALL0);
    CHECK_STATUS(tether_engine_restore_cstr(e, doc), TETHER_BAD_SNAPSHOT);
    CHECK(last_error_has("cannot grow"));
    snprintf(doc, sizeof doc, fmt, (unsigned long long)WALL0, (unsigned long long)(UINT64_MAX - 2),
             (unsigned long long)WALL0);
    CHECK_OK(tether_engine_restore_cstr(e, doc));
    CHECK_OK(tether_engine_unpublish(e, ID("x"), ID("a"), NULL)); /* detached at the last epoch */
    tether_publish_result p;
    memset(&p, POISON, sizeof p);
    CHECK_STATUS(tether_engine_publish(e, ID("x"), ID("a"), TETHER_RWO, false, 0, &p), TETHER_EPOCH_EXHAUSTED);
    CHECK(untouched(&p, sizeof p));
    tether_error_info info;
    CHECK_OK(tether_last_error_info(&info));
    CHECK(info.status == TETHER_EPOCH_EXHAUSTED && info.epoch == UINT64_MAX - 1);
    CHECK(last_error_has("cannot grow"));
    /* Refused, so nothing changed: detached, at the same epoch. */
    tether_fence f = fence_of(e, "x");
    CHECK(f.epoch == UINT64_MAX - 1 && f.node_count == 0);
    tether_stats s;
    CHECK_OK(tether_engine_stats(e, &s));
    CHECK(s.epoch_exhausted == 1);
    tether_engine_free(e);
}

/* The counters appended to tether_stats. */
static void counters(void) {
    tether_engine *e = manual_engine();
    CHECK_OK(tether_engine_publish(e, ID("d"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("d"), ID("b"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_unpublish_all(e, ID("d"), NULL));
    CHECK_OK(tether_engine_publish(e, ID("c"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("c"), ID("b"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_clear_stale(e, ID("c"), ID("b"), NULL));
    CHECK_OK(tether_engine_set_term(e, 1, NULL));
    char *json = NULL;
    CHECK_OK(tether_engine_refence(e, &json, NULL));
    tether_string_free(json);
    CHECK_OK(tether_engine_forget(e, ID("d"), NULL));
    tether_stats s;
    CHECK_OK(tether_engine_stats(e, &s));
    CHECK(s.migrations_detached == 1 && s.migrations_cleared == 1 && s.refenced == 2 && s.forgotten == 1);
    CHECK(s.epoch_exhausted == 0 && s.active_migrations == 0);
    tether_engine_free(e);
}

void test_fence(void) {
    through_a_migration();
    handoff_and_stale_clear();
    terms_and_refence();
    forget();
    epoch_exhausted();
    counters();
}
