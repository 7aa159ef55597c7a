// ackring-bench --sweep: how throughput grows or falls with the number of
// groups, members per group, ring capacity and leases in flight.
//
// Every point is the same run: one producer process (cpu A) publishing 64 B
// messages one per call, at-least-once, and one consumer process (cpu B)
// holding a Consumer for every member of every group and polling them in
// turn with try_receive_batch + ack_batch. One consumer process, not one per
// member: on a 2-cpu machine sixteen busy-polling processes would measure the
// scheduler; in one process the figure is the queue's own work per group and
// per member. Each process counts what it did inside the same time window
// (after a warm-up): the producer its publishes, the consumer its deliveries.
//
// The design says publish is O(1) in the capacity and receive is O(1) in the
// leases a member holds; the capacity and inflight sweeps show whether the
// figures are flat. Groups and members cost work by design: every group
// receives every message, so one consumer cpu does G times the work.
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "bench_procs.hpp"
#include "bench_types.hpp"

namespace ackring_bench {
namespace {

constexpr std::uint32_t kSize = 64;
constexpr std::size_t kBatch = 32;
constexpr std::uint32_t kMaxGroups = 16;
constexpr std::uint64_t kStop = 1ull << 63;  // the producer's last message, one per run

struct Point {
  std::uint32_t groups = 1, members = 1, capacity = 4096, inflight = 0;
};

struct SweepCtrl : ProcSync {
  std::uint64_t published = 0;           // publishes that returned inside the window
  std::uint64_t sent = 0;                // all data messages
  std::uint64_t delivered = 0;           // deliveries (all groups) inside the window
  std::uint64_t got[kMaxGroups]{};       // data messages per group
  std::uint64_t bad = 0;                 // out of order (one-member groups) or mangled
  std::uint64_t fold = 0;                // fold_payload of every message: the payload was read
  double local_publish_ns = 0, local_receive_ns = 0;  // local_cost
};

struct Window {
  std::uint64_t start, end;
  [[nodiscard]] bool holds(std::uint64_t t) const noexcept { return t >= start && t < end; }
};

// Both processes leave the barrier within microseconds of each other, so a
// window measured from each one's own release covers the same interval.
Window window_after_release(const Config& cfg) {
  const std::uint64_t t0 = now_ns() + static_cast<std::uint64_t>(cfg.sweep_warmup_s * 1e9);
  return {t0, t0 + static_cast<std::uint64_t>(cfg.sweep_window_s * 1e9)};
}

void produce(const Config& cfg, SweepCtrl* c, const std::string& path) {
  auto q = ackring::Queue::open(path);
  auto p = q.producer();
  std::vector<std::byte> buf(kSize, std::byte{0x5a});
  barrier(c);
  const Window w = window_after_release(cfg);
  std::uint64_t i = 0, in_window = 0;
  // The clock is read every 64 publishes, so its cost (~25 ns) stays out of
  // the publish figure; a publish counts in the window of its last reading.
  for (std::uint64_t t = now_ns(); t < w.end; ++i) {
    stamp(buf.data(), i);
    if (const auto r = p.publish(ackring::Bytes(buf.data(), kSize)); !r.ok())
      throw std::runtime_error("publish: " + std::string(ackring::to_string(r.status)));
    if ((i & 63) == 63) t = now_ns();
    in_window += w.holds(t);
  }
  c->sent = i;
  c->published = in_window;
  stamp(buf.data(), kStop);
  if (!p.publish(ackring::Bytes(buf.data(), kSize)).ok()) throw std::runtime_error("publish of the stop mark failed");
}

// One member and the deliveries it holds unacked: a ring of the newest
// `keep` leases. Each turn receives up to a batch and acks the oldest beyond
// `keep`, so with keep = 0 it is receive_batch + ack_batch of that batch.
class Member {
 public:
  Member(ackring::Queue& q, std::uint32_t group, std::uint32_t keep)
      : group_(group), keep_(keep), held_(keep + kBatch), cons_(q.consumer(group_name(group), options())) {}

