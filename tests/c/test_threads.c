/* One engine used from several pthreads at once: exactly one winner of a contested RWO
 * volume, every loser told who won, each thread's last error its own, counters consistent. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>

#include "check.h"

#define THREADS 4
#define CYCLES 300

typedef struct worker {
    tether_engine *engine;
    pthread_barrier_t *start;
    int index;
    tether_status contested;
    tether_node_name holder_seen;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    char node[16], volume[16];
    snprintf(node, sizeof node, "node-%d", w->index);
    snprintf(volume, sizeof volume, "own-%d", w->index);
    pthread_barrier_wait(w->start);

    w->contested = tether_engine_publish(w->engine, ID("contested"), ID(node), TETHER_RWO, false, 0, NULL);
    if (w->contested == TETHER_CONFLICT) {
        tether_error_info info;
        CHECK_OK(tether_last_error_info(&info));
        CHECK(info.status == TETHER_CONFLICT && info.node_count == 1);
        w->holder_seen = info.nodes[0];
    }
    for (int i = 0; i < CYCLES; i++) {
        tether_publish_result r;
        tether_unpublish_result u;
        bool within = false;
        CHECK_OK(tether_engine_publish(w->engine, ID(volume), ID(node), TETHER_RWO, false, 0, &r));
        CHECK(r.kind == TETHER_PUBLISHED_ATTACHED && r.epoch == (uint64_t)(2 * i + 1));
        CHECK_OK(tether_engine_unpublish(w->engine, ID(volume), ID(node), &u));
        CHECK(u.kind == TETHER_UNPUBLISHED_DETACHED);
        CHECK_OK(tether_engine_is_within_grace_period(w->engine, ID(volume), 30 * SEC, &within));
        CHECK(within);
        /* Odd threads fail on purpose; each thread must keep seeing its own last error. */
        if (w->index % 2 == 1) {
            CHECK_STATUS(tether_engine_epoch(w->engine, ID(""), NULL), TETHER_NULL_POINTER);
        } else {
            CHECK_STATUS(tether_engine_epoch(w->engine, NULL, 0, NULL), TETHER_NULL_POINTER);
            CHECK_STATUS(tether_engine_epoch(w->engine, ID(""), &r.epoch), TETHER_INVALID_ARGUMENT);
        }
        tether_error_info info;
        CHECK_OK(tether_last_error_info(&info));
        CHECK(info.status == (w->index % 2 == 1 ? TETHER_NULL_POINTER : TETHER_INVALID_ARGUMENT));
    }
    return NULL;
}

void test_threads(void) {
    tether_engine *e = manual_engine();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker){.engine = e, .start = &start, .index = i};
        CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }
    pthread_barrier_destroy(&start);

    bool found = false;
    tether_attachment a;
    CHECK_OK(tether_engine_get(e, ID("contested"), &found, &a));
    CHECK(found && a.node_count == 1);
    int winners = 0;
    for (int i = 0; i < THREADS; i++) {
        if (workers[i].contested == TETHER_OK) {
            winners++;
        } else {
            CHECK_STATUS(workers[i].contested, TETHER_CONFLICT);
            CHECK(workers[i].holder_seen.len == a.nodes[0].len &&
                  memcmp(workers[i].holder_seen.bytes, a.nodes[0].bytes, a.nodes[0].len) == 0);
        }
    }
    CHECK(winners == 1);

    tether_stats s;
    CHECK_OK(tether_engine_stats(e, &s));
    CHECK(s.attached == 1 + THREADS * CYCLES && s.detached == THREADS * CYCLES);
    CHECK(s.conflicts == THREADS - 1 && s.invalid_input == (THREADS / 2) * CYCLES);
    tether_engine_free(e);
}
