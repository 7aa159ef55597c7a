// The CPU's spin-wait hint, for loops that poll a word another core will
// change: it tells the core it is spinning (x86 PAUSE, Arm YIELD), which
// frees execution resources for a sibling hyperthread and avoids the
// memory-order mis-speculation penalty when the loop exits. A no-op
// elsewhere. Shared with the benchmarks (bench/common.hpp).
#pragma once

namespace ackring::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace ackring::detail
