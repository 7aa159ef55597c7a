// metrics: every counter of one or more queues (or of every queue in the
// directory) in the Prometheus text exposition format (version 0.0.4),
// printed once, or served over HTTP with --listen (cpp-httplib): /metrics
// re-reads the queues on every scrape.
#include <CLI/CLI.hpp>
#include <httplib.h>
#include <pthread.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge_view.hpp"
#include "commands.hpp"
#include "format.hpp"
#include "stats_view.hpp"

namespace ackring::cli {

namespace {

// Samples grouped by metric name, in first-seen order, so each family gets
// one HELP and one TYPE line as the text exposition format requires.
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void add(const std::string& name, const char* type, const char* help, const Labels& labels,
           const std::string& value) {
    add_sample(name, type, help, name, labels, value);
  }
  // A sample named differently from its family: a histogram's _bucket, _sum and _count.
  void add_sample(const std::string& family, const char* type, const char* help, const std::string& name,
                  const Labels& labels, const std::string& value) {
    auto [it, fresh] = index_.try_emplace(family, families_.size());
    if (fresh) families_.push_back({family, type, help, {}});
    std::string line = name;
    if (!labels.empty()) {
      line += '{';
      for (std::size_t i = 0; i < labels.size(); ++i)
        line += (i ? "," : "") + labels[i].first + "=\"" + prometheus_label(labels[i].second) + '"';
      line += '}';
    }
    families_[it->second].lines.push_back(line + ' ' + value);
  }

  [[nodiscard]] std::string render() const {
    std::string out;
    for (const auto& f : families_) {
      out += "# HELP " + f.name + ' ' + f.help + "\n# TYPE " + f.name + ' ' + f.type + '\n';
      for (const auto& l : f.lines) out += l + '\n';
    }
    return out;
  }

 private:
  struct Family {
    std::string name, type, help;
    std::vector<std::string> lines;
  };
  std::vector<Family> families_;
  std::map<std::string, std::size_t> index_;
};

std::string seconds(std::uint64_t ms) {
  return std::to_string(ms / 1000) + '.' + std::string(ms % 1000 < 100 ? (ms % 1000 < 10 ? "00" : "0") : "") +
         std::to_string(ms % 1000);
}

// Only for durable queues: a queue without a journal has no journal series
// (an absent series, not a misleading 0 lag).
void add_journal_metrics(Exposition& m, const std::string& queue, const JournalView& j) {
  const Exposition::Labels q{{"queue", queue}};
  auto d = [](std::uint64_t v) { return std::to_string(v); };
  for (const char* mode : {"none", "async", "sync"})
    m.add("ackring_durability", "gauge", "1 for the queue's durability mode.", {{"queue", queue}, {"mode", mode}},
          to_string(j.durability) == mode ? "1" : "0");
  if (!j.durable) return;
  m.add("ackring_journal_durable_seq", "gauge", "Every sequence number below this is in the journal on disk.", q,
        d(j.durable_seq));
  m.add("ackring_journal_lag", "gauge", "Messages claimed but not yet on disk (tail - durable seq).", q, d(j.lag));
  m.add("ackring_journal_writer_pid", "gauge", "Process writing the journal now; 0 when none does.", q,
        d(j.writer_pid));
  m.add("ackring_journal_flushes_total", "counter", "Journal write + fdatasync rounds.", q, d(j.flushes));
}

// The group's delivery-to-ack times as a Prometheus histogram (cumulative
// buckets, upper bounds in seconds), so histogram_quantile(0.99, ...) works.
void add_ack_latency(Exposition& m, const std::string& queue, const GroupStats& g) {
  // One spelling of the family; its sample names are joined at compile time
  // (std::string's operator+ here made GCC 12 report a false overflow).
#define ACKRING_ACK_LATENCY_FAMILY "ackring_group_ack_latency_seconds"
  static const char* const kFamily = ACKRING_ACK_LATENCY_FAMILY;
  static const char* const kBucket = ACKRING_ACK_LATENCY_FAMILY "_bucket";
  static const char* const kSum = ACKRING_ACK_LATENCY_FAMILY "_sum";
  static const char* const kCount = ACKRING_ACK_LATENCY_FAMILY "_count";
#undef ACKRING_ACK_LATENCY_FAMILY
  static const char* const kHelp = "Time from delivery to ack of acked messages (coarse clock, 1-4 ms ticks).";
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b + 1 < AckLatency::kBuckets; ++b) {
    cumulative += g.ack_latency.buckets[b];
    m.add_sample(kFamily, "histogram", kHelp, kBucket,
                 {{"queue", queue}, {"group", g.name}, {"le", seconds(AckLatency::bucket_floor_ms(b + 1))}},
                 std::to_string(cumulative));
  }
  m.add_sample(kFamily, "histogram", kHelp, kBucket,
               {{"queue", queue}, {"group", g.name}, {"le", "+Inf"}}, std::to_string(g.ack_latency.count));
  m.add_sample(kFamily, "histogram", kHelp, kSum, {{"queue", queue}, {"group", g.name}},
               seconds(g.ack_latency.sum_ms));
  m.add_sample(kFamily, "histogram", kHelp, kCount, {{"queue", queue}, {"group", g.name}},
               std::to_string(g.ack_latency.count));
}

