// The QUEUE file of a journal directory; see journal_meta.hpp.
#include "queue/journal_meta.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstddef>
#include <cstring>
#include <random>

#include "journal/journal_fs.hpp"
#include "queue/queue_file.hpp"

namespace ackring::detail {

namespace {

std::uint64_t meta_checksum(const QueueMetaFile& m) noexcept { return XXH3_64bits(&m, offsetof(QueueMetaFile, checksum)); }

}  // namespace

QueueMetaFile make_queue_meta(const Layout& l, std::uint32_t mode) noexcept {
  QueueMetaFile m{};
  std::memcpy(m.magic, kQueueMetaMagic, sizeof m.magic);
  m.version = kQueueMetaVersion;
  m.size = sizeof m;
  m.queue_id = l.journal_id;
  m.capacity = l.capacity;
  m.max_message_size = l.max_message_size;
  m.default_lease_ms = l.default_lease_ms;
  m.max_deliveries = l.max_deliveries;
  m.max_groups = l.max_groups;
  m.max_members = l.max_members;
  m.max_producers = l.max_producers;
  m.claim_timeout_ms = l.claim_timeout_ms;
  m.mode = mode & 07777;
  m.dedup_entries = l.dedup_entries;
  m.dedup_window_ms = l.dedup_window_ms;
  m.dedup_policy = l.dedup_policy;
  m.dedup_bloom = l.bloom_blocks != 0 ? 1 : 0;
  m.durability = l.durability;
  m.async_flush_ms = l.async_flush_ms;
  m.journal_retain_mib = l.journal_retain_mib;
  m.journal_retain_s = l.journal_retain_s;
  m.layout_flags = l.flags;
  m.checksum = meta_checksum(m);
  return m;
}

void write_queue_meta(const std::filesystem::path& dir, const QueueMetaFile& meta) {
  const auto path = dir / kQueueMetaName;
  {
    QueueMetaFile current{};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      const JournalFd owner(fd);
      if (journal_pread_some(fd, &current, sizeof current, path) == sizeof current &&
          std::memcmp(&current, &meta, sizeof meta) == 0)
        return;  // already there (the common case: every writer takeover checks)
    }
  }
  // A new file renamed over the old one: readers see one or the other whole.
  std::random_device rd;
  const auto tmp = dir / ("." + std::string(kQueueMetaName) + ".tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(rd()));
  try {
    JournalFd fd = journal_open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    journal_pwrite_all(fd.get(), &meta, sizeof meta, 0, tmp);
    journal_fsync(fd.get(), tmp);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    journal_fail_errno(path, "write the queue's options", err);
  }
  journal_fsync_directory(dir);
}

std::optional<QueueOptions> read_queue_meta(const std::filesystem::path& dir, std::string* problem,
                                            std::uint64_t* queue_id) {
  const auto path = dir / kQueueMetaName;
  auto refuse = [&](const std::string& why) -> std::optional<QueueOptions> {
    if (problem != nullptr) *problem = "'" + path.string() + "' " + why;
    return std::nullopt;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return refuse(std::string("cannot be read: ") + std::strerror(errno));
  }
  const JournalFd owner(fd);
  QueueMetaFile m{};
  std::size_t got = 0;
  try {
    got = journal_pread_some(fd, &m, sizeof m, path);
  } catch (const std::exception& e) {
    return refuse(std::string("cannot be read: ") + e.what());
  }
  if (got != sizeof m || std::memcmp(m.magic, kQueueMetaMagic, sizeof m.magic) != 0) return refuse("is not a QUEUE file");
  if (m.version != kQueueMetaVersion || m.size != sizeof m)
    return refuse("has format version " + std::to_string(m.version) + " (this build reads version " +
                  std::to_string(kQueueMetaVersion) + ")");
  if (m.checksum != meta_checksum(m)) return refuse("fails its checksum");
  if (m.durability > 2 || m.dedup_policy > 1 || (m.layout_flags & ~kLayoutKnownFlags) != 0)
    return refuse("holds values out of range");
  // The fields of the layout they came from, converted the one way a layout is.
  Layout l{};
  l.capacity = m.capacity;
  l.max_message_size = m.max_message_size;
  l.default_lease_ms = m.default_lease_ms;
  l.max_deliveries = m.max_deliveries;
  l.max_groups = m.max_groups;
  l.max_members = m.max_members;
  l.max_producers = m.max_producers;
  l.claim_timeout_ms = m.claim_timeout_ms;
  l.dedup_entries = m.dedup_entries;
  l.dedup_window_ms = m.dedup_window_ms;
  l.dedup_policy = m.dedup_policy;
  l.bloom_blocks = m.dedup_bloom;
  l.durability = m.durability;
  l.async_flush_ms = m.async_flush_ms;
  l.journal_retain_mib = m.journal_retain_mib;
  l.journal_retain_s = m.journal_retain_s;
  l.flags = m.layout_flags;
  QueueOptions o = options_from_layout(l);
  o.mode = static_cast<mode_t>(m.mode & 07777);
  if (queue_id != nullptr) *queue_id = m.queue_id;
  return o;
}

}  // namespace ackring::detail
