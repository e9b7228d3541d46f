/* The corpus runner's JSON: reading steps (every key must be read), the shape of every outcome
 * and error as tests/contract/README.md names them, and the subset comparison. Errors whose
 * details the library keeps only in its message (an invalid argument's field and problem, a
 * snapshot error's kind) are read from the message text. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

static char first_failure[4096];

void fail(const char *fmt, ...) {
    if (first_failure[0] != 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_failure, sizeof first_failure, fmt, ap);
    va_end(ap);
    if (first_failure[0] == 0) {
        strcpy(first_failure, "(failed)");
    }
}

bool failing(void) { return first_failure[0] != 0; }
const char *failure(void) { return first_failure; }
void failure_reset(void) { first_failure[0] = 0; }

fields fields_of(json_object *obj, const char *what) {
    fields f = {.obj = obj, .what = what};
    if (!json_object_is_type(obj, json_type_object)) {
        fail("%s: not an object: %s", what, json_object_to_json_string(obj));
        f.obj = NULL;
    }
    return f;
}

static void mark(fields *f, const char *key) {
    if (f->nread < sizeof f->read / sizeof f->read[0]) {
        f->read[f->nread++] = key;
    }
}

json_object *opt(fields *f, const char *key) {
    mark(f, key);
    json_object *v = NULL;
    return f->obj != NULL && json_object_object_get_ex(f->obj, key, &v) ? v : NULL;
}

json_object *get(fields *f, const char *key) {
    json_object *v = opt(f, key);
    if (v == NULL) {
        fail("%s: missing key \"%s\"", f->what, key);
    }
    return v;
}

void finish(fields *f) {
    if (f->obj == NULL) {
        return;
    }
    json_object_object_foreach(f->obj, key, value) {
        (void)value;
        bool read = false;
        for (size_t i = 0; i < f->nread && !read; i++) {
            read = strcmp(f->read[i], key) == 0;
        }
        if (!read) {
            fail("%s: unknown key \"%s\"", f->what, key);
        }
    }
}

uint64_t uint_of(json_object *v) {
    if (!json_object_is_type(v, json_type_int)) {
        fail("not an integer: %s", v ? json_object_to_json_string(v) : "null");
        return 0;
    }
    return json_object_get_uint64(v);
}

ident ident_of(json_object *v) {
    ident id = {NULL, 0};
    if (json_object_is_type(v, json_type_string)) {
        id.len = (size_t)json_object_get_string_len(v);
        id.ptr = malloc(id.len + 1);
        memcpy(id.ptr, json_object_get_string(v), id.len + 1);
        return id;
    }
    fields f = fields_of(v, "identifier");
    json_object *repeat = get(&f, "repeat");
    uint64_t times = uint_of(get(&f, "times"));
    finish(&f);
    const char *s = json_object_is_type(repeat, json_type_string) ? json_object_get_string(repeat) : "";
    size_t n = strlen(s);
    id.len = n * times;
    id.ptr = malloc(id.len + 1);
    for (uint64_t i = 0; i < times; i++) {
        memcpy(id.ptr + i * n, s, n);
    }
    id.ptr[id.len] = 0;
    return id;
}

uint64_t seconds_ns(json_object *v) {
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
        fail("not a number of seconds: %s", v ? json_object_to_json_string(v) : "null");
        return 0;
    }
    return (uint64_t)llround(json_object_get_double(v) * 1e9);
}

json_object *num(uint64_t n) { return json_object_new_uint64(n); }
json_object *secs(uint64_t ns) { return json_object_new_double((double)ns / 1e9); }
json_object *text(const char *s) { return json_object_new_string(s); }

json_object *name_of(const tether_node_name *n) {
    size_t len = n->len < TETHER_NODE_NAME_CAP ? n->len : TETHER_NODE_NAME_CAP;
    return json_object_new_string_len((const char *)n->bytes, (int)len);
}

json_object *access_name(uint32_t mode, bool readonly) {
    const char *m = mode == TETHER_RWX ? "RWX" : "RWO";
    char buf[8];
    snprintf(buf, sizeof buf, "%s%s", m, readonly ? "-ro" : "");
    return text(buf);
}

json_object *names(const tether_node_name *nodes, size_t count) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < count && i < 2; i++) {
        json_object_array_add(a, name_of(&nodes[i]));
    }
    return a;
}

static json_object *pair(json_object *node, uint64_t epoch) {
    json_object *p = json_object_new_array();
    json_object_array_add(p, node);
    json_object_array_add(p, num(epoch));
    return p;
}

static json_object *fence_of(uint64_t epoch, json_object *access, json_object *nodes) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "epoch", num(epoch));
    json_object_object_add(o, "access", access);
    json_object_object_add(o, "nodes", nodes);
    return o;
}

json_object *fence_shape(const tether_fence *f) {
    json_object *nodes = json_object_new_array();
    for (size_t i = 0; i < f->node_count && i < 2; i++) {
        json_object_array_add(nodes, pair(name_of(&f->nodes[i].node), f->nodes[i].epoch));
    }
    return fence_of(f->epoch, access_name(f->mode, f->readonly), nodes);
}

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

json_object *fence_json_shape(json_object *f) {
    json_object *nodes = json_object_new_array();
    json_object *list = member(f, "nodes");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *n = json_object_array_get_idx(list, i);
        json_object *node = member(n, "node");
        json_object_array_add(nodes, pair(json_object_get(node), json_object_get_uint64(member(n, "admitted_at"))));
    }
    uint32_t mode = strcmp(json_object_get_string(member(f, "mode")), "RWX") == 0 ? TETHER_RWX : TETHER_RWO;
    return fence_of(json_object_get_uint64(member(f, "epoch")),
                    access_name(mode, json_object_get_boolean(member(f, "readonly"))), nodes);
}

json_object *stats_shape(const tether_stats *s) {
    static const struct {
        const char *name;
        size_t offset;
    } counters[] = {
#define COUNTER(f) {#f, offsetof(tether_stats, f)}
        COUNTER(attached),           COUNTER(already_attached),     COUNTER(handed_off),
        COUNTER(migrations_started), COUNTER(conflicts),            COUNTER(incompatible),
        COUNTER(migration_limit),    COUNTER(migration_timed_out),  COUNTER(detached),
        COUNTER(not_attached),       COUNTER(migrations_completed), COUNTER(migrations_aborted),
        COUNTER(migrations_timed_out), COUNTER(stale_cleared),      COUNTER(reconciles),
        COUNTER(invalid_input),      COUNTER(active_migrations),    COUNTER(migrations_detached),
        COUNTER(migrations_cleared), COUNTER(refenced),             COUNTER(forgotten),
        COUNTER(epoch_exhausted),
#undef COUNTER
    };
    _Static_assert(sizeof(tether_stats) == 22 * sizeof(uint64_t), "a counter was added: name it here");
    json_object *o = json_object_new_object();
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)s + counters[i].offset, sizeof v);
        json_object_object_add(o, counters[i].name, num(v));
    }
    return o;
}

/* Message fragments of the core's Problem and Inconsistency, most specific first. */
static const char *const problems[][2] = {
    {"is empty", "empty"},           {"bytes long", "too_long"},          {"NUL byte", "contains_nul"},
    {"not valid UTF-8", "not_utf8"}, {"must be between", "out_of_range"}, {"the limit is", "too_large"},
    {NULL, NULL},
};
static const char *const inconsistencies[][2] = {
    {"RWO volume is attached to two nodes", "rwo_on_two_nodes"},
    {"at most 2 are possible", "too_many_nodes"},
    {"lists no node", "no_nodes"},
    {"listed twice in one attachment", "duplicate_node"},
    {"the missing node appears more than once", "duplicate_missing_node"},
    {"the volume appears more than once", "duplicate_volume"},
    {"has epoch 0", "attached_at_epoch_zero"},
    {"which cannot grow", "epoch_cannot_grow"},
    {"admission epochs", "bad_admissions"},
    {"ahead of the restoring clock", "future_time"},
    {"above the largest term", "term_too_large"},
    {"invalid ", "invalid"},
    {NULL, NULL},
};
static const char *const field_names[][2] = {
    {"volume id", "volume"},       {"node id", "node"}, {"grace period", "grace_period"},
    {"migration timeout", "migration_timeout"}, {"term", "term"}, {NULL, NULL},
};