void add_queue_metrics(Exposition& m, const std::string& queue, const QueueStats& s) {
  const Exposition::Labels q{{"queue", queue}};
  auto d = [](std::uint64_t v) { return std::to_string(v); };
  m.add("ackring_capacity_slots", "gauge", "Slots in the queue's ring.", q, d(s.capacity));
  m.add("ackring_max_message_size_bytes", "gauge", "Largest payload the queue accepts.", q, d(s.max_message_size));
  m.add("ackring_published_total", "counter", "Publishes that returned ok.", q, d(s.published));
  m.add("ackring_aborted_total", "counter", "Claims aborted because their producer died or stalled.", q, d(s.aborted));
  m.add("ackring_tail", "gauge", "Next sequence number to be claimed.", q, d(s.tail));
  m.add("ackring_depth", "gauge", "Messages retained for the slowest group (tail - min floor).", q, d(s.depth));
  if (s.dedup.enabled) {
    char load[32];
    std::snprintf(load, sizeof load, "%.6f", s.dedup.load_factor);
    m.add("ackring_dedup_entries", "gauge", "Entries of the dedup table.", q, d(s.dedup.entries));
    m.add("ackring_dedup_live_keys", "gauge", "Keys inside the dedup window.", q, d(s.dedup.live));
    m.add("ackring_dedup_load_factor", "gauge", "Live keys / entries.", q, load);
    m.add("ackring_dedup_window_seconds", "gauge", "How long a key is remembered.", q, seconds(s.dedup.window_ms));
    m.add("ackring_dedup_hits_total", "counter", "Keyed publishes answered duplicate.", q, d(s.dedup.hits));
    m.add("ackring_dedup_keyed_published_total", "counter",
          "Keyed publishes, duplicates included (hits / this = the hit ratio).", q, d(s.dedup.keyed_published));
    m.add("ackring_dedup_bloom_negatives_total", "counter", "Process-once lookups the bloom filter answered alone.", q,
          d(s.dedup.bloom_negatives));
    m.add("ackring_dedup_expired_reused_total", "counter", "Entries of expired keys reused.", q,
          d(s.dedup.expired_reused));
    m.add("ackring_dedup_evicted_total", "counter", "Live keys evicted (evict-oldest policy).", q, d(s.dedup.evicted));
    m.add("ackring_dedup_full_total", "counter", "Keyed publishes refused because the key's window was full.", q,
          d(s.dedup.full));
  }
  const Liveness p = liveness(s.producers);
  m.add("ackring_producers", "gauge", "Registered producers by liveness.", {{"queue", queue}, {"state", "alive"}},
        d(p.alive));
  m.add("ackring_producers", "gauge", "Registered producers by liveness.", {{"queue", queue}, {"state", "dead"}},
        d(p.dead));
  for (const auto& pr : s.producers)
    m.add("ackring_producer_published_total", "counter", "Messages published by one registered producer.",
          {{"queue", queue}, {"producer", std::to_string(pr.index)}, {"pid", std::to_string(pr.pid)}}, d(pr.published));
  for (const auto& g : s.groups) {
    const Exposition::Labels gl{{"queue", queue}, {"group", g.name}};
    m.add("ackring_group_floor", "gauge", "Every sequence number below this is settled in the group.", gl, d(g.floor));
    m.add("ackring_group_next", "gauge", "Next sequence number the group dispatches.", gl, d(g.next));
    m.add("ackring_group_lag", "gauge", "Messages the group has not settled yet (tail - floor).", gl, d(g.lag));
    m.add("ackring_group_in_flight", "gauge", "Messages leased and not yet settled.", gl, d(g.in_flight));
    m.add("ackring_group_delivered_total", "counter", "Deliveries, redeliveries included.", gl, d(g.delivered));
    m.add("ackring_group_acked_total", "counter", "Messages acked.", gl, d(g.acked));
    m.add("ackring_group_redelivered_total", "counter", "Deliveries after the first.", gl, d(g.redelivered));
    m.add("ackring_group_nacked_total", "counter", "Messages given back with nack.", gl, d(g.nacked));
    m.add("ackring_group_dead_lettered_total", "counter", "Messages moved to the dead-letter queue.", gl,
          d(g.dead_lettered));
    m.add("ackring_group_dropped_total", "counter", "Messages missed under the drop overflow policy.", gl,
          d(g.dropped));
    m.add("ackring_group_aborted_skipped_total", "counter", "Aborted slots passed over.", gl, d(g.aborted_skipped));
    m.add("ackring_group_corrupt_skipped_total", "counter", "Slots skipped because their checksum or length failed.",
          gl, d(g.corrupt_skipped));
    m.add("ackring_group_lease_expiries_total", "counter",
          "Leases taken over by a member after they ran out (their holder was slow, stuck or gone).", gl,
          d(g.lease_expiries));
    m.add("ackring_group_redelivery_waiting", "gauge",
          "Messages given back and not visible yet: waiting out the redelivery back-off or a nack delay.", gl,
          d(g.waiting_redelivery));
    for (const auto& [cause, n] : {std::pair{"expiry", g.redelivered_by.expiry}, std::pair{"death", g.redelivered_by.death},
                                   std::pair{"nack", g.redelivered_by.nack}, std::pair{"released", g.redelivered_by.released}})
      m.add("ackring_group_redelivered_by_cause_total", "counter",
            "Redeliveries by why the message came back: its lease ran out (expiry), its holder died (death), "
            "was nacked (nack) or closed its consumer (released).",
            {{"queue", queue}, {"group", g.name}, {"cause", cause}}, d(n));
    m.add("ackring_group_process_once_skips_total", "counter",
          "Deliveries that process_once (or is_processed) found processed already.", gl, d(g.process_once_skips));
    add_ack_latency(m, queue, g);
    m.add("ackring_group_min_member_lease_seconds", "gauge",
          "The shortest lease of a live member; compare with the p99 of the ack latency histogram.", gl,
          seconds(g.min_member_lease_ms));
    m.add("ackring_group_oldest_unacked_age_seconds", "gauge",
          "Age (now - publish time) of the oldest message the group has not settled; 0 when none is pending.", gl,
          seconds(g.oldest_unacked_age_ms));
    const Liveness l = liveness(g.members);
    m.add("ackring_group_members", "gauge", "Group members by liveness.",
          {{"queue", queue}, {"group", g.name}, {"state", "alive"}}, d(l.alive));
    m.add("ackring_group_members", "gauge", "Group members by liveness.",
          {{"queue", queue}, {"group", g.name}, {"state", "dead"}}, d(l.dead));
    for (const auto& mem : g.members) {
      const Exposition::Labels ml{
          {"queue", queue}, {"group", g.name}, {"member", std::to_string(mem.index)}, {"pid", std::to_string(mem.pid)}};
      m.add("ackring_member_up", "gauge", "1 if the member's process is alive.", ml, mem.alive ? "1" : "0");
      m.add("ackring_member_delivered_total", "counter", "Deliveries to the member.", ml, d(mem.delivered));
      m.add("ackring_member_acked_total", "counter", "Acks by the member.", ml, d(mem.acked));
      m.add("ackring_member_redelivered_total", "counter", "Deliveries to the member after the first.", ml,
            d(mem.redelivered));
      m.add("ackring_member_nacked_total", "counter", "Messages the member gave back with nack.", ml, d(mem.nacked));
      m.add("ackring_member_lease_expiries_total", "counter", "Leases the member took over after they ran out.", ml,
            d(mem.lease_expiries));
      m.add("ackring_member_in_flight", "gauge", "Leases the member holds.", ml, d(mem.in_flight));
      m.add("ackring_member_idle_seconds", "gauge", "Time since the member's last receive or ack.", ml,
            seconds(mem.idle_ms));
    }
  }
}

