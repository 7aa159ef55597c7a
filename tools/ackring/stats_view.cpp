#include "stats_view.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <tuple>

namespace ackring::cli {

Liveness liveness(const std::vector<MemberStats>& members) noexcept {
  Liveness l;
  for (const auto& m : members) (m.alive ? l.alive : l.dead) += 1;
  return l;
}

Liveness liveness(const std::vector<ProducerStats>& producers) noexcept {
  Liveness l;
  for (const auto& p : producers) (p.alive ? l.alive : l.dead) += 1;
  return l;
}

std::vector<const GroupStats*> groups_by_lag(const QueueStats& stats) {
  std::vector<const GroupStats*> out;
  for (const auto& g : stats.groups) out.push_back(&g);
  std::stable_sort(out.begin(), out.end(), [](const GroupStats* a, const GroupStats* b) {
    return std::tie(b->lag, a->name) < std::tie(a->lag, b->name);
  });
  return out;
}

std::optional<Slowest> slowest(const QueueStats& stats) {
  const auto groups = groups_by_lag(stats);
  if (groups.empty()) return std::nullopt;
  const GroupStats& g = *groups.front();
  Slowest s{g.name, g.lag, std::nullopt};
  auto rank = [](const MemberStats& m) { return std::make_tuple(m.in_flight, !m.alive, m.idle_ms); };
  for (const auto& m : g.members)
    if (!s.member || rank(m) > rank(*s.member)) s.member = m;
  return s;
}

std::string describe(const Slowest& s) {
  std::string out = "group " + s.group;
  if (s.member) {
    out += " member pid " + std::to_string(s.member->pid);
    if (!s.member->alive) out += " (dead)";
  } else {
    out += " (no members attached)";
  }
  return out + ", lag " + std::to_string(s.lag);
}

std::string_view to_string(Jitter j) noexcept {
  switch (j) {
    case Jitter::equal: return "equal";
    case Jitter::full: return "full";
    case Jitter::none: break;
  }
  return "none";
}

std::string describe(const RedeliveryPolicy& p) {
  if (p.initial.count() == 0) return "none (redelivered at once)";
  char multiplier[16];
  std::snprintf(multiplier, sizeof multiplier, "%.1f", p.multiplier);
  return format_duration(static_cast<std::uint64_t>(p.initial.count())) + " x" + multiplier + " up to " +
         format_duration(static_cast<std::uint64_t>(p.max.count())) + ", " + std::string(to_string(p.jitter)) +
         " jitter";
}

std::string format_latency_ms(double ms) {
  char buf[32];
  if (ms < 10)
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  else if (ms < 10'000)
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  else
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000.0);
  return buf;
}

std::string describe(const AckLatency& l) {
  if (l.count == 0) return "no acks timed yet";
  return "p50 " + format_latency_ms(l.p50_ms) + ", p99 " + format_latency_ms(l.p99_ms) + " over " + std::to_string(l.count) + " acks";
}

std::string format_percent(double ratio) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", ratio * 100.0);
  return buf;
}

std::vector<std::string> warnings_of(const GroupStats& g) {
  std::vector<std::string> out;
  if (g.lease_below_p99)
    out.push_back("the shortest member lease (" + format_latency_ms(static_cast<double>(g.min_member_lease_ms)) +
                  ") is below the p99 delivery-to-ack time (" + format_latency_ms(g.ack_latency.p99_ms) +
                  "): over 1% of messages outlive their lease and are delivered twice; set the lease above "
                  "the p99 processing time (ConsumerOptions::lease, or the queue's --lease)");
  return out;
}

Json to_json(const AckLatency& l) {
  Json buckets = Json::array();
  for (std::size_t b = 0; b < AckLatency::kBuckets; ++b)
    buckets.push_back({{"ge_ms", AckLatency::bucket_floor_ms(b)}, {"count", l.buckets[b]}});
  return {{"count", l.count}, {"sum_ms", l.sum_ms}, {"p50_ms", l.p50_ms}, {"p99_ms", l.p99_ms}, {"buckets", std::move(buckets)}};
}

Json to_json(const GroupStats& g) {
  Json members = Json::array();
  for (const auto& m : g.members)
    members.push_back({{"index", m.index},
                       {"pid", m.pid},
                       {"alive", m.alive},
                       {"active_elsewhere", active_elsewhere(m)},
                       {"delivered", m.delivered},
                       {"acked", m.acked},
                       {"in_flight", m.in_flight},
                       {"idle_ms", m.idle_ms},
                       {"redelivered", m.redelivered},
                       {"nacked", m.nacked},
                       {"lease_expiries", m.lease_expiries},
                       {"lease_ms", m.lease_ms}});
  return {{"name", g.name},
          {"overflow", to_string(g.overflow)},
          {"floor", g.floor},
          {"next", g.next},
          {"lag", g.lag},
          {"in_flight", g.in_flight},
          {"delivered", g.delivered},
          {"acked", g.acked},
          {"redelivered", g.redelivered},
          {"nacked", g.nacked},
          {"dead_lettered", g.dead_lettered},
          {"dropped", g.dropped},
          {"aborted_skipped", g.aborted_skipped},
          {"corrupt_skipped", g.corrupt_skipped},
          {"lease_expiries", g.lease_expiries},
          {"oldest_unacked_seq", g.oldest_unacked_publish_ns != 0 ? Json(g.oldest_unacked_seq) : Json(nullptr)},
          {"oldest_unacked_age_ms", g.oldest_unacked_age_ms},
          {"redelivery",
           {{"initial_ms", g.redelivery.initial.count()},
            {"multiplier", g.redelivery.multiplier},
            {"max_ms", g.redelivery.max.count()},
            {"jitter", to_string(g.redelivery.jitter)}}},
          {"waiting_redelivery", g.waiting_redelivery},
          {"redelivered_by",
           {{"expiry", g.redelivered_by.expiry},
            {"death", g.redelivered_by.death},
            {"nack", g.redelivered_by.nack},
            {"released", g.redelivered_by.released}}},
          {"process_once_skips", g.process_once_skips},
          {"ack_latency", to_json(g.ack_latency)},
          {"min_member_lease_ms", g.min_member_lease_ms},
          {"lease_below_p99", g.lease_below_p99},
          {"warnings", warnings_of(g)},
          {"members", std::move(members)}};
}

