// reduce.c: blocked double-precision sum with a fixed block order (reduce.h).
#include "reduce.h"

#define BLOCK 8192        // elements per block, unless that makes too many blocks
#define MAX_BLOCKS 1024   // so the block sums fit on the stack

double block_sum(size_t n, BlockSumFn block, const void *ctx) {
    if (n == 0) return 0.0;
    size_t bs = BLOCK;  // block size depends on n only
    if ((n + bs - 1) / bs > MAX_BLOCKS) bs = (n + MAX_BLOCKS - 1) / MAX_BLOCKS;
    long nb = (long)((n + bs - 1) / bs);
    double part[MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (n >= 32768)
    for (long blk = 0; blk < nb; blk++) {
        size_t lo = (size_t)blk * bs, hi = lo + bs < n ? lo + bs : n;
        part[blk] = block(ctx, lo, hi);
    }
    double s = 0.0;
    for (long blk = 0; blk < nb; blk++) s += part[blk];
    return s;
}