// The queue's NATS bridges (their status files), one label set per bridge.
void add_bridge_metrics(Exposition& m, const std::string& queue, const std::string& queue_path) {
  auto d = [](std::uint64_t v) { return std::to_string(v); };
  for (const auto& b : bridges_of(queue_path)) {
    const Exposition::Labels l{{"queue", queue}, {"bridge", b.name}, {"direction", b.direction},
                               {"stream", b.stream}, {"pid", std::to_string(b.pid)}};
    m.add("ackring_bridge_up", "gauge", "1 if the bridge's process is alive.", l, b.alive ? "1" : "0");
    m.add("ackring_bridge_connected", "gauge", "1 if the bridge was connected to NATS at its last update.", l,
          b.connected ? "1" : "0");
    m.add("ackring_bridge_forwarded_total", "counter",
          "Messages forwarded (out: JetStream publishes; in: new messages in the queue).", l, d(b.forwarded));
    m.add("ackring_bridge_acked_total", "counter", "Messages acked at their source after the destination had them.",
          l, d(b.acked));
    m.add("ackring_bridge_in_flight", "gauge", "Messages taken from the source and not yet acked there.", l,
          d(b.in_flight));
    m.add("ackring_bridge_retries_total", "counter", "Re-sends (out) or naks for back-pressure (in).", l,
          d(b.retries));
    m.add("ackring_bridge_dedup_hits_total", "counter", "Re-sends the destination dropped as duplicates.", l,
          d(b.dedup_hits));
    m.add("ackring_bridge_lag", "gauge", "Messages waiting at the source (out: group lag; in: consumer pending).", l,
          d(b.lag));
    m.add("ackring_bridge_reconnects_total", "counter", "Reconnections to the NATS server.", l, d(b.reconnects));
  }
}

