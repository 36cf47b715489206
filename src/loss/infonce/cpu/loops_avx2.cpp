// The AVX2+FMA build of the fused InfoNCE loops (same source, other compile flags).
#define CONVIRT_LOOPS_NS loops_avx2
#define CONVIRT_LOOPS_WITH_DOUBLE 0
#include "loops.inc"
