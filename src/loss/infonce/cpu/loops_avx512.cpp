// The AVX-512 build of the fused InfoNCE loops (same source, other compile flags): 16 floats per
// instruction for the exp and log-sum-exp passes on CPUs that have it.
#define CONVIRT_LOOPS_NS loops_avx512
#define CONVIRT_LOOPS_WITH_DOUBLE 0
#include "loops.inc"
