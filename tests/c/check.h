/* The C test program's checks: counted assertions (thread-safe), and helpers shared by the
 * test files. Every check prints its location when it fails; main prints the totals. */
#ifndef TETHER_TEST_CHECK_H
#define TETHER_TEST_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tether.h"

#ifdef TETHER_TEST_HOOKS
/* The test hook of a library built with the `test-hooks` feature (mk/ffi.mk builds the tests
 * against one); not in the public header, and the installed library does not have it. */
tether_status tether_debug_panic(void);
#endif

/* A fixed wall-clock start for manual clocks (2025-11-26T10:04:42Z), so reports are exact. */
#define WALL0 1764151482000000000ULL
#define SEC 1000000000ULL

/* An identifier as the (pointer, length) pair the API takes. */
#define ID(s) (const uint8_t *)(s), strlen(s)

void check_true(bool ok, const char *expr, const char *file, int line);
void check_status(tether_status got, tether_status want, const char *expr, const char *file, int line);
int checks_passed(void);
int checks_failed(void);

#define CHECK(cond) check_true((cond), #cond, __FILE__, __LINE__)
#define CHECK_STATUS(call, want) check_status((call), (want), #call, __FILE__, __LINE__)
#define CHECK_OK(call) CHECK_STATUS((call), TETHER_OK)

/* An engine on a manual clock at WALL0 with the default settings; aborts if it cannot be made. */
tether_engine *manual_engine(void);

/* A byte pattern outputs are filled with before a call that must not write them. */
#define POISON 0xA5

/* Whether `n` bytes at `p` still hold the poison pattern (the call wrote nothing). */
bool untouched(const void *p, size_t n);

/* Whether `f` admits exactly `count` nodes: n0 at e0, then n1 at e1 (NULL when unused). */
bool admits(const tether_fence *f, size_t count, const char *n0, uint64_t e0, const char *n1, uint64_t e1);

/* Whether the node name slot holds exactly `want`. */
bool node_is(const tether_node_name *n, const char *want);

/* Whether the calling thread's last error message contains `needle`. */
bool last_error_has(const char *needle);

void test_contract(void);
void test_fence(void);
void test_fence_hostile(void);
void test_hostile(void);
void test_state(void);
void test_threads(void);
void test_first_publish_race(void);
void test_version(void);

#endif