static json_object *first_of(const char *const table[][2], const char *message) {
    for (size_t i = 0; table[i][0] != NULL; i++) {
        if (strstr(message, table[i][0]) != NULL) {
            return text(table[i][1]);
        }
    }
    char buf[512];
    snprintf(buf, sizeof buf, "unknown: %s", message);
    return text(buf);
}

/* The field of "invalid <field>:" that comes first in the message; "" when none does. */
static json_object *invalid_field(const char *message) {
    const char *best = NULL, *at = NULL;
    for (size_t i = 0; field_names[i][0] != NULL; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "invalid %s:", field_names[i][0]);
        const char *p = strstr(message, needle);
        if (p != NULL && (at == NULL || p < at)) {
            at = p;
            best = field_names[i][1];
        }
    }
    return text(best ? best : "");
}

static json_object *snapshot_error(json_object *o, const char *message) {
    json_object_object_add(o, "error", text("BadSnapshot"));
    const char *v = strstr(message, "snapshot version ");
    unsigned long long found = 0;
    int used = 0;
    if (v != NULL && sscanf(v, "snapshot version %llu is not supported%n", &found, &used) == 1 && used > 0) {
        json_object_object_add(o, "snapshot", text("unknown_version"));
        json_object_object_add(o, "found", num(found));
        return o;
    }
    const char *entry = strstr(message, "snapshot entry \"");
    const char *end = entry ? strstr(entry, "\" is inconsistent: ") : NULL;
    if (end != NULL) {
        const char *subject = entry + strlen("snapshot entry \"");
        json_object_object_add(o, "snapshot", text("inconsistent"));
        json_object_object_add(o, "subject", json_object_new_string_len(subject, (int)(end - subject)));
        json_object_object_add(o, "problem", first_of(inconsistencies, end + strlen("\" is inconsistent: ")));
        return o;
    }
    json_object_object_add(o, "snapshot", text("malformed"));
    return o;
}

