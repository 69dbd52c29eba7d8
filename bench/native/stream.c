// stream.c: this machine's memory bandwidth, for docs/PERFORMANCE.md (what bounds a memory-bound
// case is its bytes over this rate). Copy and triad in the manner of McCalpin's STREAM, float32,
// OpenMP across the cores, best of 20 repetitions, at two sizes: three arrays of 64 MiB (DRAM) and of
// 2 MiB (6 MiB in all: resident in the 32 MiB L3). Bytes counted as STREAM counts them (reads plus
// writes; the write-allocate read of the destination is not counted).
//
//   gcc -O3 -march=native -fopenmp bench/native/stream.c -o /tmp/stream && OMP_NUM_THREADS=2 /tmp/stream
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static double best_seconds(int kind, float *a, float *b, float *c, long n) {
    double best = 1e30;
    for (int rep = 0; rep < 20; rep++) {
        double t0 = omp_get_wtime();
        if (kind == 0) {
#pragma omp parallel for simd schedule(static)
            for (long i = 0; i < n; i++) c[i] = a[i];
        } else {
#pragma omp parallel for simd schedule(static)
            for (long i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
        }
        double t = omp_get_wtime() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(void) {
    long sizes[] = {64L << 20, 2L << 20};
    for (int s = 0; s < 2; s++) {
        long n = sizes[s] / sizeof(float);
        float *a = aligned_alloc(64, sizes[s]), *b = aligned_alloc(64, sizes[s]), *c = aligned_alloc(64, sizes[s]);
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) { a[i] = 1; b[i] = 2; c[i] = 0; }
        double copy = best_seconds(0, a, b, c, n), triad = best_seconds(1, a, b, c, n);
        printf("%3ld MiB arrays, %d threads: copy %.1f GB/s, triad %.1f GB/s\n", sizes[s] >> 20,
               omp_get_max_threads(), 2.0 * sizes[s] / copy / 1e9, 3.0 * sizes[s] / triad / 1e9);
        free(a); free(b); free(c);
    }
    return 0;
}
