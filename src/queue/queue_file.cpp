// Creating, opening and validating queue files (the cold path).
#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "ackring/error.hpp"
#include "ackring/queue.hpp"
#include "shm/clock.hpp"
#include "queue/durability.hpp"
#include "shm/liveness.hpp"
#include "queue/queue_file.hpp"
#include "shm/queue_state.hpp"

namespace ackring::detail {

namespace bip = boost::interprocess;

namespace {

constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) noexcept { return (v + a - 1) / a * a; }

[[noreturn]] void fail(ErrorCode code, const std::filesystem::path& path, std::string_view op, const std::string& why) {
  throw Error(code, std::string(op) + " '" + path.string() + "': " + why);
}

[[noreturn]] void fail_errno(const std::filesystem::path& path, std::string_view op, int err) {
  const ErrorCode code = err == ENOENT                  ? ErrorCode::not_found
                         : err == EEXIST                ? ErrorCode::already_exists
                         : (err == EACCES || err == EPERM) ? ErrorCode::permission_denied
                                                          : ErrorCode::system;
  fail(code, path, op, std::strerror(err));
}

std::uint64_t layout_checksum(const Layout& layout) noexcept { return XXH3_64bits(&layout, sizeof layout); }

// Fd owner for the few lines between open and map.
struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};

}  // namespace

bool compute_layout(Layout& l) noexcept {
  if (l.capacity < 2 || !std::has_single_bit(l.capacity) || l.capacity > (1u << kMaxCapacityLog2)) return false;
  if (l.max_message_size == 0 || l.max_message_size > kMaxSlotPayload) return false;
  if (l.max_groups == 0 || l.max_groups > kMaxGroups) return false;
  if (l.max_members == 0 || l.max_members > kMaxMembers) return false;
  if (l.max_producers == 0 || l.max_producers > kMaxProducers) return false;
  if (l.max_deliveries == 0 || l.max_deliveries > kMaxDeliveries) return false;
  if (l.durability > 2 || l.journal_dir_len > kJournalDirMax) return false;
  if (l.durability == 0 ? (l.journal_id != 0 || l.journal_dir_len != 0 || l.async_flush_ms != 0 ||
                           l.journal_retain_mib != 0 || l.journal_retain_s != 0)
                        : (l.journal_id == 0 || l.journal_dir_len == 0))
    return false;
  l.capacity_log2 = static_cast<std::uint32_t>(std::countr_zero(l.capacity));
  l.slot_size = static_cast<std::uint32_t>(sizeof(SlotHeader) + align_up(l.max_message_size, kCacheLine));
  l.group_stride = static_cast<std::uint32_t>(sizeof(GroupEntry) + std::uint64_t{l.max_members} * sizeof(MemberEntry));
  l.header_size = sizeof(FileHeader);
  l.producers_offset = kHeaderRegion;
  l.groups_offset = align_up(l.producers_offset + std::uint64_t{l.max_producers} * sizeof(ProducerEntry), kCacheLine);
  l.leases_offset = align_up(l.groups_offset + std::uint64_t{l.max_groups} * l.group_stride, kCacheLine);
  const std::uint64_t leases_end = l.leases_offset + std::uint64_t{l.max_groups} * l.capacity * 8;
  if (l.dedup_entries != 0) {
    if (!std::has_single_bit(l.dedup_entries) || l.dedup_entries < kMinDedupEntries ||
        l.dedup_entries > kMaxDedupEntries || l.dedup_window_ms == 0 || l.dedup_policy > 1)
      return false;
    // bloom_blocks is also a parameter: 0 means the creator turned the bloom
    // filter off (QueueOptions::dedup_bloom: no bloom bytes); any other value
    // is replaced by the size that follows from dedup_entries, so a reader
    // recomputing a stored layout refuses every other count.
    if (l.bloom_blocks != 0) l.bloom_blocks = std::max<std::uint32_t>(1, l.dedup_entries / 16);  // 16 bits per key, k = 8
    l.dedup_offset = align_up(leases_end, kCacheLine);
    const std::uint64_t dedup_end = l.dedup_offset + std::uint64_t{l.dedup_entries} * 32;
    l.bloom_offset = l.bloom_blocks != 0 ? align_up(dedup_end, kCacheLine) : 0;
    l.slots_offset = align_up(l.bloom_blocks != 0 ? l.bloom_offset + 2ull * l.bloom_blocks * 32 : dedup_end, 4096);
  } else {
    if (l.dedup_window_ms != 0 || l.dedup_policy != 0) return false;
    l.bloom_blocks = 0;
    l.dedup_offset = 0;
    l.bloom_offset = 0;
    l.slots_offset = align_up(leases_end, 4096);
  }
  const std::uint64_t slots_bytes = std::uint64_t{l.capacity} * l.slot_size;
  l.file_size = align_up(l.slots_offset + slots_bytes, 4096);
  return l.file_size < (1ull << 46);  // 64 TiB: anything larger is a mistake
}

