// gemm.c: row-major single-precision GEMM, C = alpha*op(A)*op(B) + beta*C.
//
// Who owns the threads: OpenMP. OpenBLAS (Debian's pthread build) is set to one
// thread, once. The conv ops call gemm() inside their own OpenMP regions, one
// slice of the product per thread next to the im2col that feeds it; a gemm()
// called outside a region cuts C into one slice per OpenMP thread itself.
// Two pools on 2 cores fight: each spins for a while after its work, so the
// other's next call starts on a busy core. Measured on the default net's layer
// shapes (batch 1): a GEMM right after OpenBLAS's 2-thread pool had run took
// 2.4-7 ms instead of 0.35 ms when called from OpenMP threads, and OpenBLAS's
// own threading barely helps at 128x128 (all GEMMs 12.1 ms vs 13.2 ms on one
// thread) where the OpenMP slices take 7 ms.
// Spinning also hurts when another process keeps the cores busy: there, every
// join waits for the slower thread's next time slice, and OMP_WAIT_POLICY=passive
// (set in the environment; OpenMP reads it at start-up) was 1.3-9x faster per
// training step than the default.
//
// Without OpenBLAS (TABULA_HAVE_BLAS undefined) the slices go to a cache-blocked
// GEMM of our own: operands packed into panels, an MR x NR register tile that
// -O3 -march=native turns into FMA vector code.
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef TABULA_HAVE_BLAS
#include <cblas.h>
#include <pthread.h>
void openblas_set_num_threads(int num_threads);
#endif

#include "common.h"
#include "ops.h"

// ---------------------------------------------------------------- reference
// The definition, one output at a time, summed in double.
void gemm_ref(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float a = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)a * (double)b;
            }
            float *c = &C[(size_t)i * ldc + j];
            // beta == 0 means "overwrite": C may hold garbage (even NaN), as in BLAS.
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * (double)*c));
        }
    }
}

// ---------------------------------------------------------------- own blocked GEMM
#ifndef TABULA_HAVE_BLAS
// Register tile MR x NR: NR is a few vectors wide, MR rows of accumulators fit in
// the vector registers (AVX-512: 8x32 = 16 zmm; AVX2: 6x16 = 12 ymm; else 4x8).
#if defined(__AVX512F__)
#define MR 8
#define NR 32
#elif defined(__AVX__)
#define MR 6
#define NR 16
#else
#define MR 4
#define NR 8
#endif
// Cache blocks: a KC x NR sliver of B stays in L1, an MC x KC block of A in L2,
// a KC x NC panel of B in L2/L3.
#define KC 256
#define MC (MR * 18)
#define NC (NR * 32)

// Packed A: MC/MR panels, each KC x MR (the MR values of one k adjacent).
// op(A)[i][k] read through (tA, lda); rows past M are zero.
static void pack_a(float *restrict ap, int tA, const float *A, int lda, int i0, int mc, int k0,
                   int kc) {
    for (int ip = 0; ip < mc; ip += MR) {
        for (int p = 0; p < kc; p++) {
            for (int i = 0; i < MR; i++) {
                int r = ip + i;
                float v = 0.0f;
                if (r < mc)
                    v = tA ? A[(size_t)(k0 + p) * lda + i0 + r] : A[(size_t)(i0 + r) * lda + k0 + p];
                ap[i] = v;
            }
            ap += MR;
        }
    }
}

// Packed B: NC/NR panels, each KC x NR. Columns past N are zero.
static void pack_b(float *restrict bp, int tB, const float *B, int ldb, int j0, int nc, int k0,
                   int kc) {
    for (int jp = 0; jp < nc; jp += NR) {
        int nr = nc - jp < NR ? nc - jp : NR;
        for (int p = 0; p < kc; p++) {
            if (!tB && nr == NR) {
                memcpy(bp, &B[(size_t)(k0 + p) * ldb + j0 + jp], NR * sizeof(float));
            } else {
                for (int j = 0; j < NR; j++) {
                    float v = 0.0f;
                    if (j < nr)
                        v = tB ? B[(size_t)(j0 + jp + j) * ldb + k0 + p]
                               : B[(size_t)(k0 + p) * ldb + j0 + jp + j];
                    bp[j] = v;
                }
            }
            bp += NR;
        }
    }
}

