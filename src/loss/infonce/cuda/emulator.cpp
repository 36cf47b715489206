// The warp-level CUDA emulator (see <convirt/loss/infonce/cuda/emulator.h>): fibers, the block
// scheduler, warp collectives from the PTX ISA's fragment tables, half/bfloat16 conversions and the
// runtime API the launchers use.
//
// CONVIRT_EMU_MUTATION (test-only): 1 reads the A fragment's second and third registers in swapped
// order (a wrong register order in a fragment loader), 2 drops every thread's second barrier of a
// block (the one after the first shared-memory stores). The emulated test must fail under both.
// 3 is read by the kernels (kernel.cuh), not here: the former fp32 sum of dS S for the temperature
// gradient, which the test's temperature-gradient cases must catch.

#include <convirt/loss/infonce/cuda/emulator.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CONVIRT_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONVIRT_EMU_ASAN 1
#endif
#endif
#if defined(CONVIRT_EMU_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

// The x86-64 register switch, unless CONVIRT_EMU_UCONTEXT asks for the portable path (which every
// other architecture takes): glibc's swapcontext makes a sigprocmask system call per switch, which
// made the mutants' case set 6x slower (3.0 s of user + system time against 0.5 s).
#if defined(__x86_64__) && !defined(CONVIRT_EMU_UCONTEXT)
#define CONVIRT_EMU_ASM_SWITCH 1
#else
#define CONVIRT_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

#ifndef CONVIRT_EMU_MUTATION
#define CONVIRT_EMU_MUTATION 0
#endif

