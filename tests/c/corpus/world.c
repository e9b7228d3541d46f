/* One corpus scenario's world over the C ABI: an engine on a manual clock, each step applied to
 * it, the state compared around every refused step and the invariants checked after every step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

bool world_new(world *w, uint64_t wall, const char *snapshot) {
    w->e = NULL;
    w->now = wall;
    tether_status s = tether_engine_new_manual_clock(NULL, wall, &w->e);
    if (s != TETHER_OK) {
        fail("cannot make an engine: %s", tether_status_name(s));
        return false;
    }
    if (snapshot != NULL && (s = tether_engine_restore_cstr(w->e, snapshot)) != TETHER_OK) {
        fail("the snapshot does not restore: %s", tether_status_name(s));
        return false;
    }
    return true;
}

void world_free(world *w) {
    tether_engine_free(w->e);
    w->e = NULL;
}

/* The engine's whole state as its snapshot document (owned), or NULL after failing. */
static char *snapshot(const world *w) {
    char *doc = NULL;
    tether_status s = tether_engine_snapshot(w->e, &doc, NULL);
    if (s != TETHER_OK) {
        fail("snapshot: %s", tether_status_name(s));
        return NULL;
    }
    return doc;
}

/* A library JSON string (freed here) parsed, or NULL after failing. */
static json_object *parsed(tether_status s, char *json, const char *what) {
    if (s != TETHER_OK) {
        fail("%s: %s", what, tether_status_name(s));
        return NULL;
    }
    json_object *o = json_tokener_parse(json);
    tether_string_free(json);
    if (o == NULL) {
        fail("%s: the library's JSON does not parse", what);
    }
    return o;
}

static json_object *member(json_object *o, const char *key) {
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

static bool invariants(const world *w) {
    char *json = NULL;
    tether_status listed = tether_engine_list(w->e, &json, NULL);
    json_object *list = parsed(listed, json, "list");
    bool ok = list != NULL;
    for (size_t i = 0; ok && i < json_object_array_length(list); i++) {
        json_object *a = json_object_array_get_idx(list, i);
        const char *volume = json_object_get_string(member(a, "volume"));
        json_object *nodes = member(a, "nodes");
        size_t count = json_object_array_length(nodes);
        size_t limit = strcmp(json_object_get_string(member(a, "mode")), "RWX") == 0 ? 2 : 1;
        bool found = false;
        tether_fence f;
        tether_status s = tether_engine_fence(w->e, (const uint8_t *)volume, strlen(volume), &found, &f);
        ok = count <= limit && s == TETHER_OK && found && f.epoch == json_object_get_uint64(member(a, "epoch")) &&
             f.node_count == count;
        for (size_t n = 0; ok && n < count; n++) {
            json_object *node = json_object_array_get_idx(nodes, n);
            ok = f.nodes[n].node.len == (size_t)json_object_get_string_len(node) &&
                 memcmp(f.nodes[n].node.bytes, json_object_get_string(node), f.nodes[n].node.len) == 0;
        }
        if (!ok) {
            fail("invariant broken: %s", json_object_to_json_string(a));
        }
    }
    json_object_put(list);
    return ok;
}

static json_object *done(tether_status s) { return s == TETHER_OK ? json_object_new_object() : refusal(s, 0, false); }

static json_object *published(const tether_publish_result *r) {
    static const char *const kinds[] = {"?", "Attached", "AlreadyAttached", "HandedOff", "MigrationStarted"};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "outcome", text(r->kind <= 4 ? kinds[r->kind] : "?"));
    json_object_object_add(o, "epoch", num(r->epoch));
    json_object_object_add(o, "admitted", num(r->admitted_epoch));
    json_object_object_add(o, "fence", fence_shape(&r->fence));
    if (r->kind == TETHER_PUBLISHED_HANDED_OFF) {
        json_object_object_add(o, "from", name_of(&r->other_node));
    } else if (r->kind == TETHER_PUBLISHED_MIGRATION_STARTED) {
        json_object_object_add(o, "source", name_of(&r->other_node));
        json_object_object_add(o, "timeout_s", secs(r->migration_timeout_ns));
    }
    return o;
}

