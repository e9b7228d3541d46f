/* Hostile inputs to the fence, term, re-fence and forget calls: NULL pointers, bad UTF-8,
 * over-long, empty and NUL-holding ids, impossible lengths, untracked volumes, a term above the
 * maximum, and fences passed in that are not fences. Each is refused with the right status and
 * leaves its outputs untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

static void null_pointers(tether_engine *e) {
    const tether_status N = TETHER_NULL_POINTER;
    tether_fence f;
    bool b;
    uint64_t u;
    char *json;
    CHECK_STATUS(tether_engine_fence(NULL, ID("v"), &b, &f), N);
    CHECK_STATUS(tether_engine_set_term(NULL, 1, &u), N);
    CHECK_STATUS(tether_engine_term(NULL, &u), N);
    CHECK_STATUS(tether_engine_refence(NULL, &json, NULL), N);
    CHECK_STATUS(tether_engine_forget(NULL, ID("v"), &b), N);
    CHECK(last_error_has("engine is a NULL pointer"));

    CHECK_STATUS(tether_engine_fence(e, NULL, 1, &b, &f), N);
    CHECK(last_error_has("volume id is a NULL pointer"));
    CHECK_STATUS(tether_engine_fence(e, ID("v"), NULL, &f), N);
    CHECK(last_error_has("found is a NULL pointer"));
    CHECK_STATUS(tether_engine_fence(e, ID("v"), &b, NULL), N);
    CHECK_STATUS(tether_engine_term(e, NULL), N);
    CHECK_STATUS(tether_engine_refence(e, NULL, NULL), N);
    CHECK_STATUS(tether_engine_forget(e, NULL, 2, &b), N);

    CHECK_STATUS(tether_fence_check_supersedes(NULL, ID("v"), false, 0), N);
    CHECK(last_error_has("fence is a NULL pointer"));
    CHECK_STATUS(tether_fence_check_session(NULL, ID("v"), ID("n"), 1), N);
    CHECK_OK(tether_engine_publish(e, ID("held"), ID("n"), TETHER_RWO, false, 0, NULL));
    bool found = false;
    CHECK_OK(tether_engine_fence(e, ID("held"), &found, &f));
    CHECK(found);
    CHECK_STATUS(tether_fence_check_supersedes(&f, NULL, 1, false, 0), N);
    CHECK_STATUS(tether_fence_check_session(&f, ID("held"), NULL, 1, 1), N);
}

/* Each bad id refused by each id-taking call, with `status`, outputs untouched. */
static void bad_id(tether_engine *e, const uint8_t *id, size_t len, tether_status status, const char *says) {
    tether_fence f, good;
    bool b, found = false;
    CHECK_OK(tether_engine_fence(e, ID("held"), &found, &good));
    memset(&f, POISON, sizeof f);
    memset(&b, POISON, sizeof b);
    CHECK_STATUS(tether_engine_fence(e, id, len, &b, &f), status);
    CHECK(last_error_has(says) && untouched(&f, sizeof f) && untouched(&b, sizeof b));
    CHECK_STATUS(tether_engine_forget(e, id, len, &b), status);
    CHECK(last_error_has(says) && untouched(&b, sizeof b));
    CHECK_STATUS(tether_fence_check_supersedes(&good, id, len, false, 0), status);
    CHECK_STATUS(tether_fence_check_session(&good, id, len, ID("n"), 1), status);
    CHECK_STATUS(tether_fence_check_session(&good, ID("held"), id, len, 1), status);
}

static void bad_ids(tether_engine *e) {
    char long_id[TETHER_MAX_ID_LEN + 1];
    memset(long_id, 'x', sizeof long_id);
    bad_id(e, (const uint8_t *)"pv\xc3\x28", 4, TETHER_INVALID_UTF8, "not valid UTF-8 (bad byte at offset 2)");
    bad_id(e, (const uint8_t *)long_id, sizeof long_id, TETHER_INVALID_ARGUMENT, "129 bytes long");
    bad_id(e, (const uint8_t *)"a\0b", 3, TETHER_INVALID_ARGUMENT, "NUL byte at offset 1");
    bad_id(e, NULL, 0, TETHER_INVALID_ARGUMENT, "empty");
    bad_id(e, (const uint8_t *)"v", SIZE_MAX, TETHER_INVALID_ARGUMENT, "more than any object can hold");
}