namespace convirt::cuda_emulator {

// ---------------------------------------------------------------------------------------------
// Half and bfloat16.

namespace {
uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
}  // namespace

uint16_t float_to_half_bits(float x) {
  const uint32_t u = float_bits(x);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t mag = u & 0x7fffffffu;
  if (mag > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN stays NaN
  if (mag == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
  const int e = static_cast<int>(mag >> 23) - 127 + 15;  // biased half exponent
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t mant = mag & 0x7fffffu;
  uint32_t h;
  uint32_t rem;
  uint32_t halfway;
  if (e >= 1) {
    h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    rem = mant & 0x1fffu;
    halfway = 0x1000u;
  } else {
    // Subnormal: value / 2^-24 = (1.m * 2^23) * 2^(e - 14).
    const int shift = 14 - e;
    if (shift > 25) return sign;
    mant |= 0x800000u;
    h = mant >> shift;
    rem = mant & ((1u << shift) - 1u);
    halfway = 1u << (shift - 1);
  }
  // A carry out of the mantissa moves to the next binade (or to infinity), which is correct.
  if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float half_bits_to_float(uint16_t hbits) {
  const uint32_t sign = static_cast<uint32_t>(hbits & 0x8000u) << 16;
  const uint32_t e = (hbits >> 10) & 0x1fu;
  const uint32_t m = hbits & 0x3ffu;
  if (e == 31) return bits_float(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  return bits_float(sign | ((e - 15 + 127) << 23) | (m << 13));
}

uint16_t float_to_bfloat16_bits(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet
  const uint32_t bias = 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>((u + bias) >> 16);
}

float bfloat16_bits_to_float(uint16_t b) {
  return bits_float(static_cast<uint32_t>(b) << 16);
}

uint32_t cvt_rna_tf32(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffffffu;  // canonical NaN
  // Adding half an ulp of tf32 to the magnitude bits rounds ties away from zero.
  return (u + 0x1000u) & 0xffffe000u;
}

// ---------------------------------------------------------------------------------------------
// Counters.

Counters& counters() {
  static Counters c;
  return c;
}
void reset_counters() {
  counters() = Counters{};
}

// ---------------------------------------------------------------------------------------------
// Fibers.

const ThreadCoords* g_current_coords = nullptr;

namespace {

[[noreturn]] void fatal(const std::string& what) {
  std::fprintf(stderr, "cuda emulator: %s\n", what.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(3);
}

#if CONVIRT_EMU_ASM_SWITCH
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp,
// switches to new_sp and restores the registers saved there (System V ABI). A new stack is seeded
// so that the first switch "returns" into convirt_emu_trampoline with r12 = argument, r13 = entry.
extern "C" void convirt_emu_switch(void** save_sp, void* new_sp);
extern "C" void convirt_emu_trampoline();
asm(R"(
  .text
  .p2align 4
  .globl convirt_emu_switch
  .hidden convirt_emu_switch
  .type convirt_emu_switch,@function
convirt_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size convirt_emu_switch,.-convirt_emu_switch
  .p2align 4
  .globl convirt_emu_trampoline
  .hidden convirt_emu_trampoline
  .type convirt_emu_trampoline,@function
convirt_emu_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size convirt_emu_trampoline,.-convirt_emu_trampoline
)");
#endif

enum class State { kRunnable, kWaitWarp, kWaitBarrier, kDone };
enum class Op { kNone, kShuffle, kMmaBf16, kMmaF16, kMmaTf32 };

const char* op_name(Op op) {
  switch (op) {
    case Op::kNone:
      return "none";
    case Op::kShuffle:
      return "__shfl_xor_sync";
    case Op::kMmaBf16:
      return "mma.sync m16n8k16 bf16";
    case Op::kMmaF16:
      return "mma.sync m16n8k16 f16";
    case Op::kMmaTf32:
      return "mma.sync m16n8k8 tf32";
  }
  return "?";
}

/// What one lane hands to a warp collective: its registers in, its result out.
struct Mailbox {
  Op op = Op::kNone;
  int param = 0;  // shuffle lane mask
  float shfl_in = 0.0f;
  float shfl_out = 0.0f;
  const uint32_t* a = nullptr;
  const uint32_t* b = nullptr;
  float* c = nullptr;
};

#if defined(CONVIRT_EMU_ASAN)
constexpr size_t kStackBytes = 512 * 1024;  // ASan's redzones and unoptimised frames
#else
constexpr size_t kStackBytes = 128 * 1024;
#endif

struct Fiber {
  unsigned char* stack = nullptr;  // usable bytes [stack, stack + kStackBytes)
#if CONVIRT_EMU_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx{};
#endif
  void* asan_fake_stack = nullptr;
  State state = State::kDone;
  bool started = false;
  ThreadCoords coords{};
  int warp = 0;
  int lane = 0;
  int barriers_seen = 0;
  Mailbox mail;
};

struct Warp {
  int size = 0;
  int arrived = 0;
  Op op = Op::kNone;
  int param = 0;
};

struct Scheduler {
  std::vector<Fiber*> fibers;  // stacks are kept for the program's life and reused
  std::vector<Warp> warps;
  int threads = 0;
  int barrier_arrived = 0;
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
#if CONVIRT_EMU_ASM_SWITCH
  void* main_sp = nullptr;
#else
  ucontext_t main_ctx{};
#endif
  const void* main_stack_bottom = nullptr;
  size_t main_stack_size = 0;
  void* main_fake_stack = nullptr;
  unsigned char* smem = nullptr;
  float mma_a[16][16];
  float mma_b[16][8];
  double mma_d[16][8];

  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();
};

Scheduler g_sched;
Scheduler& sched() {
  return g_sched;
}

Fiber* new_fiber() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // One guard page below the stack: an overflow faults instead of corrupting a neighbour.
  void* mem =
      mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) fatal("cannot map a fiber stack");
  mprotect(mem, page, PROT_NONE);
  auto* f = new Fiber;
  f->stack = static_cast<unsigned char*>(mem) + page;
  return f;
}

Scheduler::~Scheduler() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (Fiber* f : fibers) {
    munmap(f->stack - page, kStackBytes + page);
    delete f;
  }
}

// Switch from the running fiber to the scheduler.
void yield_to_scheduler() {
  Scheduler& s = sched();
  Fiber* f = s.current;
#if defined(CONVIRT_EMU_ASAN)
  __sanitizer_start_switch_fiber(&f->asan_fake_stack, s.main_stack_bottom, s.main_stack_size);
#endif
#if CONVIRT_EMU_ASM_SWITCH
  convirt_emu_switch(&f->sp, s.main_sp);
#else
  swapcontext(&f->ctx, &s.main_ctx);
#endif
#if defined(CONVIRT_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f->asan_fake_stack, nullptr, nullptr);
#endif
}

// A fiber runs one CUDA thread per block, block after block, launch after launch: it is started
// once and never unwinds, so its stack (and ASan's fake stack) is set up once per program.
[[noreturn]] void fiber_main(void* arg) {
  auto* f = static_cast<Fiber*>(arg);
  Scheduler& s = sched();
#if defined(CONVIRT_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &s.main_stack_bottom, &s.main_stack_size);
#endif
  for (;;) {
    (*s.body)();
    f->state = State::kDone;
    yield_to_scheduler();
  }
}

#if !CONVIRT_EMU_ASM_SWITCH
void fiber_main_ucontext(unsigned int hi, unsigned int lo) {
  fiber_main(reinterpret_cast<void*>((static_cast<uintptr_t>(hi) << 32) | lo));
}
#endif

void start_fiber(Fiber* f) {
#if CONVIRT_EMU_ASM_SWITCH
  auto top = reinterpret_cast<uintptr_t>(f->stack + kStackBytes) & ~static_cast<uintptr_t>(15);
  // The trampoline is entered by `ret` with rsp 16-byte aligned, so its `call` gives the entry
  // function the ABI's alignment.
  auto* slot = reinterpret_cast<uintptr_t*>(top - 16);
  *--slot = reinterpret_cast<uintptr_t>(&convirt_emu_trampoline);
  *--slot = 0;                                         // rbp
  *--slot = 0;                                         // rbx
  *--slot = reinterpret_cast<uintptr_t>(f);            // r12: argument
  *--slot = reinterpret_cast<uintptr_t>(&fiber_main);  // r13: entry
  *--slot = 0;                                         // r14
  *--slot = 0;                                         // r15
  f->sp = slot;
#else
  getcontext(&f->ctx);
  f->ctx.uc_stack.ss_sp = f->stack;
  f->ctx.uc_stack.ss_size = kStackBytes;
  f->ctx.uc_link = nullptr;
  const auto p = reinterpret_cast<uintptr_t>(f);
  makecontext(&f->ctx, reinterpret_cast<void (*)()>(&fiber_main_ucontext), 2,
              static_cast<unsigned int>(p >> 32), static_cast<unsigned int>(p & 0xffffffffu));
#endif
  f->started = true;
}

// Switch from the scheduler to fiber f until it blocks or finishes.
void resume(Fiber* f) {
  Scheduler& s = sched();
  s.current = f;
  g_current_coords = &f->coords;
#if defined(CONVIRT_EMU_ASAN)
  __sanitizer_start_switch_fiber(&s.main_fake_stack, f->stack, kStackBytes);
#endif
#if CONVIRT_EMU_ASM_SWITCH
  convirt_emu_switch(&s.main_sp, f->sp);
#else
  swapcontext(&s.main_ctx, &f->ctx);
#endif
#if defined(CONVIRT_EMU_ASAN)
  __sanitizer_finish_switch_fiber(s.main_fake_stack, nullptr, nullptr);
#endif
  s.current = nullptr;
  g_current_coords = nullptr;
}

std::string describe_waiters() {
  Scheduler& s = sched();
  std::string out;
  for (int i = 0; i < s.threads; ++i) {
    const Fiber* f = s.fibers[static_cast<size_t>(i)];
    if (f->state == State::kWaitBarrier) out += " thread " + std::to_string(i) + ": __syncthreads;";
    if (f->state == State::kWaitWarp)
      out += " thread " + std::to_string(i) + ": " + op_name(f->mail.op) + ";";
    if (f->state == State::kDone) out += " thread " + std::to_string(i) + ": exited;";
    if (out.size() > 600) return out + " ...";
  }
  return out;
}

void run_block(dim3 grid, dim3 block, uint3 block_idx, size_t smem_bytes) {
  Scheduler& s = sched();
  if (smem_bytes > 0) std::memset(s.smem, 0xff, smem_bytes);  // NaN in fp32, fp16 and bf16
  int t = 0;
  for (unsigned z = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x, ++t) {
        Fiber* f = s.fibers[static_cast<size_t>(t)];
        f->coords = ThreadCoords{{x, y, z}, block_idx, block, grid};
        f->warp = t / 32;
        f->lane = t % 32;
        f->state = State::kRunnable;
        f->barriers_seen = 0;
        f->mail = Mailbox{};
        if (!f->started) start_fiber(f);
      }
  for (Warp& w : s.warps) {
    w.arrived = 0;
    w.op = Op::kNone;
  }
  s.barrier_arrived = 0;
  // Odd blocks run their threads in reverse order: a missing barrier or an unordered shared-memory
  // access that one order happens to hide shows up in the other.
  const bool reverse = counters().blocks % 2 == 1;
  ++counters().blocks;
  for (;;) {
    bool progress = false;
    bool all_done = true;
    for (int j = 0; j < s.threads; ++j) {
      const int i = reverse ? s.threads - 1 - j : j;
      Fiber* f = s.fibers[static_cast<size_t>(i)];
      if (f->state == State::kRunnable) {
        resume(f);
        progress = true;
      }
      if (f->state != State::kDone) all_done = false;
    }
    if (all_done) break;
    if (!progress) {
      fatal("deadlock in block (" + std::to_string(block_idx.x) + ", " +
            std::to_string(block_idx.y) + "):" + describe_waiters());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Warp collectives. The last lane to arrive performs the operation for the whole warp, reading
// every lane's mailbox, then releases the others.

/// Element (row, col) of an operand as given by a fragment table: which lane and which element of
/// that lane's registers holds it.
struct Place {
  int lane;
  int elem;
};

// PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type" (.f16/.bf16): with
// groupID = lane >> 2 and threadID_in_group = lane % 4,
//   A (16 x 16, row): a_i for i in 0..7, two per 32-bit register (a0,a1 in reg 0, ...);
//     row = groupID for a0,a1,a4,a5 and groupID + 8 for a2,a3,a6,a7;
//     col = threadID_in_group * 2 + (i & 1), plus 8 for a4..a7.
//   B (16 x 8, col): b_i for i in 0..3, two per register;
//     row = threadID_in_group * 2 + (i & 1), plus 8 for b2,b3; col = groupID.
//   C/D (16 x 8): c_i for i in 0..3; row = groupID for c0,c1 and groupID + 8 for c2,c3;
//     col = threadID_in_group * 2 + (i & 1).
void a_place_k16(int lane, int i, int* row, int* col) {
#if CONVIRT_EMU_MUTATION == 1
  if (i >= 2 && i < 6) i = i < 4 ? i + 2 : i - 2;  // registers 1 and 2 swapped
#endif
  const int g = lane >> 2, t = lane % 4;
  *row = g + ((i == 2 || i == 3 || i == 6 || i == 7) ? 8 : 0);
  *col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
}
void b_place_k16(int lane, int i, int* row, int* col) {
  const int g = lane >> 2, t = lane % 4;
  *row = t * 2 + (i & 1) + (i >= 2 ? 8 : 0);
  *col = g;
}
// PTX ISA, "Matrix Fragments for mma.m16n8k8" (.tf32): one element per 32-bit register,
//   A (16 x 8): row = groupID for a0,a2 and groupID + 8 for a1,a3; col = threadID_in_group for
//     a0,a1 and threadID_in_group + 4 for a2,a3.
//   B (8 x 8): row = threadID_in_group for b0 and threadID_in_group + 4 for b1; col = groupID.
//   C/D as for m16n8k16.
void a_place_k8(int lane, int i, int* row, int* col) {
#if CONVIRT_EMU_MUTATION == 1
  if (i == 1 || i == 2) i = 3 - i;  // registers 1 and 2 swapped
#endif
  const int g = lane >> 2, t = lane % 4;
  *row = g + ((i == 1 || i == 3) ? 8 : 0);
  *col = t + (i >= 2 ? 4 : 0);
}
void b_place_k8(int lane, int i, int* row, int* col) {
  const int g = lane >> 2, t = lane % 4;
  *row = t + (i == 1 ? 4 : 0);
  *col = g;
}
void c_place(int lane, int i, int* row, int* col) {
  const int g = lane >> 2, t = lane % 4;
  *row = g + (i >= 2 ? 8 : 0);
  *col = t * 2 + (i & 1);
}

/// For one MMA shape: where each lane's register elements sit in A, B and C, from the tables
/// above; built once, with a check that the tables cover every position exactly once.
struct FragmentMap {
  int k = 0;
  int a_elems = 0;  // per lane
  int b_elems = 0;
  int8_t a_row[32][8], a_col[32][8], b_row[32][4], b_col[32][4], c_row[32][4], c_col[32][4];

  explicit FragmentMap(bool tf32) {
    k = tf32 ? 8 : 16;
    a_elems = tf32 ? 4 : 8;
    b_elems = tf32 ? 2 : 4;
    int a_count[16][16] = {}, b_count[16][8] = {}, c_count[16][8] = {};
    for (int lane = 0; lane < 32; ++lane) {
      for (int i = 0; i < a_elems; ++i) {
        int r, c;
        (tf32 ? a_place_k8 : a_place_k16)(lane, i, &r, &c);
        a_row[lane][i] = static_cast<int8_t>(r);
        a_col[lane][i] = static_cast<int8_t>(c);
        ++a_count[r][c];
      }
      for (int i = 0; i < b_elems; ++i) {
        int r, c;
        (tf32 ? b_place_k8 : b_place_k16)(lane, i, &r, &c);
        b_row[lane][i] = static_cast<int8_t>(r);
        b_col[lane][i] = static_cast<int8_t>(c);
        ++b_count[r][c];
      }
      for (int i = 0; i < 4; ++i) {
        int r, c;
        c_place(lane, i, &r, &c);
        c_row[lane][i] = static_cast<int8_t>(r);
        c_col[lane][i] = static_cast<int8_t>(c);
        ++c_count[r][c];
      }
    }
    for (int r = 0; r < 16; ++r)
      for (int c = 0; c < 16; ++c) {
        if (c < k && a_count[r][c] != 1) fatal("A fragment table does not cover A once");
        if (r < k && c < 8 && b_count[r][c] != 1) fatal("B fragment table does not cover B once");
        if (c < 8 && c_count[r][c] != 1) fatal("C fragment table does not cover C once");
      }
  }
};

/// fp16 bits to float for every pattern (the MMA's operand decode is the hot loop).
const float* half_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t h = 0; h < 65536; ++h) v[h] = half_bits_to_float(static_cast<uint16_t>(h));
    return v;
  }();
  return t.data();
}

float element_value(Op op, uint32_t reg, int half) {
  const auto bits16 = static_cast<uint16_t>(half ? reg >> 16 : reg & 0xffffu);
  switch (op) {
    case Op::kMmaBf16:
      return bfloat16_bits_to_float(bits16);
    case Op::kMmaF16:
      return half_table()[bits16];
    case Op::kMmaTf32:
      // The tensor core reads the 19 bits of a tf32 and ignores the rest of the register.
      return bits_float(reg & 0xffffe000u);
    default:
      return 0.0f;
  }
}

// The emulator's own inner product (fixed bounds, scheduler-owned arrays) is left out of the
// sanitizers' instrumentation, which would otherwise dominate the sanitized test's run time; the
// kernel's code stays instrumented.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "undefined")))
#endif
void product(const float (&a)[16][16], const float (&b)[16][8], double (&d)[16][8], int k) {
  for (int r = 0; r < 16; ++r) {
    for (int c = 0; c < 8; ++c) d[r][c] = 0.0;
    for (int kk = 0; kk < k; ++kk) {
      const float x = a[r][kk];
      for (int c = 0; c < 8; ++c) d[r][c] += static_cast<double>(x * b[kk][c]);  // vectorises
    }
  }
}

void perform_mma(Op op, Fiber* const* lanes) {
  static const FragmentMap k16(false);
  static const FragmentMap k8(true);
  const FragmentMap& map = op == Op::kMmaTf32 ? k8 : k16;
  const int k = map.k;
  // Operands live in the scheduler, not on the fiber's stack: every lane's frame stays small (ASan
  // gives each frame a fake stack when it checks use after return).
  auto& a = sched().mma_a;
  auto& b = sched().mma_b;
  auto& d = sched().mma_d;
  for (int lane = 0; lane < 32; ++lane) {
    const Mailbox& m = lanes[lane]->mail;
    for (int i = 0; i < map.a_elems; ++i) {
      const bool packed = op != Op::kMmaTf32;
      a[map.a_row[lane][i]][map.a_col[lane][i]] =
          element_value(op, m.a[packed ? i / 2 : i], packed ? i & 1 : 0);
    }
    for (int i = 0; i < map.b_elems; ++i) {
      const bool packed = op != Op::kMmaTf32;
      b[map.b_row[lane][i]][map.b_col[lane][i]] =
          element_value(op, m.b[packed ? i / 2 : i], packed ? i & 1 : 0);
    }
  }
  // Products of 16-bit or tf32 operands are exact in fp32 (at most 22 significant bits), and the
  // tensor core accumulates them at (at least) fp32 precision: the exact sum in double, rounded
  // once to fp32 with C, stands in for it.
  product(a, b, d, k);
  for (int lane = 0; lane < 32; ++lane) {
    float* c = lanes[lane]->mail.c;
    for (int i = 0; i < 4; ++i) {
      c[i] =
          static_cast<float>(static_cast<double>(c[i]) + d[map.c_row[lane][i]][map.c_col[lane][i]]);
    }
  }
  Counters& cnt = counters();
  ++cnt.mma_ops;
  cnt.mma_flops += 2ull * 16 * 8 * static_cast<uint64_t>(k);
}

void warp_collective(Op op, int param) {
  Scheduler& s = sched();
  Fiber* f = s.current;
  if (f == nullptr) fatal("a warp collective outside a kernel");
  Warp& w = s.warps[static_cast<size_t>(f->warp)];
  if (w.size != 32) fatal("a full-mask warp collective in a partial warp");
  if (w.arrived == 0) {
    w.op = op;
    w.param = param;
  } else if (w.op != op || w.param != param) {
    fatal(std::string("divergent warp collective: lane ") + std::to_string(f->lane) + " calls " +
          op_name(op) + " while its warp is in " + op_name(w.op));
  }
  f->mail.op = op;
  f->mail.param = param;
  if (++w.arrived < 32) {
    f->state = State::kWaitWarp;
    yield_to_scheduler();
    return;
  }
  Fiber* lanes[32];
  for (int l = 0; l < 32; ++l) lanes[l] = s.fibers[static_cast<size_t>(f->warp * 32 + l)];
  if (op == Op::kShuffle) {
    for (int l = 0; l < 32; ++l) lanes[l]->mail.shfl_out = lanes[l ^ param]->mail.shfl_in;
    ++counters().shuffles;
  } else {
    perform_mma(op, lanes);
  }
  w.arrived = 0;
  w.op = Op::kNone;
  for (int l = 0; l < 32; ++l) {
    if (lanes[l] != f) lanes[l]->state = State::kRunnable;
  }
}

void mma(Op op, float (&c)[4], const uint32_t* a, const uint32_t* b) {
  Fiber* f = sched().current;
  if (f == nullptr) fatal("mma.sync outside a kernel");
  f->mail.a = a;
  f->mail.b = b;
  f->mail.c = c;
  warp_collective(op, 0);
}

}  // namespace

void syncthreads() {
  Scheduler& s = sched();
  Fiber* f = s.current;
  if (f == nullptr) fatal("__syncthreads outside a kernel");
  ++f->barriers_seen;
#if CONVIRT_EMU_MUTATION == 2
  if (f->barriers_seen == 2) return;
#endif
  if (++s.barrier_arrived < s.threads) {
    f->state = State::kWaitBarrier;
    yield_to_scheduler();
    return;
  }
  s.barrier_arrived = 0;
  ++counters().barriers;
  for (int i = 0; i < s.threads; ++i) {
    Fiber* o = s.fibers[static_cast<size_t>(i)];
    if (o->state == State::kWaitBarrier) o->state = State::kRunnable;
  }
}

float shfl_xor(unsigned int mask, float v, int lane_mask, int width) {
  if (mask != 0xffffffffu || width != 32) fatal("only full-warp shuffles are emulated");
  if (lane_mask <= 0 || lane_mask >= 32) fatal("shuffle lane mask out of range");
  Fiber* f = sched().current;
  if (f == nullptr) fatal("__shfl_xor_sync outside a kernel");
  f->mail.shfl_in = v;
  warp_collective(Op::kShuffle, lane_mask);
  return f->mail.shfl_out;
}

void mma_m16n8k16_bf16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  mma(Op::kMmaBf16, c, a, b);
}
void mma_m16n8k16_f16(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  mma(Op::kMmaF16, c, a, b);
}
void mma_m16n8k8_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  mma(Op::kMmaTf32, c, a, b);
}

unsigned char* dynamic_smem() {
  return sched().smem;
}

namespace {
// Limits of the devices the kernels target (sm_80: 163 KiB of opt-in shared memory per block,
// sm_90: 227 KiB); a launch over 48 KiB needs the attribute, as on the device.
constexpr size_t kDefaultSmem = 48 * 1024;
constexpr size_t kMaxSmem = 163 * 1024;
std::map<const void*, int>& max_dynamic_smem() {
  static std::map<const void*, int> m;
  return m;
}
cudaError_t& last_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
}  // namespace

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > kMaxSmem) {
    return cudaErrorInvalidValue;
  }
  max_dynamic_smem()[kernel] = value;
  return cudaSuccess;
}