static json_object *unpublished(const tether_unpublish_result *r) {
    static const char *const kinds[] = {"?", "NotAttached", "Detached", "MigrationCompleted", "MigrationAborted"};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "outcome", text(r->kind <= 4 ? kinds[r->kind] : "?"));
    if (r->kind == TETHER_UNPUBLISHED_NOT_ATTACHED) {
        return o;
    }
    json_object_object_add(o, "epoch", num(r->epoch));
    json_object_object_add(o, "fence", fence_shape(&r->fence));
    if (r->kind == TETHER_UNPUBLISHED_DETACHED) {
        json_object_object_add(o, "nodes", names(r->nodes, r->node_count));
        return o;
    }
    json_object_object_add(o, "source", name_of(&r->nodes[0]));
    json_object_object_add(o, "target", name_of(&r->nodes[1]));
    if (r->kind == TETHER_UNPUBLISHED_MIGRATION_COMPLETED) {
        json_object_object_add(o, "duration_s", secs(r->duration_ns));
    }
    return o;
}

static json_object *publish(world *w, fields *f, const ident *v) {
    ident n = ident_of(get(f, "node"));
    json_object *mode = opt(f, "mode"), *ro = opt(f, "readonly"), *timeout = opt(f, "timeout_s");
    uint32_t m = mode != NULL && strcmp(json_object_get_string(mode), "RWX") == 0 ? TETHER_RWX : TETHER_RWO;
    bool readonly = ro != NULL && json_object_get_boolean(ro);
    uint64_t timeout_ns = timeout != NULL ? seconds_ns(timeout) : 0;
    tether_publish_result r;
    tether_status s = tether_engine_publish(w->e, (const uint8_t *)v->ptr, v->len, (const uint8_t *)n.ptr, n.len, m,
                                            readonly, timeout_ns, &r);
    free(n.ptr);
    return s == TETHER_OK ? published(&r) : refusal(s, m, readonly);
}

static json_object *unpublish(world *w, fields *f, const ident *v) {
    json_object *node = opt(f, "node");
    tether_unpublish_result r;
    tether_status s;
    if (node != NULL) {
        ident n = ident_of(node);
        s = tether_engine_unpublish(w->e, (const uint8_t *)v->ptr, v->len, (const uint8_t *)n.ptr, n.len, &r);
        free(n.ptr);
    } else {
        s = tether_engine_unpublish_all(w->e, (const uint8_t *)v->ptr, v->len, &r);
    }
    return s == TETHER_OK ? unpublished(&r) : refusal(s, 0, false);
}

static json_object *clear_stale(world *w, fields *f, const ident *v) {
    ident n = ident_of(get(f, "node"));
    tether_stale_result r;
    tether_status s = tether_engine_clear_stale(w->e, (const uint8_t *)v->ptr, v->len, (const uint8_t *)n.ptr, n.len, &r);
    json_object *o = s == TETHER_OK ? json_object_new_object() : refusal(s, 0, false);
    if (s == TETHER_OK && r.kind != TETHER_STALE_CLEARED) {
        json_object_object_add(o, "outcome", text("NotAttached"));
    } else if (s == TETHER_OK) {
        json_object_object_add(o, "outcome", text("Cleared"));
        json_object_object_add(o, "node", json_object_new_string_len(n.ptr, (int)n.len));
        json_object_object_add(o, "remaining", r.remaining.len > 0 ? name_of(&r.remaining) : NULL);
        json_object_object_add(o, "epoch", num(r.epoch));
        json_object_object_add(o, "fence", fence_shape(&r.fence));
    }
    free(n.ptr);
    return o;
}

/* Sorting the report's lists: by the text of the keys named (cleared by volume then node). */
static int by_volume_node(const void *a, const void *b) {
    json_object *x = *(json_object *const *)a, *y = *(json_object *const *)b;
    int c = strcmp(json_object_get_string(member(x, "volume")), json_object_get_string(member(y, "volume")));
    return c != 0 ? c : strcmp(json_object_get_string(member(x, "node")), json_object_get_string(member(y, "node")));
}
static int by_node(const void *a, const void *b) {
    return strcmp(json_object_get_string(member(*(json_object *const *)a, "node")),
                  json_object_get_string(member(*(json_object *const *)b, "node")));
}
static int by_volume(const void *a, const void *b) {
    return strcmp(json_object_get_string(member(*(json_object *const *)a, "volume")),
                  json_object_get_string(member(*(json_object *const *)b, "volume")));
}
static int by_text(const void *a, const void *b) {
    return strcmp(json_object_get_string(*(json_object *const *)a), json_object_get_string(*(json_object *const *)b));
}

