/* The contract corpus runner over the C ABI: runs every scenario of the corpus folder given as
 * the only argument, one line per scenario, then "corpus-c: N passed, N failed". Exits non-zero
 * when any scenario failed or the corpus lost scenarios. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

/* The corpus's clock starts at 1 764 000 000 s after the Unix epoch. */
#define CORPUS_START 1764000000000000000ULL
/* Fewer means the corpus was not found or lost scenarios. */
#define AT_LEAST 50

static int passed, failed;

static void run(const char *area, json_object *scenario) {
    fields s = fields_of(scenario, "scenario");
    json_object *name = get(&s, "name");
    opt(&s, "row");
    opt(&s, "csi");
    json_object *steps = get(&s, "steps");
    finish(&s);
    world w = {NULL, 0};
    size_t i = 0;
    const char *op = "";
    if (!failing() && world_new(&w, CORPUS_START, NULL)) {
        for (; i < json_object_array_length(steps); i++) {
            json_object *step = json_object_array_get_idx(steps, i), *o = NULL;
            op = json_object_object_get_ex(step, "op", &o) ? json_object_get_string(o) : "?";
            if (!world_step(&w, step)) {
                break;
            }
        }
    }
    world_free(&w);
    const char *title = name ? json_object_get_string(name) : "?";
    if (failing()) {
        failed++;
        printf("FAIL %s: %s: step %zu (%s): %s\n", area, title, i + 1, op, failure());
    } else {
        passed++;
        printf("ok   %s: %s\n", area, title);
    }
    failure_reset();
}

static void run_file(const char *path) {
    json_object *doc = json_object_from_file(path);
    if (doc == NULL) {
        failed++;
        printf("FAIL %s: does not parse: %s\n", path, json_util_get_last_err());
        return;
    }
    fields f = fields_of(doc, path);
    json_object *area = get(&f, "area");
    get(&f, "design");
    json_object *scenarios = get(&f, "scenarios");
    finish(&f);
    if (failing()) {
        failed++;
        printf("FAIL %s: %s\n", path, failure());
        failure_reset();
    } else {
        for (size_t i = 0; i < json_object_array_length(scenarios); i++) {
            run(json_object_get_string(area), json_object_array_get_idx(scenarios, i));
        }
    }
    json_object_put(doc);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <tests/contract folder>\n", argv[0]);
        return 2;
    }
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/*.json", argv[1]);
    glob_t files;
    if (glob(pattern, 0, NULL, &files) != 0) {
        fprintf(stderr, "no corpus files match %s\n", pattern);
        return 1;
    }
    for (size_t i = 0; i < files.gl_pathc; i++) {
        run_file(files.gl_pathv[i]);
    }
    globfree(&files);
    printf("corpus-c: %d passed, %d failed\n", passed, failed);
    if (passed + failed < AT_LEAST) {
        fprintf(stderr, "the corpus was not found or lost scenarios: %d\n", passed + failed);
        return 1;
    }
    return failed == 0 ? 0 : 1;
}