  // Receives what is ready now; returns how many and sets stop on the stop mark.
  template <class F>
  std::size_t turn(F&& on_message, bool& stop) {
    const std::size_t write = (head_ + count_) % held_.size();
    const std::size_t room = std::min({kBatch, held_.size() - write, held_.size() - count_});
    const std::size_t n = cons_.try_receive_batch(std::span(held_.data() + write, room));
    for (std::size_t k = 0; k < n; ++k) {
      const ackring::Bytes b = held_[write + k].payload();
      if (index_of(b.data()) == kStop) stop = true;
      else on_message(b);
    }
    count_ += n;
    while (count_ > keep_) {
      const std::size_t run = std::min(count_ - keep_, held_.size() - head_);
      if (cons_.ack_batch(std::span(held_.data() + head_, run)) != run) throw std::runtime_error("ack_batch lost leases");
      head_ = (head_ + run) % held_.size();
      count_ -= run;
    }
    return n;
  }
  [[nodiscard]] std::uint32_t group() const noexcept { return group_; }
  static std::string group_name(std::uint32_t g) {
    char b[16];
    std::snprintf(b, sizeof b, "g%u", g);
    return b;
  }

 private:
  static ackring::ConsumerOptions options() {
    ackring::ConsumerOptions o;
    o.create_group = false;
    return o;
  }
  std::uint32_t group_;
  std::size_t keep_;
  std::vector<ackring::Delivery> held_;
  std::size_t head_ = 0, count_ = 0;  // oldest held delivery, and how many
  ackring::Consumer cons_;
};

void consume(const Config& cfg, SweepCtrl* c, const std::string& path, const Point& pt) {
  auto q = ackring::Queue::open(path);
  std::vector<Member> members;
  members.reserve(std::size_t{pt.groups} * pt.members);
  for (std::uint32_t g = 0; g < pt.groups; ++g)
    for (std::uint32_t m = 0; m < pt.members; ++m) members.emplace_back(q, g, pt.inflight);
  std::vector<std::uint64_t> next(pt.groups, 0);
  std::vector<bool> stopped(pt.groups, false);
  std::uint32_t groups_left = pt.groups;
  barrier(c);
  const Window w = window_after_release(cfg);
  while (groups_left != 0) {
    // One clock read per turn over every member, not per member: the
    // sweep over groups would otherwise time its own clock reads.
    std::size_t turn = 0;
    for (auto& m : members) {
      const std::uint32_t g = m.group();
      bool stop = false;
      const std::size_t n = m.turn(
          [&](ackring::Bytes b) {
            const std::uint64_t i = index_of(b.data());
            // A one-member group sees every message in order; competing
            // members see an increasing subsequence each.
            c->bad += (pt.members == 1 ? i != next[g] : i < next[g]) | (b.size() != kSize);
            next[g] = i + 1;
            c->fold ^= fold_payload(b.data(), b.size());
            ++c->got[g];
          },
          stop);
      turn += n;
      if (stop && !stopped[g]) stopped[g] = true, --groups_left;
    }
    if (turn != 0 && w.holds(now_ns())) c->delivered += turn;
  }
}

// The same point in one thread on one cpu: blocks of `try_publish` timed
// alone, then the members receive and ack them (holding pt.inflight leases
// each), timed alone. No cache line crosses cores and a scheduler gap spoils
// only the block it lands in, so these figures show the cost of each call
// against the swept parameter, which the two-process rates mix with both.
void local_cost(const Config& cfg, SweepCtrl* c, const std::string& path, const Point& pt) {
  auto q = ackring::Queue::open(path);
  auto p = q.producer();
  std::vector<Member> members;
  members.reserve(std::size_t{pt.groups} * pt.members);
  for (std::uint32_t g = 0; g < pt.groups; ++g)
    for (std::uint32_t m = 0; m < pt.members; ++m) members.emplace_back(q, g, pt.inflight);
  const std::uint64_t block = std::min<std::uint64_t>(pt.capacity / 2, 8192);
  std::vector<std::byte> buf(kSize, std::byte{0x5a});
  // Per block, and the median block reported: a preemption lands in a few
  // blocks, not in the figure.
  std::vector<double> publish, receive;
  std::uint64_t spent = 0, sink = 0;
  const std::uint64_t budget = static_cast<std::uint64_t>(cfg.sweep_window_s * 1e9 / 4);
  barrier(c);
  // The first blocks fill the members' held leases: warm-up, not measured.
  for (std::uint64_t i = 0, done = 0; spent < budget || publish.size() < 5; done += block) {
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t k = 0; k < block; ++k, ++i) {
      stamp(buf.data(), i);
      if (const auto r = p.try_publish(ackring::Bytes(buf.data(), kSize)); !r.ok())
        throw std::runtime_error("try_publish: " + std::string(ackring::to_string(r.status)));
    }
    const std::uint64_t t1 = now_ns();
    bool stop = false;
    for (std::uint64_t got = 0; got < block * pt.groups;)
      for (auto& m : members) got += m.turn([&](ackring::Bytes b) { sink ^= fold_payload(b.data(), b.size()); }, stop);
    const std::uint64_t t2 = now_ns();
    spent += t2 - t0;
    if (done < pt.inflight + block) continue;
    publish.push_back(static_cast<double>(t1 - t0) / static_cast<double>(block));
    receive.push_back(static_cast<double>(t2 - t1) / static_cast<double>(block * pt.groups));
  }
  c->fold = sink;
  c->local_publish_ns = median(publish);
  c->local_receive_ns = median(receive);
}

struct PointResult {
  double publish_per_s = 0;   // producer: publishes per second
  double msgs_per_s = 0;      // consumer: messages per second delivered to every group
  double deliveries_per_s = 0;
  double local_publish_ns = 0, local_receive_ns = 0;  // one thread: per publish, per delivery (receive + ack)
};

PointResult run_point(const Config& cfg, const Point& pt, const std::string& tag) {
  const std::string path = "/dev/shm/" + tag + ".ackring";
  Cleanup::add(Cleanup::Kind::file, path);
  Cleanup::add(Cleanup::Kind::file, ackring::dead_letter_queue_of(path));
  ackring::QueueOptions o;
  o.capacity = pt.capacity;
  o.max_message_size = kSize;
  o.max_groups = std::max<std::uint32_t>(8, pt.groups);
  o.dedup = false;  // unkeyed publishes; the table would only cost memory
  {
    auto q = ackring::Queue::create(path, o);
    for (std::uint32_t g = 0; g < pt.groups; ++g) q.create_group(Member::group_name(g));
  }
  Shared<SweepCtrl> c;
  PointResult r;
  try {
    run_procs(cfg, c.get(),
              {{cfg.cpu_a, [&] { produce(cfg, c.get(), path); }}, {cfg.cpu_b, [&] { consume(cfg, c.get(), path, pt); }}});
    for (std::uint32_t g = 0; g < pt.groups; ++g)
      if (c->got[g] != c->sent)
        throw std::runtime_error("group " + std::to_string(g) + " got " + std::to_string(c->got[g]) + " of " +
                                 std::to_string(c->sent) + " messages");
    if (c->bad != 0) throw std::runtime_error(std::to_string(c->bad) + " messages out of order or mangled");
    // On the same queue, whose groups the run above left settled.
    Shared<SweepCtrl> local;
    run_procs(cfg, local.get(), {{cfg.cpu_a, [&] { local_cost(cfg, local.get(), path, pt); }}});
    r.local_publish_ns = local->local_publish_ns;
    r.local_receive_ns = local->local_receive_ns;
  } catch (...) {
    Cleanup::remove(Cleanup::Kind::file, ackring::dead_letter_queue_of(path));
    Cleanup::remove(Cleanup::Kind::file, path);
    throw;
  }
  Cleanup::remove(Cleanup::Kind::file, ackring::dead_letter_queue_of(path));
  Cleanup::remove(Cleanup::Kind::file, path);
  r.publish_per_s = static_cast<double>(c->published) / cfg.sweep_window_s;
  r.deliveries_per_s = static_cast<double>(c->delivered) / cfg.sweep_window_s;
  r.msgs_per_s = r.deliveries_per_s / pt.groups;
  return r;
}

struct Sweep {
  std::string name;     // groups | members | capacity | inflight
  std::string what;     // the table's first column
  std::string fixed;    // what stays put
  std::vector<std::uint32_t> values;
  Point (*point)(std::uint32_t);
};

std::vector<Sweep> all_sweeps(bool quick) {
  std::vector<std::uint32_t> capacities{1u << 10, 1u << 12, 1u << 14, 1u << 16, 1u << 18, 1u << 20};
  if (quick) capacities.resize(3);  // the smoke test checks the code path, not 100 MB rings
  return {
      {"groups", "groups", "1 member each, capacity 4096, no leases held", {1, 2, 4, 8, 16},
       [](std::uint32_t v) { return Point{v, 1, 4096, 0}; }},
      {"members", "members", "1 group, capacity 4096, no leases held", {1, 2, 4, 8},
       [](std::uint32_t v) { return Point{1, v, 4096, 0}; }},
      {"capacity", "slots", "1 group, 1 member, no leases held", capacities,
       [](std::uint32_t v) { return Point{1, 1, v, 0}; }},
      // 2^16 slots: the most leases held (24576) leave 5/8 of the ring to the producer. Each
      // point's one-thread run first takes back what the exiting consumer process held, so
      // it also shows the takeover's cost growing with the leases held, if it does.
      {"inflight", "leases held", "1 group, 1 member, capacity 65536", {0, 1024, 4096, 8192, 16384, 24576},
       [](std::uint32_t v) { return Point{1, 1, 1u << 16, v}; }},
  };
}

std::string rate(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f M", x / 1e6);
  return b;
}

// The table and, beside it, a bar per point scaled to the sweep's fastest
// msgs/s, so a flat sweep reads as bars of one length.
void print_sweep(const Sweep& s, const std::vector<std::vector<PointResult>>& runs, const Config& cfg) {
  constexpr int kBar = 40;
  std::vector<PointResult> med(runs.size());
  double top = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::vector<double> pub, msg, del, lp, lr;
    for (const auto& r : runs[i]) {
      pub.push_back(r.publish_per_s), msg.push_back(r.msgs_per_s), del.push_back(r.deliveries_per_s);
      lp.push_back(r.local_publish_ns), lr.push_back(r.local_receive_ns);
    }
    med[i] = {median(pub), median(msg), median(del), median(lp), median(lr)};
    top = std::max(top, med[i].msgs_per_s);
  }
  std::printf("\n== sweep %s: 1 producer -> consumers, 64 B, at-least-once (%s); median of %d, %.0f ms windows\n",
              s.name.c_str(), s.fixed.c_str(), cfg.repeat, cfg.sweep_window_s * 1e3);
  std::printf("%12s %11s %11s %15s %13s %10s %8s %8s  %s\n", s.what.c_str(), "publish/s", "msgs/s", "(min - max)",
              "deliveries/s", "ns/deliv", "1t pub", "1t recv", "msgs/s (bar: fastest point = full width)");
  double lo = 1e300, hi = 0;
  for (std::size_t i = 0; i < med.size(); ++i) {
    const auto& m = med[i];
    const int bar = top > 0 ? static_cast<int>(kBar * m.msgs_per_s / top + 0.5) : 0;
    const auto [mn, mx] = std::minmax_element(runs[i].begin(), runs[i].end(), [](const auto& a, const auto& b) {
      return a.msgs_per_s < b.msgs_per_s;
    });
    char spread[40];
    std::snprintf(spread, sizeof spread, "(%.2f - %.2f)", mn->msgs_per_s / 1e6, mx->msgs_per_s / 1e6);
    std::printf("%12u %11s %11s %15s %13s %10.1f %8.1f %8.1f  %s\n", s.values[i], rate(m.publish_per_s).c_str(),
                rate(m.msgs_per_s).c_str(), spread, rate(m.deliveries_per_s).c_str(),
                m.deliveries_per_s > 0 ? 1e9 / m.deliveries_per_s : 0.0, m.local_publish_ns, m.local_receive_ns,
                std::string(static_cast<std::size_t>(bar), '#').c_str());
    lo = std::min(lo, m.msgs_per_s), hi = std::max(hi, m.msgs_per_s);
  }
  if (lo > 0) std::printf("   fastest / slowest msgs/s: %.2fx\n", hi / lo);
  std::printf("   1t pub / 1t recv: ns per publish and per delivery (receive + ack) in one thread on cpu A,\n"
              "   the same point with no second core (median)\n");
  std::fflush(stdout);
}

}  // namespace