QueueOptions options_from_layout(const Layout& l) {
  QueueOptions o;
  o.capacity = l.capacity;
  o.max_message_size = l.max_message_size;
  o.default_lease = Millis(l.default_lease_ms);
  o.max_deliveries = l.max_deliveries;
  o.max_groups = l.max_groups;
  o.max_members = l.max_members;
  o.max_producers = l.max_producers;
  o.claim_timeout = Millis(l.claim_timeout_ms);
  o.dedup = l.dedup_entries != 0;
  o.dedup_entries = l.dedup_entries;
  o.dedup_window = Millis(l.dedup_window_ms);
  o.dedup_full_policy = static_cast<DedupFullPolicy>(l.dedup_policy);
  o.dedup_bloom = l.bloom_blocks != 0;
  o.durability = static_cast<Durability>(l.durability);
  if (l.durability == kDurabilityAsync) o.async_flush_interval = Millis(l.async_flush_ms);
  o.journal_retain_bytes = std::uint64_t{l.journal_retain_mib} << 20;
  o.journal_retain_age = std::chrono::seconds(l.journal_retain_s);
  o.publish_timestamp =
      (l.flags & kLayoutCoarsePublishTime) != 0 ? PublishTimestamp::coarse : PublishTimestamp::precise;
  return o;
}

std::filesystem::path shm_directory() {
  if (const char* dir = std::getenv("ACKRING_SHM_DIR"); dir != nullptr && *dir != '\0') return dir;
  return "/dev/shm";
}

std::string validate_queue_name(std::string_view name) {
  if (name.empty()) return "the name is empty";
  // A dead-letter queue is named "<name>.dlq": allow the suffix on top of the limit.
  const bool dead_letter_queue = name.size() > 4 && name.substr(name.size() - 4) == ".dlq";
  if (name.size() > kQueueNameMax + (dead_letter_queue ? 4 : 0))
    return "the name is longer than " + std::to_string(kQueueNameMax) + " bytes";
  if (name == "." || name == ".." || name.find("..") != std::string_view::npos) return "the name contains '..'";
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return std::string("the name contains '") + c + "' (allowed: letters, digits, '-', '_', '.')";
  }
  return {};
}

std::filesystem::path resolve_path(std::string_view name_or_path) {
  if (name_or_path.find('/') != std::string_view::npos) return std::filesystem::path(name_or_path);
  if (auto why = validate_queue_name(name_or_path); !why.empty())
    throw Error(ErrorCode::invalid_argument, "queue name '" + std::string(name_or_path) + "': " + why);
  return shm_directory() / ("ackring." + std::string(name_or_path));
}