/* The details each refusal names, beyond its kind. */
enum { NODES = 1, TIMES = 2, EPOCH = 4, APPLIED = 8 };
static const struct {
    tether_status status;
    const char *kind;
    unsigned details;
} kinds[] = {
    {TETHER_CONFLICT, "Conflict", NODES},
    {TETHER_MIGRATION_LIMIT, "MigrationLimit", NODES},
    {TETHER_MIGRATION_TIMED_OUT, "MigrationTimedOut", NODES | TIMES},
    {TETHER_STILL_ATTACHED, "StillAttached", NODES},
    {TETHER_EPOCH_EXHAUSTED, "EpochExhausted", EPOCH},
    {TETHER_STALE_FENCE, "StaleFence", EPOCH | APPLIED},
};

/* The refusals whose details are not plain fields of the error info. */
static void special(json_object *o, tether_status status, const tether_error_info *info, const char *m, uint32_t mode,
                    bool readonly) {
    switch (status) {
    case TETHER_INVALID_ARGUMENT:
    case TETHER_INVALID_UTF8:
        json_object_object_add(o, "error", text("InvalidInput"));
        json_object_object_add(o, "field", invalid_field(m));
        json_object_object_add(o, "problem", first_of(problems, m));
        return;
    case TETHER_INCOMPATIBLE:
        json_object_object_add(o, "error", text("Incompatible"));
        json_object_object_add(o, "existing", access_name(info->existing_mode, info->existing_readonly));
        json_object_object_add(o, "requested", access_name(mode, readonly));
        return;
    case TETHER_NOT_ADMITTED:
        json_object_object_add(o, "error", text("NotAdmitted"));
        json_object_object_add(o, "presented", num(info->presented_epoch));
        json_object_object_add(o, "admitted", info->admitted_epoch != 0 ? num(info->admitted_epoch) : NULL);
        json_object_object_add(o, "fence_epoch", num(info->epoch));
        return;
    case TETHER_BAD_SNAPSHOT:
        snapshot_error(o, m);
        return;
    default: {
        char buf[600];
        snprintf(buf, sizeof buf, "Unknown: %s: %s", tether_status_name(status), m);
        json_object_object_add(o, "error", text(buf));
    }
    }
}