// Dead letters waiting in the queue's dead-letter queue (NAME.dlq, group
// "dlq"): 0 when it does not exist (nothing was ever dead-lettered).
void add_dlq_metrics(Exposition& m, const std::string& queue, const std::string& name_or_path) {
  std::uint64_t waiting = 0;
  try {
    const Queue dlq = Queue::open(dead_letter_queue_of(name_or_path));
    for (const auto& g : dlq.stats().groups)
      if (g.name == "dlq") waiting = g.lag;
  } catch (const Error&) {
    // Not there (the usual case), or unreadable: the DLQ's own ackring_up says which when it is scraped too.
  }
  m.add("ackring_dlq_depth", "gauge", "Dead letters waiting in the queue's dead-letter queue (NAME.dlq).",
        {{"queue", queue}}, std::to_string(waiting));
}

// A queue to export: the label value and what to open.
struct Target {
  std::string label;
  std::string open;
};

// Every queue file of the directory (ackring.NAME), sorted.
std::vector<Target> directory_targets() {
  namespace fs = std::filesystem;
  constexpr std::string_view kPrefix = "ackring.";
  const fs::path dir = queue_directory();
  std::error_code ec;
  std::vector<Target> out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string fname = it->path().filename().string();
    std::error_code type_ec;
    if (fname.starts_with(kPrefix) && fname.size() > kPrefix.size() && it->is_regular_file(type_ec))
      out.push_back({fname.substr(kPrefix.size()), it->path().string()});
  }
  if (ec)
    throw Failure(Exit::not_found, "cannot list queue directory '" + dir.string() + "': " + ec.message() +
                                       "; point --dir or $ACKRING_SHM_DIR at an existing directory");
  std::sort(out.begin(), out.end(), [](const Target& a, const Target& b) { return a.label < b.label; });
  return out;
}