std::shared_ptr<QueueState> map_file(const std::filesystem::path& path, std::string_view op) {
  auto state = std::make_shared<QueueState>();
  state->path = path;
  try {
    bip::file_mapping file(path.c_str(), bip::read_write);
    state->region = bip::mapped_region(file, bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    const int err = e.get_native_error();
    if (err != 0) fail_errno(path, op, err);
    fail(ErrorCode::system, path, op, e.what());
  }
  state->base = static_cast<std::byte*>(state->region.get_address());
  return state;
}

// Checks everything a reader relies on before trusting the file: the
// header's size, magic, version, checksum, and that every offset and size
// follows from the parameters and fits the file.
void validate(QueueState& q, std::string_view op) {
  const auto& path = q.path;
  const std::size_t size = q.region.get_size();
  if (size < kHeaderRegion)
    fail(ErrorCode::corrupt, path, op,
         "file is " + std::to_string(size) + " bytes, smaller than the " + std::to_string(kHeaderRegion) +
             "-byte header (truncated or not an ackring queue)");
  Layout stored;
  std::memcpy(&stored, q.base, sizeof stored);
  if (std::memcmp(stored.magic, kMagic, sizeof kMagic) != 0)
    fail(ErrorCode::incompatible, path, op, "not an ackring queue (magic bytes do not match \"ACKRING\")");
  if (stored.version != kFormatVersion)
    fail(ErrorCode::incompatible, path, op,
         "format version " + std::to_string(stored.version) + " is not supported (this build reads version " +
             std::to_string(kFormatVersion) + ")");
  std::uint64_t checksum;
  std::memcpy(&checksum, q.base + offsetof(FileHeader, header_checksum), sizeof checksum);
  if (checksum != layout_checksum(stored))
    fail(ErrorCode::corrupt, path, op, "header checksum does not match (the header was damaged)");
  if ((stored.flags & ~kLayoutKnownFlags) != 0)
    fail(ErrorCode::incompatible, path, op,
         "header flags " + std::to_string(stored.flags) + " name features this build does not know");
  Layout expected = stored;
  if (!compute_layout(expected))
    fail(ErrorCode::corrupt, path, op, "header parameters are out of range (capacity " +
                                           std::to_string(stored.capacity) + ", max message size " +
                                           std::to_string(stored.max_message_size) + ")");
  if (std::memcmp(&expected, &stored, sizeof stored) != 0)
    fail(ErrorCode::incompatible, path, op,
         "layout does not follow from its parameters (written by an incompatible build)");
  if (stored.file_size != size)
    fail(ErrorCode::corrupt, path, op,
         "file is " + std::to_string(size) + " bytes but its header says " + std::to_string(stored.file_size) +
             " (truncated?)");
  if (stored.journal_dir_len != 0 &&
      XXH3_64bits(q.base + kJournalDirOffset, stored.journal_dir_len) != stored.journal_dir_hash)
    fail(ErrorCode::corrupt, path, op, "the journal directory stored in the header does not match its checksum");
  q.layout = stored;
  q.mask = stored.capacity - 1;
}

std::shared_ptr<QueueState> create_file(const std::filesystem::path& path, const QueueOptions& o) {
  return create_file(path, o, CreateExtras{});
}

namespace {

// The layout the options ask for: sizes, limits, dedup. Throws
// invalid_argument naming what is out of range.
Layout layout_of(const std::filesystem::path& path, const QueueOptions& o, std::string_view op) {
  Layout l{};
  std::memcpy(l.magic, kMagic, sizeof kMagic);
  l.version = kFormatVersion;
  l.capacity = o.capacity;
  l.max_message_size = o.max_message_size;
  l.max_groups = o.max_groups;
  l.max_members = o.max_members;
  l.max_producers = o.max_producers;
  l.max_deliveries = o.max_deliveries;
  const auto lease_ms = o.default_lease.count();
  const auto claim_ms = o.claim_timeout.count();
  if (lease_ms <= 0 || lease_ms > (1ll << 30) || claim_ms <= 0 || claim_ms > (1ll << 30))
    fail(ErrorCode::invalid_argument, path, op, "default_lease and claim_timeout must be between 1 ms and 12 days");
  l.default_lease_ms = static_cast<std::uint32_t>(lease_ms);
  l.claim_timeout_ms = static_cast<std::uint32_t>(claim_ms);
  if (o.publish_timestamp != PublishTimestamp::precise && o.publish_timestamp != PublishTimestamp::coarse)
    fail(ErrorCode::invalid_argument, path, op, "publish_timestamp must be precise or coarse");
  if (o.publish_timestamp == PublishTimestamp::coarse) l.flags |= kLayoutCoarsePublishTime;
  // User messages are at most 16 MiB; a dead-letter queue's slots also hold
  // the origin record, so "<name>.dlq" files may be slightly larger.
  const std::string fname = path.filename().string();
  const bool dead_letter_queue = fname.size() > 4 && fname.ends_with(".dlq");
  if (o.max_message_size > kMaxMessageSize && !dead_letter_queue)
    fail(ErrorCode::invalid_argument, path, op,
         "max_message_size " + std::to_string(o.max_message_size) + " is above the 16 MiB limit");
  if (o.dedup) {
    const auto window_ms = o.dedup_window.count();
    if (window_ms <= 0 || window_ms > (1ll << 31))
      fail(ErrorCode::invalid_argument, path, op, "dedup_window must be between 1 ms and 24 days");
    l.dedup_window_ms = static_cast<std::uint32_t>(window_ms);
    l.dedup_entries = o.dedup_entries != 0
                          ? o.dedup_entries
                          : static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                kMaxDedupEntries, std::max<std::uint64_t>(1024, std::uint64_t{o.capacity} * 2)));
    l.dedup_policy = static_cast<std::uint32_t>(o.dedup_full_policy);
    l.bloom_blocks = o.dedup_bloom ? 1 : 0;  // on: compute_layout sizes it
  }
  if (!compute_layout(l)) {
    fail(ErrorCode::invalid_argument, path, op,
         "invalid options: capacity must be a power of two in [2, 2^30] (got " + std::to_string(o.capacity) +
             "), max_message_size in [1, 16 MiB] (got " + std::to_string(o.max_message_size) +
             "), max_groups in [1, 1024], max_members in [1, 250], max_producers in [1, 65535], "
             "max_deliveries in [1, 254], dedup_entries a power of two in [16, 2^28]");
  }
  return l;
}