/* A copy of each element of `list` (sorted first) with the keys named: a key ending in "_ns"
 * becomes seconds under the same name ending in "_s", "fence" the corpus's fence shape; a NULL
 * `keys` copies the elements as they are. */
static json_object *reshaped(json_object *list, int (*order)(const void *, const void *), const char *const *keys) {
    json_object *out = json_object_new_array();
    json_object_array_sort(list, order);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *from = json_object_array_get_idx(list, i), *o = json_object_new_object();
        if (keys == NULL) {
            json_object_put(o);
            json_object_array_add(out, json_object_get(from));
            continue;
        }
        for (const char *const *k = keys; *k != NULL; k++) {
            size_t n = strlen(*k);
            json_object *v = member(from, *k);
            if (n > 3 && strcmp(*k + n - 3, "_ns") == 0) {
                char name[64];
                snprintf(name, sizeof name, "%.*s_s", (int)(n - 3), *k);
                json_object_object_add(o, name, secs(json_object_get_uint64(v)));
            } else {
                json_object_object_add(o, *k, strcmp(*k, "fence") == 0 ? fence_json_shape(v) : json_object_get(v));
            }
        }
        json_object_array_add(out, o);
    }
    return out;
}

static json_object *reconciled(json_object *r) {
    static const char *const cleared[] = {"volume", "node", "epoch", "fence", NULL};
    static const char *const pending[] = {"node", "volumes", "clears_in_ns", NULL};
    static const char *const timed_out[] = {"volume", "source", "target", "elapsed_ns", "timeout_ns", NULL};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "cleared", reshaped(member(r, "cleared"), by_volume_node, cleared));
    json_object_object_add(o, "pending", reshaped(member(r, "pending"), by_node, pending));
    json_object_object_add(o, "returned", reshaped(member(r, "returned"), by_text, NULL));
    json_object_object_add(o, "timed_out", reshaped(member(r, "timed_out_migrations"), by_volume, timed_out));
    json_object_put(r);
    return o;
}

static json_object *reconcile(world *w, fields *f) {
    json_object *live = get(f, "live");
    size_t count = json_object_array_length(live);
    ident *ids = calloc(count + 1, sizeof *ids);
    tether_str *strs = calloc(count + 1, sizeof *strs);
    for (size_t i = 0; i < count; i++) {
        ids[i] = ident_of(json_object_array_get_idx(live, i));
        strs[i] = (tether_str){(const uint8_t *)ids[i].ptr, ids[i].len};
    }
    char *json = NULL;
    tether_status s = tether_engine_reconcile(w->e, strs, count, &json, NULL);
    for (size_t i = 0; i < count; i++) {
        free(ids[i].ptr);
    }
    free(ids);
    free(strs);
    if (s != TETHER_OK) {
        return refusal(s, 0, false);
    }
    json_object *r = parsed(s, json, "reconcile");
    return r ? reconciled(r) : NULL;
}

static json_object *refence(world *w) {
    char *json = NULL;
    tether_status s = tether_engine_refence(w->e, &json, NULL);
    if (s != TETHER_OK) {
        return refusal(s, 0, false);
    }
    json_object *list = parsed(s, json, "refence");
    if (list == NULL) {
        return NULL;
    }
    json_object *fences = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *vf = json_object_array_get_idx(list, i), *o = json_object_new_object();
        json_object_object_add(o, "volume", json_object_get(member(vf, "volume")));
        json_object_object_add(o, "fence", fence_json_shape(member(vf, "fence")));
        json_object_array_add(fences, o);
    }
    json_object_put(list);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "fences", fences);
    return o;
}

static json_object *flag(tether_status s, const char *key, bool value) {
    json_object *o = done(s);
    if (s == TETHER_OK) {
        json_object_object_add(o, key, json_object_new_boolean(value));
    }
    return o;
}

static json_object *with(json_object *o, tether_status s, const char *key, json_object *value) {
    if (s == TETHER_OK) {
        json_object_object_add(o, key, value);
    } else {
        json_object_put(value);
    }
    return o;
}

static json_object *snapshot_restore(world *w) {
    char *doc = snapshot(w);
    if (doc == NULL) {
        return NULL;
    }
    uint64_t now = w->now;
    world_free(w);
    bool ok = world_new(w, now, doc);
    tether_string_free(doc);
    return ok ? json_object_new_object() : NULL;
}