/* Fences that are not fences: refused before either rule is applied. */
static void bad_fences(tether_engine *e) {
    tether_fence good;
    bool found = false;
    CHECK_OK(tether_engine_publish(e, ID("m"), ID("a"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_publish(e, ID("m"), ID("b"), TETHER_RWX, false, 0, NULL));
    CHECK_OK(tether_engine_fence(e, ID("m"), &found, &good));
    CHECK(found && good.node_count == 2);
    CHECK_OK(tether_fence_check_supersedes(&good, ID("m"), false, 0));

    enum { COUNT = 9 };
    tether_fence bad[COUNT];
    for (int i = 0; i < COUNT; i++) {
        bad[i] = good;
    }
    bad[0].node_count = 3;
    bad[1].node_count = SIZE_MAX;
    bad[2].nodes[1].node.len = TETHER_NODE_NAME_CAP; /* longer than a name can be */
    bad[3].nodes[0].node.bytes[0] = 0xff;           /* not UTF-8 */
    bad[4].nodes[0].node.bytes[0] = 0;              /* a NUL inside the name */
    bad[5].nodes[0].node.len = 0;                   /* an empty name */
    bad[6].nodes[1] = bad[6].nodes[0];              /* one node twice */
    bad[7].nodes[1].epoch = good.epoch + 1;         /* admitted after the fence */
    bad[8].mode = 7;                                /* not an access mode */
    const char *says[COUNT] = {"at most 2", "at most 2", "the limit is 128", "not valid UTF-8", "NUL byte",
                               "empty", "not a fence", "not a fence", "7 is not a tether_access_mode"};
    for (int i = 0; i < COUNT; i++) {
        tether_status st = tether_fence_check_supersedes(&bad[i], ID("m"), false, 0);
        CHECK(st == TETHER_INVALID_ARGUMENT || st == TETHER_INVALID_UTF8);
        if (!last_error_has(says[i])) {
            fprintf(stderr, "bad fence %d: message lacks \"%s\"\n", i, says[i]);
        }
        CHECK(last_error_has(says[i]));
        st = tether_fence_check_session(&bad[i], ID("m"), ID("a"), 1);
        CHECK(st == TETHER_INVALID_ARGUMENT || st == TETHER_INVALID_UTF8);
    }
    /* A bool byte that is neither 0 nor 1 is read as true, never trusted as a Rust bool. */
    tether_fence odd = good;
    memset(&odd.readonly, 2, 1);
    CHECK_OK(tether_fence_check_session(&odd, ID("m"), ID("a"), 1));
    /* Bytes after a name's length are ignored: the name is len bytes. */
    tether_fence tail = good;
    tail.nodes[0].node.bytes[tail.nodes[0].node.len] = 'z';
    CHECK_OK(tether_fence_check_session(&tail, ID("m"), ID("a"), 1));
}

/* Untracked volumes, a term out of range, forgetting an attached volume: refusals or answers
 * that leave everything as it was. */
static void edges(tether_engine *e) {
    tether_fence f;
    bool found = true;
    memset(&f, POISON, sizeof f);
    CHECK_OK(tether_engine_fence(e, ID("untracked"), &found, &f));
    CHECK(!found && untouched(&f, sizeof f));

    uint64_t term;
    memset(&term, POISON, sizeof term);
    CHECK_STATUS(tether_engine_set_term(e, UINT64_MAX, &term), TETHER_INVALID_ARGUMENT);
    CHECK(untouched(&term, sizeof term) && last_error_has("the limit is 4294967295"));
    CHECK_STATUS(tether_engine_set_term(e, (uint64_t)UINT32_MAX + 1, NULL), TETHER_INVALID_ARGUMENT);
    CHECK_OK(tether_engine_set_term(e, UINT32_MAX, &term));
    CHECK(term == UINT32_MAX);

    bool forgotten;
    memset(&forgotten, POISON, sizeof forgotten);
    CHECK_STATUS(tether_engine_forget(e, ID("held"), &forgotten), TETHER_STILL_ATTACHED);
    CHECK(untouched(&forgotten, sizeof forgotten));
    CHECK_OK(tether_engine_fence(e, ID("held"), &found, &f));
    CHECK(found && f.node_count == 1);

    char *json;
    size_t len;
    memset(&json, POISON, sizeof json);
    memset(&len, POISON, sizeof len);
    CHECK_STATUS(tether_engine_refence(NULL, &json, &len), TETHER_NULL_POINTER);
    CHECK(untouched(&json, sizeof json) && untouched(&len, sizeof len));
}

void test_fence_hostile(void) {
    tether_engine *e = manual_engine();
    null_pointers(e);
    bad_ids(e);
    bad_fences(e);
    edges(e);
    tether_engine_free(e);
}
