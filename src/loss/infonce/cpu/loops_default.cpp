// The baseline x86-64 (or non-x86) build of the fused InfoNCE loops.
#define CONVIRT_LOOPS_NS loops_default
#define CONVIRT_LOOPS_WITH_DOUBLE 1
#include "loops.inc"