static json_object *restore(world *w, fields *f) {
    json_object *doc = opt(f, "document"), *body = opt(f, "text");
    const char *json = doc != NULL ? json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN)
                                   : json_object_get_string(body);
    size_t len = doc != NULL ? strlen(json) : (size_t)json_object_get_string_len(body);
    return done(tether_engine_restore(w->e, (const uint8_t *)json, len));
}

/* The node-session and storage-target rules over the volume's fence now. */
static json_object *fence_rule(world *w, fields *f, const char *op, const ident *v) {
    bool session = strcmp(op, "session") == 0;
    ident n = {NULL, 0};
    uint64_t presented = 0, applied = 0;
    bool has_applied = false;
    if (session) {
        n = ident_of(get(f, "node"));
        presented = uint_of(get(f, "presented"));
    } else {
        json_object *a = opt(f, "applied");
        has_applied = a != NULL;
        applied = a != NULL ? uint_of(a) : 0;
    }
    bool found = false;
    tether_fence fence;
    tether_status s = tether_engine_fence(w->e, (const uint8_t *)v->ptr, v->len, &found, &fence);
    json_object *o;
    if (s != TETHER_OK) {
        o = refusal(s, 0, false);
    } else if (!found) {
        o = json_object_new_object();
        json_object_object_add(o, "error", text("Untracked"));
    } else {
        s = session ? tether_fence_check_session(&fence, (const uint8_t *)v->ptr, v->len, (const uint8_t *)n.ptr, n.len,
                                                 presented)
                    : tether_fence_check_supersedes(&fence, (const uint8_t *)v->ptr, v->len, has_applied, applied);
        o = flag(s, "ok", true);
    }
    free(n.ptr);
    return o;
}

static json_object *check(world *w, fields *f, const ident *v) {
    json_object *grace_s = opt(f, "grace_s");
    const uint8_t *vp = (const uint8_t *)v->ptr;
    tether_config cfg;
    tether_attachment a;
    tether_fence fence;
    tether_detach_record d;
    bool attached = false, fenced = false, detached = false, within = false;
    uint64_t epoch = 0;
    tether_status s = tether_engine_config(w->e, &cfg);
    uint64_t grace = grace_s != NULL ? seconds_ns(grace_s) : cfg.grace_period_ns;
    if (s == TETHER_OK) s = tether_engine_get(w->e, vp, v->len, &attached, &a);
    if (s == TETHER_OK) s = tether_engine_fence(w->e, vp, v->len, &fenced, &fence);
    if (s == TETHER_OK) s = tether_engine_detach_timestamp_get(w->e, vp, v->len, &detached, &d);
    if (s == TETHER_OK) s = tether_engine_is_within_grace_period(w->e, vp, v->len, grace, &within);
    if (s == TETHER_OK) s = tether_engine_epoch(w->e, vp, v->len, &epoch);
    if (s != TETHER_OK) {
        return refusal(s, 0, false);
    }
    json_object *o = json_object_new_object();
    json_object *nodes = NULL, *access = NULL, *admitted = NULL, *migration = NULL, *detach = NULL;
    if (attached) {
        nodes = names(a.nodes, a.node_count);
        access = access_name(a.mode, a.readonly);
        admitted = json_object_new_array();
        for (size_t i = 0; i < a.node_count && i < 2; i++) {
            json_object_array_add(admitted, num(a.admitted[i]));
        }
        if (a.migrating) {
            migration = json_object_new_object();
            json_object_object_add(migration, "elapsed_s", secs(a.migration_elapsed_ns));
            json_object_object_add(migration, "timeout_s", secs(a.migration_timeout_ns));
        }
    }
    if (detached) {
        detach = json_object_new_object();
        json_object_object_add(detach, "node", name_of(&d.node));
        json_object_object_add(detach, "age_s", secs(d.age_ns));
    }
    json_object_object_add(o, "nodes", nodes);
    json_object_object_add(o, "access", access);
    json_object_object_add(o, "admitted", admitted);
    json_object_object_add(o, "migration", migration);
    json_object_object_add(o, "fence", fenced ? fence_shape(&fence) : NULL);
    json_object_object_add(o, "detach", detach);
    json_object_object_add(o, "epoch", num(epoch));
    json_object_object_add(o, "within_grace", json_object_new_boolean(within));
    return o;
}

