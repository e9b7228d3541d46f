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

/* Runs `fn` on THREADS threads, the i-th on the i-th element (of `size` bytes) of `args`, and
 * waits for them all. */
static void run_threads(void *(*fn)(void *), void *args, size_t size) {
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, fn, (char *)args + (size_t)i * size) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
    }
}

void test_threads(void) {
    tether_engine *e = manual_engine();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker){.engine = e, .start = &start, .index = i};
    }
    run_threads(work, workers, sizeof *workers);
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

/* Identical first publishes (issue 18, hole 1): every round, all threads publish one new volume
 * to one never-seen node at once. Exactly one is ATTACHED; the others are ALREADY_ATTACHED with
 * the same admission epoch; every fence lists the node once. Every RACE_RESTORE_EVERY rounds
 * the engine's snapshot restores into a fresh engine. */
#define RACE_ROUNDS 2000
#define RACE_RESTORE_EVERY 250

typedef struct race_seen {
    tether_status status;
    tether_published kind;
    uint64_t admitted;
    size_t fence_nodes;
    tether_node_name fenced;
} race_seen;

typedef struct racer {
    tether_engine *engine;
    pthread_barrier_t *round;
    int index;
    race_seen *seen; /* RACE_ROUNDS entries */
} racer;

static void restore_into_fresh(tether_engine *e) {
    char *doc = NULL;
    size_t len = 0;
    CHECK_OK(tether_engine_snapshot(e, &doc, &len));
    tether_engine *fresh = manual_engine();
    CHECK_OK(tether_engine_restore(fresh, (const uint8_t *)doc, len));
    tether_engine_free(fresh);
    tether_string_free(doc);
}

static void *race(void *arg) {
    racer *r = arg;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        char volume[32], node[32];
        snprintf(volume, sizeof volume, "race-%d", i);
        snprintf(node, sizeof node, "new-node-%d", i);
        tether_publish_result out = {0};
        pthread_barrier_wait(r->round);
        uint32_t mode = i % 2 == 0 ? TETHER_RWO : TETHER_RWX;
        race_seen *s = &r->seen[i];
        s->status = tether_engine_publish(r->engine, ID(volume), ID(node), mode, false, 0, &out);
        s->kind = out.kind;
        s->admitted = out.admitted_epoch;
        s->fence_nodes = out.fence.node_count;
        s->fenced = out.fence.nodes[0].node;
        pthread_barrier_wait(r->round);
        if (r->index == 0 && i % RACE_RESTORE_EVERY == RACE_RESTORE_EVERY - 1) {
            restore_into_fresh(r->engine);
        }
    }
    return NULL;
}

void test_first_publish_race(void) {
    tether_engine *e = manual_engine();
    pthread_barrier_t round;
    pthread_barrier_init(&round, NULL, THREADS);
    racer racers[THREADS];
    static race_seen seen[THREADS][RACE_ROUNDS];
    for (int t = 0; t < THREADS; t++) {
        racers[t] = (racer){.engine = e, .round = &round, .index = t, .seen = seen[t]};
    }
    run_threads(race, racers, sizeof *racers);
    pthread_barrier_destroy(&round);

    int bad_rounds = 0;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        char node[32];
        snprintf(node, sizeof node, "new-node-%d", i);
        int attached = 0, ok = 1;
        for (int t = 0; t < THREADS; t++) {
            race_seen *s = &seen[t][i];
            ok &= s->status == TETHER_OK && s->admitted == 1 && s->fence_nodes == 1 &&
                  s->fenced.len == strlen(node) && memcmp(s->fenced.bytes, node, s->fenced.len) == 0;
            ok &= s->kind == TETHER_PUBLISHED_ATTACHED || s->kind == TETHER_PUBLISHED_ALREADY_ATTACHED;
            attached += s->status == TETHER_OK && s->kind == TETHER_PUBLISHED_ATTACHED;
        }
        if (!ok || attached != 1) {
            if (bad_rounds++ == 0) {
                fprintf(stderr, "first publish race, round %d: %d ATTACHED; statuses %d %d %d %d\n", i, attached,
                        (int)seen[0][i].status, (int)seen[1][i].status, (int)seen[2][i].status,
                        (int)seen[3][i].status);
            }
        }
    }
    CHECK(bad_rounds == 0);
    tether_stats s;
    CHECK_OK(tether_engine_stats(e, &s));
    CHECK(s.attached == RACE_ROUNDS && s.already_attached == (uint64_t)RACE_ROUNDS * (THREADS - 1));
    CHECK(s.conflicts == 0 && s.migrations_started == 0);
    restore_into_fresh(e);
    tether_engine_free(e);
}
