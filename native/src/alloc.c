// alloc.c: tensor memory for the native backend (NativeBackend.allocate).
//
// The JDK's Arena.allocate zero-fills every segment: one more pass over memory per op output, which
// the kernels then overwrite. Here storage is uninitialised, 64-byte aligned, and Java frees it when
// the owning scope's arena closes (MemorySegment.reinterpret with a cleanup).
//
// Large blocks are also cached. A fresh block from the OS costs a page fault per 4 KiB page on its
// first write, and under virtualisation a fault costs microseconds: more than the kernel that writes
// the block. Training steps and benchmark iterations allocate the same sizes over and over, each
// step's blocks freed when its scope closes, so freed blocks of 64 KiB to 256 MiB are kept (up to
// isthmus_alloc_set_cache bytes in all, 512 MiB by default) and handed out again for a request of
// the same size or up to 1/8 smaller. Larger blocks go back to the OS at once, as glibc returns
// blocks past its largest mmap threshold; isthmus_alloc_trim empties the cache.
//
// Each block starts with a 64-byte header holding its capacity, so a cached block can serve a
// smaller request and still be freed or cached by its true size.
#include "isthmus.h"
#include <pthread.h>
#include <stdlib.h>

#define HEADER 64
#define CACHE_MIN ((size_t) 64 << 10)
#define CACHE_MAX_BLOCK ((size_t) 256 << 20)
#define CACHE_SLOTS 512

typedef struct { size_t capacity; } block_header;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static void *slot_ptr[CACHE_SLOTS];
static size_t slot_size[CACHE_SLOTS];
static int slots;
static size_t cached_bytes;
static size_t cache_limit = (size_t) 512 << 20;

// Capacities: a multiple of 64 bytes, or of 4 KiB from the caching size up.
static size_t capacity_for(size_t bytes) {
    if (bytes < 1) bytes = 1;
    size_t unit = bytes + HEADER >= CACHE_MIN ? 4096 : 64;
    return (bytes + HEADER + unit - 1) / unit * unit;
}

static void *from_cache(size_t cap) {
    if (cap < CACHE_MIN || cap > CACHE_MAX_BLOCK) return NULL;
    void *p = NULL;
    pthread_mutex_lock(&cache_lock);
    int best = -1;
    for (int i = 0; i < slots; i++) {
        size_t s = slot_size[i];
        if (s >= cap && s - cap <= cap / 8 && (best < 0 || s < slot_size[best])) {
            best = i;
            if (s == cap) break;
        }
    }
    if (best >= 0) {
        p = slot_ptr[best];
        cached_bytes -= slot_size[best];
        slots--;
        slot_ptr[best] = slot_ptr[slots];
        slot_size[best] = slot_size[slots];
    }
    pthread_mutex_unlock(&cache_lock);
    return p;
}

// Keeps the block if it fits the cache; returns 0 when the caller must free it.
static int to_cache(void *block, size_t cap) {
    if (cap < CACHE_MIN || cap > CACHE_MAX_BLOCK) return 0;
    int kept = 0;
    pthread_mutex_lock(&cache_lock);
    if (slots < CACHE_SLOTS && cached_bytes + cap <= cache_limit) {
        slot_ptr[slots] = block;
        slot_size[slots] = cap;
        slots++;
        cached_bytes += cap;
        kept = 1;
    }
    pthread_mutex_unlock(&cache_lock);
    return kept;
}

// `bytes` of uninitialised memory, 64-byte aligned; NULL when the system has none.
ISTHMUS_API void *isthmus_alloc(int64_t bytes) {
    if (bytes < 0) return NULL;
    size_t cap = capacity_for((size_t) bytes);
    if (cap < (size_t) bytes) return NULL; // overflow
    char *block = from_cache(cap);
    if (block == NULL) {
        block = aligned_alloc(64, cap);
        if (block == NULL) return NULL;
        ((block_header *) block)->capacity = cap;
    }
    return block + HEADER;
}

// Frees (or caches) memory from isthmus_alloc; NULL is ignored.
ISTHMUS_API void isthmus_free(void *p) {
    if (p == NULL) return;
    char *block = (char *) p - HEADER;
    size_t cap = ((block_header *) block)->capacity;
    if (!to_cache(block, cap)) free(block);
}

// Releases every cached block to the system.
ISTHMUS_API void isthmus_alloc_trim(void) {
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < slots; i++) free(slot_ptr[i]);
    slots = 0;
    cached_bytes = 0;
    pthread_mutex_unlock(&cache_lock);
}

// Sets how many bytes of freed blocks the cache may hold (0 disables it); trims to fit.
ISTHMUS_API void isthmus_alloc_set_cache(int64_t limit) {
    pthread_mutex_lock(&cache_lock);
    cache_limit = limit < 0 ? 0 : (size_t) limit;
    while (slots > 0 && cached_bytes > cache_limit) {
        slots--;
        cached_bytes -= slot_size[slots];
        free(slot_ptr[slots]);
    }
    pthread_mutex_unlock(&cache_lock);
}

// Bytes held in the cache now.
ISTHMUS_API int64_t isthmus_alloc_cached(void) {
    pthread_mutex_lock(&cache_lock);
    size_t b = cached_bytes;
    pthread_mutex_unlock(&cache_lock);
    return (int64_t) b;
}
