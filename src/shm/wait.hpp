// Waiting across processes: a futex on a 32-bit word in the shared file.
// Shared (not FUTEX_PRIVATE) because waiters and wakers are different
// processes mapping the same file.
//
// Protocol (all steps seq_cst, so they sit in one total order and the
// classic lost wake-up cannot happen):
//   waiter: waiters += 1; v = word |= kArmed; if (!condition()) futex_wait(word, v); waiters -= 1
//   waker:  make condition true; if (waiters > 0 && word is armed) { CAS word -> (word + 2) & ~kArmed; FUTEX_WAKE }
// Either the waker sees the armed word, or its load of the word precedes the
// arming in the total order, and then the waiter's re-check (after arming)
// sees the condition. If the waker bumps the word between the waiter's arming
// and its sleep, the kernel sees word != v and futex_wait returns at once.
// The armed bit makes one waker per sleep pay the syscall: the others see it
// cleared until a sleeper arms it again (no wake storm while a woken waiter
// is still on its way to decrement `waiters`; no syscall at all when a
// process died while waiting and left `waiters` raised).
#pragma once

#include <atomic>
#include <cstdint>

namespace ackring::detail {

// Sleeps while *word == expected, at most timeout_ns. Returns on wake,
// timeout, signal or value change; callers re-check their condition.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

inline constexpr std::uint32_t kArmed = 1;  // bit 0 of a futex word; wakers add 2

// Waiter side: register (the caller has already incremented `waiters`) and
// return the value to pass to futex_wait.
[[nodiscard]] inline std::uint32_t arm(std::atomic<std::uint32_t>& word) noexcept {
  // seq_cst: pairs with the waker's seq_cst load of the word (see above).
  return word.fetch_or(kArmed, std::memory_order_seq_cst) | kArmed;
}

// Waker side: only when someone sleeps, and only once per sleep, does this
// cost a syscall.
inline void wake_waiters(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& waiters) noexcept {
  // seq_cst: ordered after the caller's seq_cst publication of the condition
  // (commit CAS / floor CAS); pairs with the waiter's seq_cst increment.
  if (waiters.load(std::memory_order_seq_cst) == 0) return;
  std::uint32_t old = word.load(std::memory_order_seq_cst);
  if ((old & kArmed) == 0) return;  // already woken since the last sleeper armed it
  // seq_cst: a failed CAS means another waker bumped the word and woke everyone.
  if (word.compare_exchange_strong(old, (old + 2) & ~kArmed, std::memory_order_seq_cst))
    futex_wake_all(word);
}

}  // namespace ackring::detail
