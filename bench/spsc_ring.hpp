// The physical floor: the simplest correct single-producer single-consumer
// ring in shared memory, with cached indices (rigtorp/SPSCQueue's trick).
// No acks, no leases, no checksums, no liveness, no waiting: what any
// shared-memory queue costs at least. ackring's figures are read against it.
//
//   0          64         128                           128 + capacity × stride
//   ┌──────────┬──────────┬──────────────────────────────┐
//   │write_idx │ read_idx │ slots: [u32 length][payload] │
//   └──────────┴──────────┴──────────────────────────────┘
// Each index on its own cache line; each side keeps a private copy of the
// other side's index and reloads it only when the ring looks full (producer)
// or empty (consumer), so in steady state the two sides touch each other's
// index line once per lap instead of once per message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ackring_bench {

struct SpscShared {
  alignas(64) std::atomic<std::uint64_t> write_idx;  // next slot to fill; written by the producer only
  alignas(64) std::atomic<std::uint64_t> read_idx;   // next slot to read; written by the consumer only
};
static_assert(sizeof(SpscShared) == 128);
static_assert(offsetof(SpscShared, read_idx) == 64);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

[[nodiscard]] constexpr std::size_t spsc_stride(std::size_t max_size) noexcept {
  return (sizeof(std::uint32_t) + max_size + 63) & ~std::size_t{63};
}
[[nodiscard]] constexpr std::size_t spsc_bytes(std::size_t capacity, std::size_t max_size) noexcept {
  return sizeof(SpscShared) + capacity * spsc_stride(max_size);
}

// Views over a mapping of spsc_bytes(capacity, max_size) bytes, zero-filled
// (a fresh file or anonymous mapping is). capacity is a power of two.
class SpscProducer {
 public:
  SpscProducer(void* base, std::size_t capacity, std::size_t max_size) noexcept
      : shared_(static_cast<SpscShared*>(base)),
        slots_(static_cast<std::byte*>(base) + sizeof(SpscShared)),
        mask_(capacity - 1),
        stride_(spsc_stride(max_size)) {
    write_ = shared_->write_idx.load(std::memory_order_relaxed);
    read_cache_ = shared_->read_idx.load(std::memory_order_acquire);
  }

  [[nodiscard]] bool try_push(const std::byte* data, std::uint32_t size) noexcept {
    if (write_ - read_cache_ > mask_) {
      // acquire: pairs with the consumer's release of read_idx; its reads of
      // the slot we are about to overwrite are done.
      read_cache_ = shared_->read_idx.load(std::memory_order_acquire);
      if (write_ - read_cache_ > mask_) return false;
    }
    std::byte* slot = slots_ + (write_ & mask_) * stride_;
    std::memcpy(slot, &size, sizeof size);
    std::memcpy(slot + sizeof size, data, size);
    // release: pairs with the consumer's acquire of write_idx; publishes the slot.
    shared_->write_idx.store(++write_, std::memory_order_release);
    return true;
  }

 private:
  SpscShared* shared_;
  std::byte* slots_;
  std::uint64_t mask_;
  std::size_t stride_;
  std::uint64_t write_ = 0;
  std::uint64_t read_cache_ = 0;
};

class SpscConsumer {
 public:
  SpscConsumer(void* base, std::size_t capacity, std::size_t max_size) noexcept
      : shared_(static_cast<SpscShared*>(base)),
        slots_(static_cast<std::byte*>(base) + sizeof(SpscShared)),
        mask_(capacity - 1),
        stride_(spsc_stride(max_size)) {
    read_ = shared_->read_idx.load(std::memory_order_relaxed);
    write_cache_ = shared_->write_idx.load(std::memory_order_acquire);
  }

  // Pointer to the payload of the oldest message (its size in *size), or
  // nullptr when empty. Valid until pop().
  [[nodiscard]] const std::byte* front(std::uint32_t* size) noexcept {
    if (read_ == write_cache_) {
      // acquire: pairs with the producer's release of write_idx.
      write_cache_ = shared_->write_idx.load(std::memory_order_acquire);
      if (read_ == write_cache_) return nullptr;
    }
    const std::byte* slot = slots_ + (read_ & mask_) * stride_;
    std::memcpy(size, slot, sizeof *size);
    return slot + sizeof *size;
  }
  void pop() noexcept {
    // release: our reads of the slot happen before the producer may reuse it.
    shared_->read_idx.store(++read_, std::memory_order_release);
  }

 private:
  SpscShared* shared_;
  std::byte* slots_;
  std::uint64_t mask_;
  std::size_t stride_;
  std::uint64_t read_ = 0;
  std::uint64_t write_cache_ = 0;
};

}  // namespace ackring_bench