std::vector<Target> targets_of(const std::vector<std::string>& names) {
  if (names.empty()) return directory_targets();
  std::vector<Target> out;
  for (const auto& n : names) out.push_back({n, n});
  return out;
}

struct Scrape {
  std::string text;
  int code = 0;                                             // exit code of the first failure
  std::vector<std::pair<std::string, std::string>> errors;  // queue, one-line message
};

Scrape scrape(const std::vector<std::string>& names) {
  Exposition m;
  Scrape out;
  m.add("ackring_build_info", "gauge", "Always 1; the version of the ackring tool that serves the metrics.",
        {{"version", ACKRING_CLI_VERSION}}, "1");
  for (const auto& t : targets_of(names)) {
    try {
      // Everything that may throw is read before the first sample is added,
      // so a queue that fails leaves no partial families behind.
      const Queue q = open_queue(t.open);
      const QueueStats s = q.stats();
      const JournalView journal = journal_view(s, q.options());
      m.add("ackring_up", "gauge", "1 if the queue could be opened and read.", {{"queue", t.label}}, "1");
      add_queue_metrics(m, t.label, s);
      add_journal_metrics(m, t.label, journal);
      add_dlq_metrics(m, t.label, t.open);
      add_bridge_metrics(m, t.label, s.path);
    } catch (const Failure& f) {
      // The others are still exported; the queue that failed reads ackring_up 0.
      m.add("ackring_up", "gauge", "1 if the queue could be opened and read.", {{"queue", t.label}}, "0");
      out.errors.emplace_back(t.label, f.what());
      if (out.code == 0) out.code = static_cast<int>(f.code());
    } catch (const Error& e) {  // opened, then failed to read (removed meanwhile, say)
      m.add("ackring_up", "gauge", "1 if the queue could be opened and read.", {{"queue", t.label}}, "0");
      out.errors.emplace_back(t.label, e.what());
      if (out.code == 0) out.code = static_cast<int>(exit_code_of(e.code()));
    }
  }
  out.text = m.render();
  return out;
}

// "9464", ":9464", "127.0.0.1:9464", "[::1]:9464". Without a host: loopback.
struct ListenAddress {
  std::string host = "127.0.0.1";
  int port = 0;
};

ListenAddress parse_listen(const std::string& text) {
  ListenAddress a;
  std::string port = text;
  if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    std::string host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (!host.empty()) a.host = host;
  }
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoul(port) > 65535)
    throw Failure(Exit::usage, "--listen '" + text + "': expected [ADDRESS:]PORT, e.g. 9464 or 127.0.0.1:9464 "
                               "(port 0 picks a free one)");
  a.port = static_cast<int>(std::stoul(port));
  return a;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string url_of(const ListenAddress& a, int port) {
  const bool v6 = a.host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(port);
}

constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

