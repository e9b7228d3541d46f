/* The contract corpus (the JSON files of tests/contract) over the C ABI: the format is
 * tests/contract/README.md. JSON is read and built with json-c (Debian's libjson-c-dev), the one
 * kept C JSON library of the three in Debian that reads integers up to UINT64_MAX exactly
 * (epochs reach 2^64 - 1; jansson's integers are signed, cJSON's are doubles). */
#ifndef TETHER_CORPUS_H
#define TETHER_CORPUS_H

#include <json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether.h"

/* The first failure of the running scenario (the rest are not recorded); empty while it passes. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool failing(void);
const char *failure(void);
void failure_reset(void);

/* One JSON object whose every key must be read: `finish` fails on any key not read. */
typedef struct {
    json_object *obj;
    const char *what;
    const char *read[16];
    size_t nread;
} fields;

fields fields_of(json_object *obj, const char *what);
/* The value at `key`, or NULL (absent or null); marks the key read. */
json_object *opt(fields *f, const char *key);
/* The value at `key`; fails when absent or null. */
json_object *get(fields *f, const char *key);
void finish(fields *f);

/* An identifier: a string, or {"repeat": s, "times": n}. Owned by the caller (free()). */
typedef struct {
    char *ptr;
    size_t len;
} ident;
ident ident_of(json_object *v);
/* A duration in seconds (a JSON number) as nanoseconds. */
uint64_t seconds_ns(json_object *v);
/* A JSON integer as uint64_t (fails if it is not one). */
uint64_t uint_of(json_object *v);

/* Outcome builders (each returns a new reference). */
json_object *num(uint64_t n);
json_object *secs(uint64_t ns);
json_object *text(const char *s);
json_object *name_of(const tether_node_name *n);
json_object *access_name(uint32_t mode, bool readonly);
json_object *fence_shape(const tether_fence *f);
/* A fence as the library's JSON writes it ({"epoch","mode","readonly","nodes":[{"node","admitted_at"}]}). */
json_object *fence_json_shape(json_object *f);
json_object *names(const tether_node_name *nodes, size_t count);
json_object *stats_shape(const tether_stats *s);
/* The outcome of a refused call: {"error": kind, ...}, from the calling thread's last error.
 * `requested` is the access the caller asked for (the library's details name only the existing). */
json_object *refusal(tether_status status, uint32_t mode, bool readonly);

/* Whether every key `want` names is in `got` with an equal value (numbers by value; arrays
 * element by element, each again a subset); fails with the first difference. */
bool subset(json_object *want, json_object *got, const char *path);

/* One scenario's world: an engine on a manual clock at `now`. */
typedef struct {
    tether_engine *e;
    uint64_t now;
} world;

bool world_new(world *w, uint64_t wall, const char *snapshot);
void world_free(world *w);
/* Applies one step, checks the invariants and compares the outcome; false on failure. */
bool world_step(world *w, json_object *step);

#endif
