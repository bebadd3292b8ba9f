/*
 * Replays fuzz inputs without libFuzzer: each argument is a file or a
 * directory of files, each fed once to LLVMFuzzerTestOneInput().  Used by
 * "make test" so that every committed corpus and crash reproducer runs in
 * the normal suite (also under SANITIZE=1).
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
replay_file(const char *path)
{
    FILE     *f;
    long      len;
    uint8_t  *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }

    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(len ? len : 1);
    if (buf == NULL || fread(buf, 1, len, f) != (size_t) len) {
        fclose(f);
        free(buf);
        return -1;
    }

    fclose(f);

    LLVMFuzzerTestOneInput(buf, len);
    free(buf);

    return 0;
}


int
main(int argc, char **argv)
{
    int             i, n;
    char            path[4096];
    DIR            *d;
    struct stat     st;
    struct dirent  *e;

    n = 0;

    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == -1) {
            perror(argv[i]);
            return 1;
        }

        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) != 0) {
                return 1;
            }
            n++;
            continue;
        }

        d = opendir(argv[i]);
        if (d == NULL) {
            perror(argv[i]);
            return 1;
        }

        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }

            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);

            if (replay_file(path) != 0) {
                closedir(d);
                return 1;
            }

            n++;
        }

        closedir(d);
    }

    printf("replayed %d inputs\n", n);

    return 0;
}
