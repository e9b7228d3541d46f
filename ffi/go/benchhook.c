//go:build tether_bench

// The benchmark hooks declared in benchhook.h.
#include <stdlib.h>
#include <string.h>

#include "benchhook.h"

struct tg_bench_keys {
    size_t count;
    uint8_t **bytes;
    size_t *lens;
};

void tg_bench_keys_free(tg_bench_keys *k) {
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; k->bytes != NULL && i < k->count; i++) {
        free(k->bytes[i]);
    }
    free(k->bytes);
    free(k->lens);
    free(k);
}

tg_bench_keys *tg_bench_keys_new(const uint8_t *names, const size_t *lens, size_t count) {
    tg_bench_keys *k = calloc(1, sizeof *k);
    if (k == NULL) {
        return NULL;
    }
    k->count = count;
    k->bytes = calloc(count, sizeof *k->bytes);
    k->lens = calloc(count, sizeof *k->lens);
    if (k->bytes == NULL || k->lens == NULL) {
        tg_bench_keys_free(k);
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        k->bytes[i] = malloc(lens[i] > 0 ? lens[i] : 1);
        if (k->bytes[i] == NULL) {
            tg_bench_keys_free(k);
            return NULL;
        }
        memcpy(k->bytes[i], names + at, lens[i]);
        k->lens[i] = lens[i];
        at += lens[i];
    }
    return k;
}

uint64_t tg_bench_grace(tg_engine e, const tg_bench_keys *k, uint64_t first, uint64_t iterations, uint64_t grace_ns) {
    uint64_t inside = 0;
    if (k == NULL || k->count == 0) {
        return 0;
    }
    for (uint64_t i = 1; i <= iterations; i++) {
        size_t at = (size_t)(((first + i) * 7919) % k->count);
        bool out = false;
        if (tether_engine_is_within_grace_period((const tether_engine *)e, k->bytes[at], k->lens[at], grace_ns, &out) ==
                TETHER_OK &&
            out) {
            inside++;
        }
    }
    return inside;
}