json_object *refusal(tether_status status, uint32_t mode, bool readonly) {
    tether_error_info info;
    memset(&info, 0, sizeof info);
    tether_last_error_info(&info);
    char *message = tether_last_error();
    json_object *o = json_object_new_object();
    size_t k = 0;
    while (k < sizeof kinds / sizeof kinds[0] && kinds[k].status != status) {
        k++;
    }
    if (k == sizeof kinds / sizeof kinds[0]) {
        special(o, status, &info, message ? message : "", mode, readonly);
        tether_string_free(message);
        return o;
    }
    unsigned d = kinds[k].details;
    json_object_object_add(o, "error", text(kinds[k].kind));
    if (d & NODES) {
        json_object_object_add(o, "nodes", names(info.nodes, info.node_count));
    }
    if (d & TIMES) {
        json_object_object_add(o, "elapsed_s", secs(info.elapsed_ns));
        json_object_object_add(o, "timeout_s", secs(info.timeout_ns));
    }
    if (d & EPOCH) {
        json_object_object_add(o, "epoch", num(info.epoch));
    }
    if (d & APPLIED) {
        json_object_object_add(o, "applied", num(info.applied_epoch));
    }
    tether_string_free(message);
    return o;
}

static bool same_number(json_object *want, json_object *got) {
    bool want_int = json_object_is_type(want, json_type_int), got_int = json_object_is_type(got, json_type_int);
    if (!got_int && !json_object_is_type(got, json_type_double)) {
        return false;
    }
    if (want_int && got_int) {
        return json_object_get_uint64(want) == json_object_get_uint64(got) &&
               json_object_get_int64(want) == json_object_get_int64(got);
    }
    return json_object_get_double(want) == json_object_get_double(got);
}

static bool differ(json_object *want, json_object *got, const char *path) {
    fail("%s: expected %s, got %s", path, json_object_to_json_string(want), json_object_to_json_string(got));
    return false;
}

bool subset(json_object *want, json_object *got, const char *path) {
    char sub[512];
    switch (json_object_get_type(want)) {
    case json_type_object:
        if (!json_object_is_type(got, json_type_object)) {
            return differ(want, got, path);
        }
        json_object_object_foreach(want, key, wv) {
            json_object *gv = NULL;
            snprintf(sub, sizeof sub, "%s.%s", path, key);
            if (!json_object_object_get_ex(got, key, &gv)) {
                fail("%s: expected %s, but the outcome has no such key", sub, json_object_to_json_string(wv));
                return false;
            }
            if (!subset(wv, gv, sub)) {
                return false;
            }
        }
        return true;
    case json_type_array:
        if (!json_object_is_type(got, json_type_array) || json_object_array_length(got) != json_object_array_length(want)) {
            return differ(want, got, path);
        }
        for (size_t i = 0; i < json_object_array_length(want); i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (!subset(json_object_array_get_idx(want, i), json_object_array_get_idx(got, i), sub)) {
                return false;
            }
        }
        return true;
    case json_type_int:
    case json_type_double:
        return same_number(want, got) || differ(want, got, path);
    case json_type_string:
        return (json_object_is_type(got, json_type_string) &&
                json_object_get_string_len(got) == json_object_get_string_len(want) &&
                memcmp(json_object_get_string(got), json_object_get_string(want),
                       (size_t)json_object_get_string_len(want)) == 0) ||
               differ(want, got, path);
    case json_type_boolean:
        return (json_object_is_type(got, json_type_boolean) &&
                json_object_get_boolean(got) == json_object_get_boolean(want)) ||
               differ(want, got, path);
    case json_type_null:
        return got == NULL || differ(want, got, path);
    }
    return differ(want, got, path);
}
