/* What a WAL commit's writes cost on this disk: FRAMES frames of a 4 KiB
 * page written as SQLite's unix VFS writes them (two pwrites a frame: the
 * 24-byte header, then the page) against one write of the same bytes, as
 * the writer's VFS does since sqlite_wal_gather (BENCHMARKS.md, thirteenth
 * session). Build and run in the folder of the database:
 *   cc -O2 docs/wal_pwrite_cost.c -o /tmp/wal_pwrite_cost
 *   /tmp/wal_pwrite_cost 0; /tmp/wal_pwrite_cost 1
 * Mode 0: two pwrites a frame. Mode 1: the frames copied into one buffer,
 * one pwrite. The file (./wal_pwrite_cost.tmp) is rewritten in place past
 * 4,500 frames, as a WAL starts over, and removed at the end. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { FRAMES = 50, COMMITS = 20000, PAGE = 4096, HEADER = 24 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int gathered = argc > 1 && atoi(argv[1]) == 1;
    const char *path = "wal_pwrite_cost.tmp";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); return 1; }
    char header[HEADER], page[PAGE];
    memset(header, 1, sizeof header);
    memset(page, 7, sizeof page);
    char *buf = malloc((size_t)FRAMES * (PAGE + HEADER));
    long off = 32;
    double t0 = now();
    for (int c = 0; c < COMMITS; c++) {
        if (off > 4500L * (PAGE + HEADER)) off = 32;
        if (!gathered) {
            for (int f = 0; f < FRAMES; f++) {
                if (pwrite(fd, header, HEADER, off) != HEADER ||
                    pwrite(fd, page, PAGE, off + HEADER) != PAGE) { perror("pwrite"); return 1; }
                off += PAGE + HEADER;
            }
        } else {
            char *p = buf;
            for (int f = 0; f < FRAMES; f++) {
                memcpy(p, header, HEADER);
                memcpy(p + HEADER, page, PAGE);
                p += PAGE + HEADER;
            }
            ssize_t n = (ssize_t)FRAMES * (PAGE + HEADER);
            if (pwrite(fd, buf, n, off) != n) { perror("pwrite"); return 1; }
            off += n;
        }
    }
    double t = now() - t0;
    printf("%s: %.1f us a commit of %d frames\n", gathered ? "one write" : "two pwrites a frame",
           t / COMMITS * 1e6, FRAMES);
    close(fd);
    unlink(path);
    return 0;
}