/* The steps that name a volume. */
static json_object *apply_volume(world *w, fields *f, const char *op) {
    static const char *const ops[] = {"publish", "unpublish", "clear_stale", "forget", "clear_detach",
                                      "session", "supersedes", "check", NULL};
    bool known = false;
    for (size_t i = 0; ops[i] != NULL && !known; i++) {
        known = strcmp(op, ops[i]) == 0;
    }
    if (!known) {
        fail("unknown step \"%s\"", op);
        return NULL;
    }
    json_object *volume = get(f, "volume");
    if (volume == NULL) {
        return NULL;
    }
    ident v = ident_of(volume);
    const uint8_t *vp = (const uint8_t *)v.ptr;
    json_object *o = NULL;
    bool b = false;
    tether_status s;
    if (strcmp(op, "publish") == 0) {
        o = publish(w, f, &v);
    } else if (strcmp(op, "unpublish") == 0) {
        o = unpublish(w, f, &v);
    } else if (strcmp(op, "clear_stale") == 0) {
        o = clear_stale(w, f, &v);
    } else if (strcmp(op, "forget") == 0) {
        s = tether_engine_forget(w->e, vp, v.len, &b);
        o = flag(s, "forgotten", b);
    } else if (strcmp(op, "clear_detach") == 0) {
        s = tether_engine_detach_timestamp_clear(w->e, vp, v.len, &b);
        o = flag(s, "cleared", b);
    } else if (strcmp(op, "check") == 0) {
        o = check(w, f, &v);
    } else {
        o = fence_rule(w, f, op, &v);
    }
    free(v.ptr);
    return o;
}

static json_object *apply(world *w, fields *f, const char *op) {
    uint64_t n = 0;
    tether_status s;
    if (strcmp(op, "reconcile") == 0) {
        return reconcile(w, f);
    }
    if (strcmp(op, "advance") == 0) {
        uint64_t by = seconds_ns(get(f, "seconds"));
        if ((s = tether_engine_advance_clock(w->e, by)) != TETHER_OK) {
            fail("advance: %s", tether_status_name(s));
            return NULL;
        }
        w->now += by;
        return json_object_new_object();
    }
    if (strcmp(op, "set_grace") == 0) {
        return done(tether_engine_set_grace_period(w->e, seconds_ns(get(f, "seconds"))));
    }
    if (strcmp(op, "set_migration_timeout") == 0) {
        s = tether_engine_set_default_migration_timeout(w->e, seconds_ns(get(f, "seconds")), &n);
        return with(done(s), s, "timeout_s", secs(n));
    }
    if (strcmp(op, "set_term") == 0) {
        s = tether_engine_set_term(w->e, uint_of(get(f, "term")), &n);
        return with(done(s), s, "term", num(n));
    }
    if (strcmp(op, "refence") == 0) {
        return refence(w);
    }
    if (strcmp(op, "snapshot_restore") == 0) {
        return snapshot_restore(w);
    }
    if (strcmp(op, "restore") == 0) {
        return restore(w, f);
    }
    if (strcmp(op, "stats") == 0) {
        tether_stats st;
        s = tether_engine_stats(w->e, &st);
        return s == TETHER_OK ? stats_shape(&st) : refusal(s, 0, false);
    }
    return apply_volume(w, f, op);
}

/* Compares the outcome with what the step expects; false on a difference. */
static bool expected(json_object *want, json_object *got, bool refused) {
    if (want == NULL) {
        if (refused) {
            fail("no error expected, got %s", json_object_to_json_string(got));
        }
        return !refused;
    }
    json_object *wants_error = NULL;
    if (refused && !json_object_object_get_ex(want, "error", &wants_error)) {
        fail("expected %s, refused with %s", json_object_to_json_string(want), json_object_to_json_string(got));
        return false;
    }
    return subset(want, got, "expect");
}

bool world_step(world *w, json_object *step) {
    fields f = fields_of(step, "step");
    opt(&f, "note");
    json_object *want = opt(&f, "expect");
    json_object *op = get(&f, "op");
    if (failing()) {
        return false;
    }
    char *before = snapshot(w);
    json_object *got = before ? apply(w, &f, json_object_get_string(op)) : NULL;
    finish(&f);
    json_object *error = NULL;
    bool refused = got != NULL && json_object_object_get_ex(got, "error", &error);
    char *after = got != NULL ? snapshot(w) : NULL;
    if (refused && after != NULL && strcmp(before, after) != 0) {
        fail("refused with %s, but the state changed", json_object_to_json_string(got));
    }
    bool ok = !failing() && got != NULL && invariants(w) && expected(want, got, refused);
    tether_string_free(before);
    tether_string_free(after);
    json_object_put(got);
    return ok && !failing();
}