void set_last_error(cudaError_t err) {
  last_error() = err;
}

bool run_grid(const void* kernel, dim3 grid, dim3 block, size_t smem_bytes,
              const std::function<void()>& body) {
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  size_t smem_limit = kDefaultSmem;
  const auto it = max_dynamic_smem().find(kernel);
  if (it != max_dynamic_smem().end()) smem_limit = static_cast<size_t>(it->second);
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || smem_bytes > smem_limit) {
    return false;
  }
  Scheduler& s = sched();
  if (s.current != nullptr) fatal("a launch from inside a kernel");
  s.threads = static_cast<int>(threads);
  while (s.fibers.size() < threads) s.fibers.push_back(new_fiber());
  s.warps.assign((threads + 31) / 32, Warp{});
  for (size_t w = 0; w < s.warps.size(); ++w) {
    s.warps[w].size = static_cast<int>(threads - w * 32 < 32 ? threads - w * 32 : 32);
  }
  // Exactly the requested bytes, so ASan reports any access past them.
  s.smem = smem_bytes > 0
               ? static_cast<unsigned char*>(::operator new(smem_bytes, std::align_val_t(16)))
               : nullptr;
  s.body = &body;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) run_block(grid, block, uint3{x, y, z}, smem_bytes);
  if (s.smem != nullptr) ::operator delete(s.smem, std::align_val_t(16));
  s.smem = nullptr;
  s.body = nullptr;
  return true;
}

}  // namespace convirt::cuda_emulator

// ---------------------------------------------------------------------------------------------
// Runtime API.

namespace ce = convirt::cuda_emulator;

cudaError_t cudaGetLastError() {
  const cudaError_t e = ce::last_error();
  ce::last_error() = cudaSuccess;
  return e;
}

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  return cudaGetErrorName(err);
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  // Exactly the requested bytes (ASan's redzone starts right after them); 256-byte aligned like
  // the device allocator.
  *ptr = ::operator new(bytes > 0 ? bytes : 1, std::align_val_t(256), std::nothrow);
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr != nullptr) ::operator delete(ptr, std::align_val_t(256));
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
  if (kind == cudaMemcpyHostToDevice) ce::counters().memcpy_h2d_bytes += bytes;
  if (kind == cudaMemcpyDeviceToHost) ce::counters().memcpy_d2h_bytes += bytes;
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes > 0) std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int /*device*/) {
  std::memset(prop, 0, sizeof(*prop));
  std::snprintf(prop->name, sizeof(prop->name), "convirt CUDA emulator (host fibers)");
  prop->major = 8;
  prop->minor = 0;
  return cudaSuccess;
}