// A durable queue: validates its journal options, records them in the
// layout and makes the journal directory. Returns the resolved directory.
std::string set_up_journal(Layout& l, const std::filesystem::path& path, const QueueOptions& o,
                           const CreateExtras& extras, std::string_view op) {
  if (o.durability != Durability::async && o.durability != Durability::sync)
    fail(ErrorCode::invalid_argument, path, op, "durability must be none, async or sync");
  const std::string journal_dir = resolve_journal_dir(o.journal_dir);
  if (journal_dir.size() > kJournalDirMax)
    fail(ErrorCode::invalid_argument, path, op,
         "journal_dir is longer than " + std::to_string(kJournalDirMax) + " bytes");
  const auto flush_ms = o.async_flush_interval.count();
  if (o.durability == Durability::async && (flush_ms < 1 || flush_ms > 60'000))
    fail(ErrorCode::invalid_argument, path, op, "async_flush_interval must be between 1 ms and 60 s");
  l.durability = static_cast<std::uint32_t>(o.durability);
  l.async_flush_ms = o.durability == Durability::async ? static_cast<std::uint32_t>(flush_ms) : 0;
  const std::uint64_t retain_mib = (o.journal_retain_bytes + (1u << 20) - 1) >> 20;
  if (retain_mib > UINT32_MAX || o.journal_retain_age.count() < 0 || o.journal_retain_age.count() > UINT32_MAX)
    fail(ErrorCode::invalid_argument, path, op, "journal_retain_bytes or journal_retain_age is out of range");
  l.journal_retain_mib = static_cast<std::uint32_t>(retain_mib);
  l.journal_retain_s = static_cast<std::uint32_t>(o.journal_retain_age.count());
  const std::string fname = path.filename().string();
  l.journal_id = extras.journal_id != 0 ? extras.journal_id : make_journal_id(fname, l.created_realtime_ns);
  l.journal_dir_len = static_cast<std::uint32_t>(journal_dir.size());
  l.journal_dir_hash = XXH3_64bits(journal_dir.data(), journal_dir.size());
  const auto jdir = std::filesystem::path(journal_dir) / fname;
  // A journal left by an earlier queue of this name (e.g. before a reboot)
  // is not silently replaced: recover from it, or remove it.
  if (!extras.recovering && journal_has_segments(jdir))
    fail(ErrorCode::already_exists, path, op,
         "a journal of an earlier queue exists in '" + jdir.string() +
             "': rebuild the queue with Queue::recover, or remove that directory");
  // Fail here, not later in the journal thread, if the directory cannot be made.
  std::error_code dir_ec;
  std::filesystem::create_directories(jdir, dir_ec);
  if (dir_ec)
    fail(dir_ec == std::errc::permission_denied ? ErrorCode::permission_denied : ErrorCode::system, path, op,
         "cannot create the journal directory '" + jdir.string() + "': " + dir_ec.message());
  return journal_dir;
}

// Writes what is not zero in a new file: header, journal directory, slot
// words. No other process can see the file yet, so plain initialisation is
// enough; link() and the opener's mmap order it before any access by others.
void initialise(QueueState& q, const Layout& l, const std::string& journal_dir) {
  auto& h = q.header();
  std::memcpy(&h.layout, &l, sizeof l);
  h.header_checksum = layout_checksum(l);
  if (!journal_dir.empty()) std::memcpy(q.base + kJournalDirOffset, journal_dir.data(), journal_dir.size());
  q.layout = l;
  q.mask = l.capacity - 1;
  for (std::uint64_t seq = 0; seq < l.capacity; ++seq)
    q.slot(seq).state.store(SlotWord{seq, SlotState::free}.encode(), std::memory_order_relaxed);
}

// Removes a file when it goes out of scope, on every exit.
class UnlinkGuard {
 public:
  explicit UnlinkGuard(std::filesystem::path path) noexcept : path_(std::move(path)) {}
  ~UnlinkGuard() { ::unlink(path_.c_str()); }
  UnlinkGuard(const UnlinkGuard&) = delete;
  UnlinkGuard& operator=(const UnlinkGuard&) = delete;

 private:
  std::filesystem::path path_;
};

}  // namespace

std::shared_ptr<QueueState> create_file(const std::filesystem::path& path, const QueueOptions& o,
                                        const CreateExtras& extras) {
  constexpr std::string_view op = "create queue";
  Layout l = layout_of(path, o, op);
  const auto self = self_identity();
  l.created_realtime_ns = realtime_ns();
  l.creator_pid = static_cast<std::uint32_t>(self.pid);
  l.creator_start_time = self.start_time;
  const std::string fname = path.filename().string();
  std::strncpy(l.name, fname.c_str(), sizeof l.name - 1);
  const std::string journal_dir =
      o.durability != Durability::none ? set_up_journal(l, path, o, extras, op) : std::string();

  // Build under a temporary name in the same directory, then link() it into
  // place: link fails with EEXIST instead of replacing, and the file appears
  // complete or not at all. The temporary name goes on every exit; after a
  // successful link() the file lives on under its real name.
  std::random_device rd;
  const auto tmp = path.parent_path() / ("." + fname + ".tmp." + std::to_string(self.pid) + "." + std::to_string(rd()));
  Fd fd{::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, o.mode & 07777)};
  if (fd.fd < 0) fail_errno(tmp, op, errno);
  const UnlinkGuard remove_tmp(tmp);
  ::fchmod(fd.fd, o.mode & 07777);  // the umask must not narrow an explicit mode
  if (const int err = ::posix_fallocate(fd.fd, 0, static_cast<off_t>(l.file_size)); err != 0)
    fail(err == ENOSPC ? ErrorCode::resource_exhausted : ErrorCode::system, path, op,
         "cannot allocate " + std::to_string(l.file_size) + " bytes: " + std::strerror(err));
  std::shared_ptr<QueueState> q = map_file(tmp, op);
  initialise(*q, l, journal_dir);  // fallocate zero-filled the rest
  if (extras.before_link) extras.before_link(*q);
  q->path = path;
  if (::link(tmp.c_str(), path.c_str()) != 0) fail_errno(path, op, errno);
  return q;
}

std::shared_ptr<QueueState> open_file(const std::filesystem::path& path) {
  constexpr std::string_view op = "open queue";
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec) fail_errno(path, op, ec.value());  // e.g. EACCES on the directory: not "not found"
  if (!exists) fail(ErrorCode::not_found, path, op, "no such queue file");
  // Check the size before mapping: an empty file cannot even be mapped.
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size < kHeaderRegion)
    fail(ErrorCode::corrupt, path, op,
         "file is " + std::to_string(size) + " bytes, smaller than the " + std::to_string(kHeaderRegion) +
             "-byte header (truncated or not an ackring queue)");
  auto q = map_file(path, op);
  validate(*q, op);
  return q;
}

}  // namespace ackring::detail