// Serves until SIGTERM or SIGINT. Both are blocked in every thread (the
// server's workers inherit the mask) and taken by one thread with sigwait,
// which stops the server: listen returns, in-flight scrapes finish.
int serve(const std::vector<std::string>& names, const ListenAddress& at) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  httplib::Server server;
  server.new_task_queue = [] { return new httplib::ThreadPool(4); };
  server.set_keep_alive_timeout(1);  // a stop waits for idle keep-alive connections at most this long (1 s)
  server.set_payload_max_length(1 << 16);
  // SO_REUSEADDR (restart right after a stop) but not the library's default
  // SO_REUSEPORT, with which a second exporter on the same port would start
  // and share the scrapes instead of failing.
  server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  std::mutex reported_mutex;
  std::map<std::string, std::string> reported;  // queue -> last error reported on stderr
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    Scrape s;
    try {
      s = scrape(names);
    } catch (const Failure& f) {  // the directory cannot be listed
      res.status = 500;
      res.set_content(std::string(f.what()) + "\n", "text/plain; charset=utf-8");
      std::lock_guard lock(reported_mutex);
      if (reported[""] != f.what()) std::cerr << "ackring: " << f.what() << std::endl;
      reported[""] = f.what();
      return;
    }
    res.set_content(s.text, kMetricsType);
    // A queue that stays unreadable is reported once, not on every scrape.
    std::lock_guard lock(reported_mutex);
    std::map<std::string, std::string> now(s.errors.begin(), s.errors.end());
    for (const auto& [queue, message] : now)
      if (reported[queue] != message) std::cerr << "ackring: " << message << std::endl;
    std::erase_if(reported, [&](const auto& r) { return !r.first.empty() && !now.count(r.first); });
    for (auto& [queue, message] : now) reported[queue] = message;
  });
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    std::string what;
    if (names.empty()) {
      what = "every queue in " + html_escape(queue_directory().string());
    } else {
      for (const auto& n : names) what += (what.empty() ? "" : ", ") + ("<code>" + html_escape(n) + "</code>");
    }
    res.set_content(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ackring metrics</title></head>\n"
        "<body><h1>ackring metrics</h1>\n<p>Queues: " + what + ".</p>\n<ul>\n"
        "<li><a href=\"/metrics\">/metrics</a>: Prometheus text format, read afresh on every request</li>\n"
        "</ul>\n<p>ackring " ACKRING_CLI_VERSION "</p></body></html>\n",
        "text/html; charset=utf-8");
  });

  errno = 0;
  const int port =
      at.port == 0 ? server.bind_to_any_port(at.host) : (server.bind_to_port(at.host, at.port) ? at.port : -1);
  if (port < 0) {
    const int err = errno;
    throw Failure(Exit::usage, "cannot listen on " + at.host + ":" + std::to_string(at.port) +
                                   (err != 0 ? std::string(": ") + std::strerror(err) : std::string()) +
                                   "; pick another --listen address or port");
  }
  std::cout << "serving metrics of "
            << (names.empty() ? "every queue in " + queue_directory().string()
                              : std::to_string(names.size()) + (names.size() == 1 ? " queue" : " queues"))
            << " on " << url_of(at, port) << "/metrics" << std::endl;

  std::atomic<bool> done{false};
  std::atomic<int> stopped_by{0};
  std::thread signals([&] {
    const timespec tick{0, 100'000'000};
    while (!done.load()) {
      const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig > 0) {
        stopped_by = sig;
        server.stop();
        return;
      }
    }
  });
  const bool clean = server.listen_after_bind();
  done = true;
  signals.join();
  if (!clean && stopped_by.load() == 0) throw Failure(Exit::usage, "the metrics server stopped unexpectedly");
  std::cerr << "ackring: metrics server stopped (" << (stopped_by.load() == SIGINT ? "SIGINT" : "SIGTERM") << ")\n";
  return 0;
}

struct MetricsOptions {
  std::vector<std::string> names;
  std::string listen;
  bool serve = false;  // --listen given
};

int run_metrics(const MetricsOptions& o) {
  if (o.serve) return serve(o.names, parse_listen(o.listen));
  const Scrape s = scrape(o.names);
  for (const auto& e : s.errors) std::cerr << "ackring: " << e.second << '\n';
  std::cout << s.text;
  return s.code;
}

}  // namespace

void add_metrics_command(CLI::App& app, Globals& globals, Action& action) {
  auto o = std::make_shared<MetricsOptions>();
  auto* cmd = app.add_subcommand(
      "metrics", "Print all counters in the Prometheus text format, or serve them over HTTP (--listen)");
  cmd->add_option("NAME", o->names, "Queue names or paths (default: every queue in the directory)");
  auto* listen = cmd->add_option("--listen", o->listen,
                  "Serve /metrics over HTTP on [ADDRESS:]PORT until SIGTERM/SIGINT; the address defaults to "
                  "127.0.0.1, port 0 picks a free one")
      ->type_name("[ADDR:]PORT");
  cmd->footer(
      "Labels: queue, group, member (index) and pid. A queue that cannot be read is exported as\n"
      "ackring_up{queue=...} 0, reported on stderr, and sets the exit code (with --listen: the\n"
      "server keeps serving and reports each new error once). Listen on 0.0.0.0:PORT only\n"
      "behind a firewall: the endpoint has no authentication.");
  add_common_options(*cmd, globals);
  cmd->callback([o, listen, &action] {
    o->serve = listen->count() > 0;
    set_action(action, [o] { return run_metrics(*o); });
  });
}

}  // namespace ackring::cli
