// The two Consumer member functions that both files of Consumer call on
// their hot paths (consumer.cpp: receive, ack; ops/dead_letter.cpp: the
// dead-letter copy), defined here so both can inline them.
#pragma once

#include <atomic>
#include <cstdint>

#include "ackring/consumer.hpp"
#include "shm/layout.hpp"

namespace ackring {

[[gnu::always_inline]] inline bool Consumer::group_gone() const noexcept {
  const auto& G = *group_entry_;
  // acquire: pairs with create's release of `active`; the incarnation read next is at least that creation's.
  return G.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(detail::GroupState::active) ||
         G.incarnation.load(std::memory_order_relaxed) != incarnation_;
}

// Whether a copy of seq's slot made while holding its lease word `held_word`
// is the message of seq: the word is still exactly ours and the group still
// exists. A producer rewrites the slot only after every group's floor passed
// seq, and our group's floor passes seq only once this word has changed; the
// producer's stores come after a release fence that follows its acquire of
// the floor word allowing the reuse, so a copy that saw any of them sees,
// after the acquire fence here, the word changed. The word cannot change and
// come back: it names this member, and only this Consumer (one thread, now in
// this call) takes words under its member index. A removed group's words no
// longer hold the floor, hence group_gone. (protocol.md §1, "Readers".)
[[gnu::always_inline]] inline bool Consumer::still_held(std::uint64_t seq, std::uint64_t held_word) const noexcept {
  std::atomic_thread_fence(std::memory_order_acquire);  // the copy happens before the loads below
  // relaxed: ordered after the copy by the fence; compared with our own CAS's value.
  return lease_word(seq).load(std::memory_order_relaxed) == held_word && !group_gone();
}

}  // namespace ackring
