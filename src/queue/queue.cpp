// Queue: the owner handle; producer registration; group management entry points.
#include "ackring/queue.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ackring/error.hpp"
#include "shm/clock.hpp"
#include "queue/durability.hpp"
#include "queue/group.hpp"
#include "shm/liveness.hpp"
#include "queue/queue_file.hpp"
#include "shm/queue_state.hpp"

namespace ackring {

using namespace detail;

Queue::Queue(std::shared_ptr<QueueState> state) noexcept : state_(std::move(state)) {}
Queue::Queue(Queue&&) noexcept = default;
Queue& Queue::operator=(Queue&&) noexcept = default;
Queue::~Queue() = default;

namespace {
// A queue mapped by this process: starts its journal thread if it has a journal.
std::shared_ptr<QueueState> started(std::shared_ptr<QueueState> q) {
  start_durability(*q);
  return q;
}
}  // namespace

std::filesystem::path Queue::resolve(std::string_view name_or_path) { return resolve_path(name_or_path); }

Queue Queue::create(std::string_view name_or_path, const QueueOptions& options) {
  return Queue(started(create_file(resolve_path(name_or_path), options)));
}

Queue Queue::open(std::string_view name_or_path) { return Queue(started(open_file(resolve_path(name_or_path)))); }

Queue Queue::open_or_create(std::string_view name_or_path, const QueueOptions& options) {
  const auto path = resolve_path(name_or_path);
  for (int attempt = 0;; ++attempt) {
    try {
      return Queue(started(open_file(path)));
    } catch (const Error& e) {
      if (e.code() != ErrorCode::not_found) throw;
    }
    try {
      return Queue(started(create_file(path, options)));
    } catch (const Error& e) {
      // Lost a creation race: the other creator's file is complete (link is atomic).
      if (e.code() != ErrorCode::already_exists || attempt > 3) throw;
    }
  }
}

bool Queue::destroy(std::string_view name_or_path) {
  const auto path = resolve_path(name_or_path);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  const int err = errno;
  throw Error(err == EACCES || err == EPERM ? ErrorCode::permission_denied : ErrorCode::system,
              "destroy queue '" + path.string() + "': " + std::strerror(err));
}

const std::filesystem::path& Queue::path() const noexcept { return state_->path; }

QueueOptions Queue::options() const {
  QueueOptions o = options_from_layout(state_->layout);
  o.journal_dir = journal_root(*state_);
  struct stat st{};
  if (::stat(state_->path.c_str(), &st) == 0) o.mode = st.st_mode & 07777;
  return o;
}

Producer Queue::producer() {
  const QueueState& q = *state_;
  const ProcessIdentity self = self_identity();
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (std::uint32_t i = 0; i < q.layout.max_producers; ++i) {
      auto& e = q.producer(i);
      // acquire: pairs with the owner's claim CAS and its release of the pid on leaving:
      // a free entry's counters were cleared before it.
      std::uint32_t pid = e.pid.load(std::memory_order_acquire);
      if (pid != 0) {
        // On the second pass, take over the entries of dead producers.
        if (attempt == 0 || is_alive(static_cast<pid_t>(pid), e.start_time.load(std::memory_order_acquire))) continue;
        // acq_rel: one reclaimer wins; it folds the dead producer's count into the total.
        if (!e.pid.compare_exchange_strong(pid, static_cast<std::uint32_t>(self.pid), std::memory_order_acq_rel))
          continue;
        retire_producer_counters(q, e);
      } else if (!e.pid.compare_exchange_strong(pid, static_cast<std::uint32_t>(self.pid),
                                                // acq_rel: the free entry becomes ours, exactly one claimer wins.
                                                std::memory_order_acq_rel)) {
        continue;
      }
      // A dead owner stores nothing more; its in-flight word must not hold the ring.
      e.in_flight.store(0, std::memory_order_relaxed);
      e.published.store(0, std::memory_order_relaxed);
      e.dedup_hits.store(0, std::memory_order_relaxed);
      e.keyed_published.store(0, std::memory_order_relaxed);
      e.bloom_negatives.store(0, std::memory_order_relaxed);
      e.expired_reused.store(0, std::memory_order_relaxed);
      e.last_active_ms.store(coarse_monotonic_ms(), std::memory_order_relaxed);
      // relaxed: published with the start time below.
      const std::uint32_t incarnation = e.incarnation.fetch_add(1, std::memory_order_relaxed) + 1;
      // release: readers that see the start time judge liveness by it (and by the incarnation).
      e.start_time.store(self.start_time, std::memory_order_release);
      return Producer(state_, i, incarnation);
    }
  }
  throw Error(ErrorCode::resource_exhausted, "register producer in '" + q.path.string() + "': all " +
                                                 std::to_string(q.layout.max_producers) +
                                                 " producer slots are held by live processes");
}

Consumer Queue::consumer(std::string_view group, const ConsumerOptions& options) {
  const QueueState& q = *state_;
  if (options.linger < std::chrono::microseconds(0) || options.linger > std::chrono::seconds(1))
    throw Error(ErrorCode::invalid_argument, "join group '" + std::string(group) + "' in '" + q.path.string() +
                                                 "': linger must be between 0 and 1 s (it was " +
                                                 std::to_string(options.linger.count()) + " us)");
  std::uint32_t g = find_group(q, group);
  if (g == kNoGroup) {
    if (!options.create_group)
      throw Error(ErrorCode::not_found,
                  "join group '" + std::string(group) + "' in '" + q.path.string() + "': no such group");
    try {
      g = detail::create_group(q, group, options.group);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::already_exists) throw;
      g = find_group(q, group);
      if (g == kNoGroup) throw;
    }
  }
  const std::uint32_t incarnation = q.group(g).incarnation.load(std::memory_order_relaxed);
  const std::uint32_t m = join_group(q, g);
  return Consumer(state_, g, incarnation, m, std::string(group), options);
}

void Queue::create_group(std::string_view group, const GroupOptions& options) {
  (void)detail::create_group(*state_, group, options);
}

bool Queue::remove_group(std::string_view group) { return detail::remove_group(*state_, group); }

void Queue::set_redelivery(std::string_view group, const RedeliveryPolicy& policy) {
  AdminLock lock(*state_);  // the group found is the group changed (no remove + create in between)
  const std::uint32_t g = find_group(*state_, group);
  if (g == kNoGroup)
    throw Error(ErrorCode::not_found,
                "set redelivery of group '" + std::string(group) + "' in '" + state_->path.string() + "': no such group");
  set_group_redelivery(*state_, g, policy);
}

std::vector<std::string> Queue::group_names() const {
  std::vector<std::string> names;
  const QueueState& q = *state_;
  for (std::uint32_t g = 0; g < q.layout.max_groups; ++g) {
    const auto& G = q.group(g);
    // acquire: pairs with the creator's release of `active`; the name is complete.
    if (G.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(GroupState::active))
      names.emplace_back(G.name, strnlen(G.name, sizeof G.name));
  }
  return names;
}

}  // namespace ackring
