// Readings derived from a QueueStats snapshot, shared by stat, top, group ls
// and metrics: groups ordered by lag, the slowest member, liveness counts, and
// the JSON form of the whole snapshot.
#pragma once

#include <ackring/ackring.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format.hpp"

namespace ackring::cli {

struct Liveness {
  std::size_t alive = 0;
  std::size_t dead = 0;
};
[[nodiscard]] Liveness liveness(const std::vector<MemberStats>& members) noexcept;
[[nodiscard]] Liveness liveness(const std::vector<ProducerStats>& producers) noexcept;

// Liveness is judged by pid in this process's pid namespace. A process of
// another pid namespace (another container) is not found there, so it reads
// "dead", although it may be at work. A dead process updates nothing, so one
// that reads dead yet was active within kActiveElsewhereMs (members update
// their activity at least every 500 ms while they wait for messages) most
// likely lives in another pid namespace: stat marks it, rm refuses it.
inline constexpr std::uint64_t kActiveElsewhereMs = 2000;
[[nodiscard]] inline bool active_elsewhere(const MemberStats& m) noexcept {
  return !m.alive && m.idle_ms < kActiveElsewhereMs;
}
[[nodiscard]] inline bool active_elsewhere(const ProducerStats& p) noexcept {
  return !p.alive && p.idle_ms < kActiveElsewhereMs;
}
// "alive", "dead", or "dead?" for active_elsewhere.
template <typename Stats>
[[nodiscard]] const char* state_of(const Stats& s) noexcept {
  return s.alive ? "alive" : active_elsewhere(s) ? "dead?" : "dead";
}

// "none", "equal", "full".
[[nodiscard]] std::string_view to_string(Jitter j) noexcept;
// "none (at once)" or "100 ms x2.0 up to 1m, equal jitter".
[[nodiscard]] std::string describe(const RedeliveryPolicy& p);
// "4.2 ms", "300 ms", "12.5 s".
[[nodiscard]] std::string format_latency_ms(double ms);
// "p50 12 ms, p99 300 ms over 1234 acks", or "no acks timed yet".
[[nodiscard]] std::string describe(const AckLatency& l);
// The lines an operator should act on for this group (empty: healthy).
[[nodiscard]] std::vector<std::string> warnings_of(const GroupStats& g);
// Whole-number percent with one decimal: "33.3%".
[[nodiscard]] std::string format_percent(double ratio);

// Groups, most lagging first (ties by name).
[[nodiscard]] std::vector<const GroupStats*> groups_by_lag(const QueueStats& stats);

// The member holding back the group that lags most: the one with the most
// leases in flight (they keep the floor down), dead before alive, then the
// longest idle. `member` is empty when the group has no members at all.
struct Slowest {
  std::string group;
  std::uint64_t lag = 0;
  std::optional<MemberStats> member;
};
[[nodiscard]] std::optional<Slowest> slowest(const QueueStats& stats);
// "group billing member pid 4242 (dead), lag 17" / "group audit (no members), lag 3".
[[nodiscard]] std::string describe(const Slowest& s);

// The journal of a durable queue, as stat, top and metrics show it.
struct JournalView {
  bool durable = false;          // durability async or sync: there is a journal
  Durability durability = Durability::none;
  std::string directory;         // <journal_dir>/<queue file name>
  std::uint64_t durable_seq = 0;  // every seq below is on disk
  std::uint64_t lag = 0;          // tail - durable_seq: committed or claimed, not yet on disk
  std::uint32_t writer_pid = 0;   // 0: no process writes it now (sync publishes wait)
  std::uint64_t flushes = 0;
  std::uint64_t flush_interval_ms = 0;  // async: the loss window
};
[[nodiscard]] JournalView journal_view(const QueueStats& stats, const QueueOptions& options);
// "durability sync, journal /var/tmp/ackring/ackring.orders: lag 0 (durable seq 1000), writer pid 4242, 17 flushes"
// or "durability none (a reboot loses the queue)".
[[nodiscard]] std::string describe(const JournalView& journal);
// {"durability", "directory", "durable_seq", "lag", "writer_pid", "flushes", "flush_interval_ms"}; null when not durable.
[[nodiscard]] Json to_json(const JournalView& journal);

// Every field of the snapshot (and of the queue's options), for --json.
[[nodiscard]] Json to_json(std::string_view name, const QueueStats& stats, const QueueOptions& options);
[[nodiscard]] Json to_json(const GroupStats& group);
[[nodiscard]] Json to_json(const DedupStats& dedup);
// "0640"
[[nodiscard]] std::string octal_mode(mode_t mode);

}  // namespace ackring::cli