json run_sweeps(const Config& cfg, const std::string& tag) {
  json out = json::array();
  int n = 0;
  for (const auto& s : all_sweeps(cfg.quick)) {
    if (std::find(cfg.sweep.begin(), cfg.sweep.end(), s.name) == cfg.sweep.end() &&
        std::find(cfg.sweep.begin(), cfg.sweep.end(), "all") == cfg.sweep.end())
      continue;
    // Repeats interleaved over the points, so a noisy second hits them alike.
    std::vector<std::vector<PointResult>> runs(s.values.size());
    for (int rep = 0; rep < cfg.repeat; ++rep)
      for (std::size_t i = 0; i < s.values.size(); ++i)
        runs[i].push_back(run_point(cfg, s.point(s.values[i]), tag + ".sweep" + std::to_string(n++)));
    print_sweep(s, runs, cfg);
    json points = json::array();
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      json rs = json::array();
      for (const auto& r : runs[i])
        rs.push_back({{"publish_per_s", r.publish_per_s},
                      {"msgs_per_s", r.msgs_per_s},
                      {"deliveries_per_s", r.deliveries_per_s},
                      {"one_thread_publish_ns", r.local_publish_ns},
                      {"one_thread_receive_ack_ns", r.local_receive_ns}});
      points.push_back({{"value", s.values[i]}, {"runs", rs}});
    }
    out.push_back({{"sweep", s.name}, {"fixed", s.fixed}, {"points", points}});
  }
  return out;
}

}  // namespace ackring_bench