Json to_json(const DedupStats& d) {
  return {{"enabled", d.enabled},
          {"window_ms", d.window_ms},
          {"entries", d.entries},
          {"live", d.live},
          {"load_factor", d.load_factor},
          {"hits", d.hits},
          {"keyed_published", d.keyed_published},
          {"hit_ratio", d.hit_ratio},
          {"bloom_negatives", d.bloom_negatives},
          {"expired_reused", d.expired_reused},
          {"evicted", d.evicted},
          {"full", d.full}};
}

JournalView journal_view(const QueueStats& stats, const QueueOptions& options) {
  JournalView j;
  j.durability = options.durability;
  j.durable = options.durability != Durability::none;
  if (!j.durable) return j;
  // docs/journal.md: <journal_dir>/<queue file name>/ (the queue stores its resolved journal_dir).
  j.directory = (std::filesystem::path(options.journal_dir) / std::filesystem::path(stats.path).filename()).string();
  j.durable_seq = stats.durable_seq;
  // Snapshots are not atomic: durable_seq may be read after a tail it passed.
  j.lag = stats.tail > stats.durable_seq ? stats.tail - stats.durable_seq : 0;
  j.writer_pid = stats.journal_pid;
  j.flushes = stats.journal_flushes;
  if (options.durability == Durability::async)
    j.flush_interval_ms = static_cast<std::uint64_t>(options.async_flush_interval.count());
  return j;
}

std::string describe(const JournalView& j) {
  if (!j.durable) return "durability none (no journal: a reboot loses the queue)";
  std::string out = "durability " + std::string(to_string(j.durability));
  if (j.durability == Durability::async) out += " (flushed every " + std::to_string(j.flush_interval_ms) + " ms)";
  out += ", journal " + j.directory + "\n  journal: lag " + std::to_string(j.lag) + " (durable seq " +
         std::to_string(j.durable_seq) + "), ";
  if (j.writer_pid != 0)
    out += "writer pid " + std::to_string(j.writer_pid);
  else
    out += "no writer now (no process has the queue open with its journal thread on; sync publishes wait "
           "for one: 'ackring journald' runs one)";
  return out + ", " + std::to_string(j.flushes) + " flushes";
}

Json to_json(const JournalView& j) {
  if (!j.durable) return nullptr;
  Json out = {{"durability", to_string(j.durability)},
              {"directory", j.directory},
              {"durable_seq", j.durable_seq},
              {"lag", j.lag}};
  out["writer_pid"] = j.writer_pid != 0 ? Json(j.writer_pid) : Json(nullptr);
  out["flushes"] = j.flushes;
  out["flush_interval_ms"] = j.durability == Durability::async ? Json(j.flush_interval_ms) : Json(nullptr);
  return out;
}

std::string octal_mode(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Json to_json(std::string_view name, const QueueStats& stats, const QueueOptions& options) {
  Json producers = Json::array();
  for (const auto& p : stats.producers)
    producers.push_back({{"index", p.index},
                         {"pid", p.pid},
                         {"alive", p.alive},
                         {"active_elsewhere", active_elsewhere(p)},
                         {"published", p.published},
                         {"idle_ms", p.idle_ms}});
  Json groups = Json::array();
  for (const GroupStats* g : groups_by_lag(stats)) groups.push_back(to_json(*g));
  Json out = {{"name", name},
              {"path", stats.path},
              {"capacity", stats.capacity},
              {"max_message_size", stats.max_message_size},
              {"max_deliveries", options.max_deliveries},
              {"default_lease_ms", options.default_lease.count()},
              {"max_groups", options.max_groups},
              {"max_members", options.max_members},
              {"max_producers", options.max_producers},
              {"mode", octal_mode(options.mode)},
              {"durability", to_string(options.durability)},
              {"publish_timestamp", options.publish_timestamp == PublishTimestamp::coarse ? "coarse" : "precise"},
              {"journal", to_json(journal_view(stats, options))},
              {"tail", stats.tail},
              {"published", stats.published},
              {"aborted", stats.aborted},
              {"min_floor", stats.min_floor},
              {"depth", stats.depth},
              {"dedup", to_json(stats.dedup)},
              {"producers", std::move(producers)},
              {"groups", std::move(groups)}};
  if (const auto s = slowest(stats)) {
    Json j = {{"group", s->group}, {"lag", s->lag}};
    j["pid"] = s->member ? Json(s->member->pid) : Json(nullptr);
    out["slowest"] = std::move(j);
  } else {
    out["slowest"] = nullptr;
  }
  return out;
}

}  // namespace ackring::cli
