/*
 * The unit tests' TAP output: check(cond, name) prints "ok N - name" or
 * "not ok N - name (line L)"; tap_done() prints the plan and gives the
 * exit status.
 */

#ifndef _TAP_H_INCLUDED_
#define _TAP_H_INCLUDED_


#include <stdio.h>


static int  tap_tests, tap_failed;


#define check(cond, name)                                                     \
    do {                                                                      \
        tap_tests++;                                                          \
        if (cond) {                                                           \
            printf("ok %d - %s\n", tap_tests, name);                          \
        } else {                                                              \
            tap_failed++;                                                     \
            printf("not ok %d - %s (line %d)\n", tap_tests, name, __LINE__);  \
        }                                                                     \
    } while (0)


static int
tap_done(void)
{
    printf("1..%d\n", tap_tests);

    return tap_failed ? 1 : 0;
}


#endif /* _TAP_H_INCLUDED_ */
