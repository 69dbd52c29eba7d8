// cpu.c: which instruction set the kernels use, how many threads they run on, and what the CPU has.
//
// The family files are compiled once per ISA (see the Makefile): AVX-512 (x86-64-v4: F, BW, CD,
// DQ, VL, with 512-bit vectors), AVX2 + FMA (x86-64-v3) and plain x86-64 (SSE2). At load the best
// table the CPU supports is chosen; isthmus_set_isa picks another (Java's isthmus.native.isa
// property, and the tests, which run the kernels under each ISA this CPU has). A fixed ISA gives
// fixed results: the vector width decides how sums are split into lanes.
#include "isthmus.h"
#include <stdio.h>
#include <unistd.h>

extern const isthmus_table isthmus_table_avx512, isthmus_table_avx2, isthmus_table_generic;

int isthmus_threads = 1;
int64_t isthmus_stream_bytes = 8 << 20;
static const isthmus_table *active = &isthmus_table_generic;

// GCC's x86-64-v3 / v4 checks include the OS support for the wider registers (XCR0). They return
// some non-zero value, not necessarily 1, when the CPU has the level: hence the !!.
static int isa_supported(const isthmus_table *t) {
    __builtin_cpu_init();
    if (t == &isthmus_table_avx512) return !!__builtin_cpu_supports("x86-64-v4");
    if (t == &isthmus_table_avx2) return !!__builtin_cpu_supports("x86-64-v3");
    return 1;
}

static const isthmus_table *best_table(void) {
    if (isa_supported(&isthmus_table_avx512)) return &isthmus_table_avx512;
    if (isa_supported(&isthmus_table_avx2)) return &isthmus_table_avx2;
    return &isthmus_table_generic;
}

// The last-level cache one core shares with its neighbours: Linux's sysfs entry for cpu0's L3 (or
// L2) cache, which is the right size inside a VM too (glibc's sysconf reports the whole package's L3
// on AMD parts, ten times one core complex's on this project's EPYC). 0 when unknown.
static int64_t last_level_cache_bytes(void) {
    static const char *const paths[] = {"/sys/devices/system/cpu/cpu0/cache/index3/size",
                                        "/sys/devices/system/cpu/cpu0/cache/index2/size"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = fopen(paths[i], "r");
        if (!f) continue;
        long long v = 0;
        char unit = 0;
        int got = fscanf(f, "%lld%c", &v, &unit);
        fclose(f);
        if (got < 1 || v <= 0) continue;
        if (unit == 'K') v <<= 10;
        else if (unit == 'M') v <<= 20;
        return v;
    }
    long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return v > 0 ? v : 0;
}

__attribute__((constructor)) static void isthmus_init(void) {
    active = best_table();
    int n = omp_get_num_procs();
    isthmus_threads = n > 0 ? n : 1;
    int64_t llc = last_level_cache_bytes();
    if (llc > 0) isthmus_stream_bytes = llc / 4;
}

const isthmus_table *isthmus_active(void) { return __atomic_load_n(&active, __ATOMIC_ACQUIRE); }

ISTHMUS_API const char *isthmus_isa(void) { return isthmus_active()->name; }

// "auto" (the best this CPU has), "avx512", "avx2" or "generic". Returns 0, or -1 for an unknown
// name, -2 for an ISA this CPU lacks (the choice is then unchanged).
ISTHMUS_API int isthmus_set_isa(const char *name) {
    const isthmus_table *t;
    if (strcmp(name, "auto") == 0) t = best_table();
    else if (strcmp(name, "avx512") == 0) t = &isthmus_table_avx512;
    else if (strcmp(name, "avx2") == 0) t = &isthmus_table_avx2;
    else if (strcmp(name, "generic") == 0) t = &isthmus_table_generic;
    else return -1;
    if (!isa_supported(t)) return -2;
    __atomic_store_n(&active, t, __ATOMIC_RELEASE);
    return 0;
}

// Whether this CPU can run the named ISA's kernels: 1, 0, or -1 for an unknown name.
ISTHMUS_API int isthmus_isa_supported(const char *name) {
    if (strcmp(name, "avx512") == 0) return isa_supported(&isthmus_table_avx512);
    if (strcmp(name, "avx2") == 0) return isa_supported(&isthmus_table_avx2);
    if (strcmp(name, "generic") == 0) return 1;
    return -1;
}

ISTHMUS_API void isthmus_set_threads(int n) { isthmus_threads = n < 1 ? 1 : n; }

ISTHMUS_API int isthmus_get_threads(void) { return isthmus_threads; }

// The output size from which dense output loops use streaming stores (isthmus.h); 0 streams every
// output (the tests use it to run those loops on small tensors), a negative value is taken as 0.
ISTHMUS_API void isthmus_set_stream_bytes(int64_t bytes) { isthmus_stream_bytes = bytes < 0 ? 0 : bytes; }

ISTHMUS_API int64_t isthmus_get_stream_bytes(void) { return isthmus_stream_bytes; }

ISTHMUS_API int isthmus_num_procs(void) { return omp_get_num_procs(); }

// The vector features this CPU reports, space-separated, e.g. "sse4.2 avx avx2 fma avx512f ...".
ISTHMUS_API const char *isthmus_cpu_features(void) {
    static char buf[256];
    static int done;
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE)) return buf;
    __builtin_cpu_init();
    char tmp[256] = "";
    size_t len = 0;
#define FEATURE(f)                                                                  \
    if (__builtin_cpu_supports(f)) len += snprintf(tmp + len, sizeof tmp - len, "%s%s", len ? " " : "", f);
    FEATURE("sse4.2")
    FEATURE("avx")
    FEATURE("avx2")
    FEATURE("fma")
    FEATURE("avx512f")
    FEATURE("avx512bw")
    FEATURE("avx512cd")
    FEATURE("avx512dq")
    FEATURE("avx512vl")
#undef FEATURE
    memcpy(buf, tmp, sizeof buf);
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return buf;
}