// acc = sum_p a[p][:] (x) b[p][:]; then C[0:mr, 0:nr] = alpha*acc + beta*C.
static void micro_kernel(int kc, const float *restrict a, const float *restrict b, float *C,
                         int ldc, int mr, int nr, float alpha, float beta) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            float av = a[p * MR + i];
            for (int j = 0; j < NR; j++) acc[i][j] += av * b[p * NR + j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < nr; j++) c[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < nr; j++) c[j] = alpha * acc[i][j] + beta * c[j];
        }
    }
}

static void gemm_blocked(int tA, int tB, int M, int N, int K, float alpha, const float *A,
                         int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    // Packing buffers, one pair per thread, allocated on first use.
    static _Thread_local float *ap, *bp;
    if (!ap) {
        ap = aligned_alloc(64, sizeof(float) * MC * KC);
        bp = aligned_alloc(64, sizeof(float) * KC * NC);
        CHECK(ap && bp, "out of memory for GEMM packing buffers");
    }
    if (K <= 0 || alpha == 0.0f) {  // C = beta*C
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    for (int j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            float b_eff = k0 == 0 ? beta : 1.0f;  // later K blocks accumulate
            pack_b(bp, tB, B, ldb, j0, nc, k0, kc);
            for (int i0 = 0; i0 < M; i0 += MC) {
                int mc = M - i0 < MC ? M - i0 : MC;
                pack_a(ap, tA, A, lda, i0, mc, k0, kc);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        micro_kernel(kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc,
                                     C + (size_t)(i0 + ir) * ldc + j0 + jr, ldc, mr, nr, alpha,
                                     b_eff);
                    }
                }
            }
        }
    }
}
#endif

// ---------------------------------------------------------------- dispatch
#ifdef TABULA_HAVE_BLAS
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
#endif

// One thread's slice, on the calling thread.
static void gemm_serial(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
#ifdef TABULA_HAVE_BLAS
    cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    gemm_blocked(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void gemm(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef TABULA_HAVE_BLAS
    pthread_once(&blas_once, blas_single_thread);
#endif
    int nt = 1;
#ifdef _OPENMP
    // Below ~1 MFLOP the fork/join costs more than it saves.
    if (!omp_in_parallel() && 2.0 * M * N * K >= 1e6) nt = omp_get_max_threads();
#endif
    if (nt <= 1) {
        gemm_serial(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef _OPENMP
    // Slice the larger of M and N: each thread packs the whole of the other
    // operand, so the one duplicated is the smaller. Slices are equal, in whole
    // cache lines (16 floats) when that costs little balance.
    int split_n = N >= M;
    int len = split_n ? N : M;
#pragma omp parallel num_threads(nt)
    {
        int team = omp_get_num_threads();  // may be fewer than asked for
        int chunk = (len + team - 1) / team;
        int align = chunk >= 256 ? 16 : 4;
        chunk = (chunk + align - 1) / align * align;
        int lo = omp_get_thread_num() * chunk;
        int hi = lo + chunk < len ? lo + chunk : len;
        if (lo < hi) {
            if (split_n) {
                const float *Bs = tB ? B + (size_t)lo * ldb : B + lo;
                gemm_serial(tA, tB, M, hi - lo, K, alpha, A, lda, Bs, ldb, beta, C + lo, ldc);
            } else {
                const float *As = tA ? A + lo : A + (size_t)lo * lda;
                gemm_serial(tA, tB, hi - lo, N, K, alpha, As, lda, B, ldb, beta,
                            C + (size_t)lo * ldc, ldc);
            }
        }
    }
#endif
}
