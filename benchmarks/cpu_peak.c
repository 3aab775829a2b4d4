/* The multiply-add peak of this CPU per instruction set, on every thread at once: the
 * ceiling of any convolution kernel built from those instructions, which the GEMM rate
 * that bench.py measures (a library's achieved rate) is not.
 *
 *     gcc -O2 -fopenmp benchmarks/cpu_peak.c -o cpu_peak && OMP_NUM_THREADS=2 ./cpu_peak
 *
 * Each loop has the shape of a micro-kernel's inner step: two input values loaded from
 * memory (L1) and broadcast, times four weight vectors held in registers, into eight
 * independent sums (enough to cover the latency of two pipelines; with SSE2 the
 * products are separate instructions, and these fit its 16 registers).  Reported as
 * GFLOP/s (two per multiply-add) over the best of five runs:
 *   avx512f+fma   16 floats per fused multiply-add
 *   avx2+fma       8 floats per fused multiply-add
 *   sse2           4 floats per multiply and separate add: what the portable kernels
 *                  compile to on x86-64, whose baseline has no FMA
 * Compiled without -m flags: each loop carries its own target attribute and runs only
 * where __builtin_cpu_supports says the CPU has it.  x86 with GCC or Clang only.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#define STEPS 50000000L
#define SUMS 8

/* inputs and weights (lanes that differ, so no product can be taken once and broadcast) */
float values[64] __attribute__((aligned(64)));
float weights[4 * 16] __attribute__((aligned(64)));

/* One rate measurement: VEC, LANES, SET1(x), LOAD1(pointer) and MADD(x, w, sum) name
 * the instruction set's vector type and operations. */
#define PEAK_LOOP(NAME, TARGET, VEC, LANES, SET1, LOAD1, MADD)                          \
    __attribute__((target(TARGET))) static double NAME(void)                            \
    {                                                                                   \
        double start = omp_get_wtime(), seconds;                                        \
        float total = 0;                                                                \
        _Pragma("omp parallel reduction(+ : total)")                                    \
        {                                                                               \
            VEC w0, w1, w2, w3;                                                         \
            __builtin_memcpy(&w0, weights, sizeof w0);                                  \
            __builtin_memcpy(&w1, weights + 16, sizeof w1);                             \
            __builtin_memcpy(&w2, weights + 32, sizeof w2);                             \
            __builtin_memcpy(&w3, weights + 48, sizeof w3);                             \
            VEC s00 = SET1(0), s01 = SET1(1), s02 = SET1(2), s03 = SET1(3);             \
            VEC s10 = SET1(4), s11 = SET1(5), s12 = SET1(6), s13 = SET1(7);             \
            for (long i = 0; i < STEPS; i++) {                                          \
                VEC x0 = LOAD1(values + (i & 31)), x1 = LOAD1(values + 32 + (i & 31));  \
                s00 = MADD(x0, w0, s00); s01 = MADD(x0, w1, s01);                       \
                s02 = MADD(x0, w2, s02); s03 = MADD(x0, w3, s03);                       \
                s10 = MADD(x1, w0, s10); s11 = MADD(x1, w1, s11);                       \
                s12 = MADD(x1, w2, s12); s13 = MADD(x1, w3, s13);                       \
            }                                                                           \
            VEC all = s00 + s01 + s02 + s03 + s10 + s11 + s12 + s13;                   \
            float lanes[LANES];                                                         \
            __builtin_memcpy(lanes, &all, sizeof all);                                  \
            total += lanes[0];                                                          \
        }                                                                               \
        seconds = omp_get_wtime() - start;                                              \
        if (total == 12345.0f)  /* keeps the sums alive */                              \
            printf(" ");                                                                \
        return 2.0 * LANES * SUMS * STEPS * omp_get_max_threads() / seconds / 1e9;      \
    }

#define LOAD1_512(p) _mm512_set1_ps(*(p))
#define FMA_512(x, w, sum) _mm512_fmadd_ps(x, w, sum)
#define FMA_256(x, w, sum) _mm256_fmadd_ps(x, w, sum)
#define MULADD_128(x, w, sum) _mm_add_ps(sum, _mm_mul_ps(x, w))

PEAK_LOOP(peak_avx512, "avx512f,fma", __m512, 16, _mm512_set1_ps, LOAD1_512, FMA_512)
PEAK_LOOP(peak_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_broadcast_ss, FMA_256)
PEAK_LOOP(peak_sse2, "sse2", __m128, 4, _mm_set1_ps, _mm_load1_ps, MULADD_128)

static void report(const char *name, double (*loop)(void))
{
    double best = 0;
    for (int run = 0; run < 5; run++) {
        double rate = loop();
        best = rate > best ? rate : best;
    }
    printf("%-12s %8.1f GFLOP/s on %d threads\n", name, best, omp_get_max_threads());
}

int main(void)
{
    for (int i = 0; i < 64; i++) {
        values[i] = 1.0f / (float)(i + 1);
        weights[i] = 1.0f - (float)i / 1024;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        report("avx512f+fma", peak_avx512);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        report("avx2+fma", peak_avx2);
    report("sse2", peak_sse2);
    return 0;
}
