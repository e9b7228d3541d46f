/* The C consumer of include/tether.h: runs every test file and prints the totals; exits
 * non-zero when any check failed. */
#include <stdio.h>

#include "check.h"

int main(void) {
    test_version();
    test_contract();
    test_fence();
    test_state();
    test_hostile();
    test_fence_hostile();
    test_threads();
    test_first_publish_race();
    printf("%d passed, %d failed\n", checks_passed(), checks_failed());
    return checks_failed() == 0 && checks_passed() > 0 ? 0 : 1;
}
