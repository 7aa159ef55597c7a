// The QUEUE file of a journal directory: the options the queue was created
// with, so that rebuilding it after a reboot needs nothing but the journal
// (docs/journal.md, "The QUEUE file").
//
//   0        8        12       16       24                                 120      128
//   ┌────────┬────────┬────────┬────────┬──────────────────────────────────┬────────┐
//   │ magic  │version │ size   │queue id│ options (u32 each, see below)    │checksum│
//   │ACKQUE01│   1    │  128   │        │                                  │ XXH3-64│
//   └────────┴────────┴────────┴────────┴──────────────────────────────────┴────────┘
//
// Written by the journal writer (the process holding the journal lock) when
// it finds the file missing or different, and by recovery; always as a new
// file renamed into place and synced, so a reader sees the old or the new
// file, never a mix. Little-endian like the rest of the journal.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "ackring/options.hpp"
#include "shm/layout.hpp"

namespace ackring::detail {

inline constexpr char kQueueMetaMagic[8] = {'A', 'C', 'K', 'Q', 'U', 'E', '0', '1'};
inline constexpr std::uint32_t kQueueMetaVersion = 1;
inline constexpr std::string_view kQueueMetaName = "QUEUE";

struct QueueMetaFile {
  char magic[8];
  std::uint32_t version;
  std::uint32_t size;  // sizeof(QueueMetaFile)
  std::uint64_t queue_id;
  std::uint32_t capacity;
  std::uint32_t max_message_size;
  std::uint32_t default_lease_ms;
  std::uint32_t max_deliveries;
  std::uint32_t max_groups;
  std::uint32_t max_members;
  std::uint32_t max_producers;
  std::uint32_t claim_timeout_ms;
  std::uint32_t mode;               // permission bits of the queue file
  std::uint32_t dedup_entries;      // 0: no dedup table
  std::uint32_t dedup_window_ms;
  std::uint32_t dedup_policy;       // DedupFullPolicy
  std::uint32_t dedup_bloom;        // 1: bloom filter on
  std::uint32_t durability;         // Durability
  std::uint32_t async_flush_ms;
  std::uint32_t journal_retain_mib;
  std::uint32_t journal_retain_s;
  std::uint32_t layout_flags;       // Layout::flags (kLayout*); 0 in files written before it existed
  std::uint32_t reserved[6];        // 0
  std::uint64_t checksum;           // XXH3-64 of bytes 0..119
};
static_assert(sizeof(QueueMetaFile) == 128);
static_assert(offsetof(QueueMetaFile, capacity) == 24);
static_assert(offsetof(QueueMetaFile, checksum) == 120);

// The file's content for a queue with this layout and file mode.
[[nodiscard]] QueueMetaFile make_queue_meta(const Layout& layout, std::uint32_t mode) noexcept;

// Writes <dir>/QUEUE unless it already holds exactly `meta` (throws ackring::Error on I/O errors).
void write_queue_meta(const std::filesystem::path& dir, const QueueMetaFile& meta);

// The options recorded in <dir>/QUEUE (journal_dir left empty). nullopt if
// the file is missing; if it is unreadable, damaged or of another version,
// nullopt with `problem` saying so.
[[nodiscard]] std::optional<QueueOptions> read_queue_meta(const std::filesystem::path& dir, std::string* problem,
                                                          std::uint64_t* queue_id = nullptr);

}  // namespace ackring::detail
