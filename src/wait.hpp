// Waiting across processes: a futex on a 32-bit word in the shared file.
// Shared (not FUTEX_PRIVATE) because waiters and wakers are different
// processes mapping the same file.
//
// Protocol (both sides seq_cst, so the two stores and two loads are in one
// total order and the classic lost wake-up cannot happen):
//   waiter: waiters += 1; v = word; if (!condition()) futex_wait(word, v); waiters -= 1
//   waker:  make condition true; if (waiters > 0) { word += 1; futex_wake(word) }
// Either the waker sees waiters > 0, or the waiter sees the condition true.
// If the waker bumps the word between the waiter's read and its sleep, the
// kernel sees word != v and futex_wait returns at once.
#pragma once

#include <atomic>
#include <cstdint>

namespace ackring::detail {

// Sleeps while *word == expected, at most timeout_ns. Returns on wake,
// timeout, signal or value change; callers re-check their condition.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::uint64_t timeout_ns) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

// Waker side: only when someone sleeps does this cost a syscall.
inline void wake_waiters(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& waiters) noexcept {
  // seq_cst: ordered after the caller's seq_cst publication of the condition
  // (commit CAS / floor CAS), pairs with the waiter's seq_cst increment.
  if (waiters.load(std::memory_order_seq_cst) != 0) {
    word.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(word);
  }
}

}  // namespace ackring::detail
