/* Counted assertions and the shared helpers declared in check.h. */
#include "check.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_int passed;
static atomic_int failed;

void check_true(bool ok, const char *expr, const char *file, int line) {
    if (ok) {
        atomic_fetch_add(&passed, 1);
        return;
    }
    atomic_fetch_add(&failed, 1);
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
}

void check_status(tether_status got, tether_status want, const char *expr, const char *file, int line) {
    if (got == want) {
        atomic_fetch_add(&passed, 1);
        return;
    }
    atomic_fetch_add(&failed, 1);
    char *msg = got == TETHER_OK ? NULL : tether_last_error();
    fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (last error: %s)\n", file, line, expr,
            tether_status_name(got), tether_status_name(want), msg ? msg : "-");
    tether_string_free(msg);
}

int checks_passed(void) { return atomic_load(&passed); }
int checks_failed(void) { return atomic_load(&failed); }

tether_engine *manual_engine(void) {
    tether_engine *e = NULL;
    if (tether_engine_new_manual_clock(NULL, WALL0, &e) != TETHER_OK || e == NULL) {
        fprintf(stderr, "cannot make an engine\n");
        exit(2);
    }
    return e;
}

bool untouched(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != POISON) {
            return false;
        }
    }
    return true;
}

bool admits(const tether_fence *f, size_t count, const char *n0, uint64_t e0, const char *n1, uint64_t e1) {
    if (f->node_count != count) {
        return false;
    }
    const char *names[2] = {n0, n1};
    const uint64_t epochs[2] = {e0, e1};
    for (size_t i = 0; i < count; i++) {
        if (!node_is(&f->nodes[i].node, names[i]) || f->nodes[i].epoch != epochs[i]) {
            return false;
        }
    }
    return true;
}

bool node_is(const tether_node_name *n, const char *want) {
    size_t len = strlen(want);
    return n->len == len && memcmp(n->bytes, want, len) == 0 && n->bytes[len] == 0;
}

bool last_error_has(const char *needle) {
    char *msg = tether_last_error();
    bool has = msg != NULL && strstr(msg, needle) != NULL;
    tether_string_free(msg);
    return has;
}
