// The scenarios of ackring-bench and the forked processes that run them.
//
//   throughput  P producers -> C consumers (1->1, 2->1, 1->2 competing,
//               1->2 groups). Producers send warm-up + measured messages;
//               consumers check order and completeness and time the
//               measured ones. Rate = distinct messages / (last arrival at
//               any consumer - first measured arrival at any consumer).
//   rtt         ping-pong, one message in flight (pinger measures).
//   latency     one-way: the producer sends at a steady --rate and stamps
//               CLOCK_MONOTONIC into each payload; the busy-polling consumer
//               records receive - send into a LatencyHistogram.
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "bench_procs.hpp"
#include "bench_types.hpp"

namespace ackring_bench {
namespace {

// A message's first 8 bytes: [stop:1][producer:7][counter:56]. Producer and
// counter let every consumer check per-producer order and completeness; the
// stop bit marks the end-of-run messages the last producer sends (one per
// consumer that shares a channel), which are never counted as data.
constexpr std::uint64_t kStopBit = 1ull << 63;
constexpr unsigned kProducerShift = 56;
constexpr std::uint64_t kCounterMask = (1ull << kProducerShift) - 1;

// The control block of a throughput, rtt or latency run.
struct Ctrl : ProcSync {
  std::atomic<int> producers_done{0};
  std::atomic<int> stops_seen{0};         // stop marks taken by all consumers together
  std::uint64_t sent[2]{};                // data messages per producer
  struct ConsumerReport {
    std::uint64_t got[2]{};               // data messages per producer
    std::uint64_t measured = 0;           // of them, after the warm-up
    std::uint64_t t_first = 0, t_last = 0;
    std::uint64_t bad = 0;                // wrong size, out of order, or duplicated
    std::uint64_t fold = 0;               // fold_payload of every message: the payload was read
  } cons[2];
  std::uint64_t measured = 0;             // rtt, latency
  std::uint64_t late_sends = 0;
  Percentiles rtt;
  LatencyHistogram hist;
};
using SharedCtrl = Shared<Ctrl>;

// ----------------------------------------------------------- throughput --
template <class T>
std::unique_ptr<T> make_transport(const Variant& v, const Params& p, int channels, const Config& cfg) {
  if constexpr (std::is_same_v<T, AckringModesTransport>) {
    AckringModeParams m;
    m.delivery = v.delivery == "at-most-once"       ? Delivery::at_most_once
                 : v.delivery == "effectively-once" ? Delivery::effectively_once
                                                    : Delivery::at_least_once;
    m.durability = v.durability == "sync"    ? ackring::Durability::sync
                   : v.durability == "async" ? ackring::Durability::async
                                             : ackring::Durability::none;
    m.journal_root = cfg.journal_root;
    return std::make_unique<T>(p, channels, m);
  } else {
    return std::make_unique<T>(p, channels);
  }
}

// A sender that batches (the ackring producer-batched row) publishes what it holds.
template <class Tx>
void flush_all(std::vector<std::optional<Tx>>& tx) {
  if constexpr (requires(Tx& x) { x.flush(); })
    for (auto& x : tx) x->flush();
}

template <class T>
constexpr bool native_fanout() {
  if constexpr (requires { T::kNativeFanout; }) return T::kNativeFanout;
  return false;
}

template <class T>
Run run_topology(const Config& cfg, const Variant& v, const Params& p) {
  const Topology& topo = v.topology;
  const int P = topo.producers, C = topo.consumers;
  const bool competing = C > 1 && !topo.fanout;
  // Fan-out: ackring has one queue with a group per consumer; a peer gets a
  // channel per consumer and its producer sends every message to each.
  const int channels = topo.fanout ? C : 1;
  const int send_channels = topo.fanout && !native_fanout<T>() ? C : 1;
  const int stops_per_channel = competing ? C : 1;
  const auto t = make_transport<T>(v, p, channels, cfg);
  SharedCtrl c;
  Run out;
  out.load1 = read_load1();
  out.c2c_ns = core_to_core_rtt_ns(cfg);
  const std::uint64_t per_producer = (v.warmup + v.count) / P, warm = v.warmup / P;
  const std::uint64_t cap_ns = static_cast<std::uint64_t>(cfg.max_run_s * 1e9);

  std::vector<Proc> procs;
  for (int pi = 0; pi < P; ++pi) {
    procs.push_back({cfg.cpu_a, [&, pi] {
      std::vector<std::optional<typename T::Tx>> tx(send_channels);
      for (int ch = 0; ch < send_channels; ++ch) tx[ch].emplace(*t, ch);
      std::vector<std::byte> buf(p.size, std::byte{0x5a});
      barrier(c.get());
      const std::uint64_t t_start = now_ns();
      std::uint64_t i = 0;
      for (; i < per_producer; ++i) {
        // Every 64 messages (sync-journal rows manage ~10/s): stop early if
        // the run is taking too long.
        if ((i & 63) == 0 && i > warm && cap_ns != 0 && now_ns() - t_start > cap_ns) {
          c->capped.store(1);
          break;
        }
        stamp(buf.data(), (std::uint64_t(pi) << kProducerShift) | i);
        for (auto& x : tx) x->send(buf.data(), p.size);
      }
      flush_all(tx);
      c->sent[pi] = i;
      // The last producer to finish ends the run: its stop marks queue up
      // behind every data message of every producer.
      if (c->producers_done.fetch_add(1, std::memory_order_acq_rel) == P - 1)
        for (int k = 0; k < stops_per_channel; ++k) {
          stamp(buf.data(), kStopBit | std::uint64_t(k));
          for (auto& x : tx) x->send(buf.data(), p.size);
        }
      flush_all(tx);
    }});
  }
  for (int ci = 0; ci < C; ++ci) {
    procs.push_back({cfg.cpu_b, [&, ci] {
      typename T::Rx rx(*t, topo.fanout ? ci : 0);
      barrier(c.get());
      Ctrl::ConsumerReport r;
      std::uint64_t next[2] = {0, 0};
      bool stop = false;
      while (!stop) {
        std::uint64_t measured_before = r.measured;
        rx.recv([&](const std::byte* d, std::uint32_t n) {
          const std::uint64_t idx = index_of(d);
          if (idx & kStopBit) {
            stop = true;
            c->stops_seen.fetch_add(1, std::memory_order_acq_rel);
            return;
          }
          const auto pi = static_cast<unsigned>(idx >> kProducerShift);
          const std::uint64_t k = idx & kCounterMask;
          if (pi >= static_cast<unsigned>(P) || n != p.size) {
            ++r.bad;
            return;
          }
          // A consumer alone on its channel or group sees each producer's
          // messages in order, none missing; competing consumers see an
          // increasing subsequence each (completeness is checked on the sums).
          r.bad += competing ? (k < next[pi]) : (k != next[pi]);
          r.fold ^= fold_payload(d, n);
          next[pi] = k + 1;
          ++r.got[pi];
          if (k >= warm) {
            if (r.measured == 0) r.t_first = now_ns();
            ++r.measured;
          }
        });
        // One clock read per batch, not per message: the last batch's end
        // is when this consumer finished.
        if (r.measured != measured_before) r.t_last = now_ns();
        // Competing ackring consumers take messages in batches, so one of
        // them may take every stop mark; the other notices here (its receive
        // returns empty after 1 s).
        if (competing && c->stops_seen.load(std::memory_order_acquire) >= C) stop = true;
      }
      c->cons[ci] = r;
    }});
  }
  run_procs(cfg, c.get(), procs);

  // Completeness: every sent message reached every group (or, competing,
  // exactly one of the consumers).
  std::string problem;
  for (int pi = 0; pi < P; ++pi) {
    std::uint64_t sum = 0;
    for (int ci = 0; ci < C; ++ci) {
      sum += c->cons[ci].got[pi];
      if (!competing && c->cons[ci].got[pi] != c->sent[pi])
        problem += " consumer " + std::to_string(ci) + " got " + std::to_string(c->cons[ci].got[pi]) + " of producer " +
                   std::to_string(pi) + "'s " + std::to_string(c->sent[pi]) + ";";
    }
    if (competing && sum != c->sent[pi])
      problem += " consumers got " + std::to_string(sum) + " of producer " + std::to_string(pi) + "'s " +
                 std::to_string(c->sent[pi]) + ";";
  }
  for (int ci = 0; ci < C; ++ci)
    if (c->cons[ci].bad) problem += " consumer " + std::to_string(ci) + ": " + std::to_string(c->cons[ci].bad) + " out of order or mangled;";
  if (!problem.empty()) throw std::runtime_error("lost, reordered or duplicated messages:" + problem);

  std::uint64_t t_first = ~0ull, t_last = 0, measured = competing ? 0 : ~0ull;
  for (int ci = 0; ci < C; ++ci) {
    const auto& r = c->cons[ci];
    if (r.measured == 0) continue;
    t_first = std::min(t_first, r.t_first);
    t_last = std::max(t_last, r.t_last);
    measured = competing ? measured + r.measured : std::min(measured, r.measured);
  }
  if (measured < 2 || measured == ~0ull || t_last <= t_first) throw std::runtime_error("too few messages measured");
  out.seconds = static_cast<double>(t_last - t_first) * 1e-9;
  out.measured = measured;
  out.msgs_per_s = static_cast<double>(measured - 1) / out.seconds;
  out.mb_per_s = out.msgs_per_s * p.size / 1e6;
  out.cpu_seen = cpus_seen(c.get(), P + C);
  return out;
}

// ---------------------------------------------------------------- rtt --
template <class T>
Run run_rtt(const Config& cfg, const Variant&, const Params& p) {
  T t(p, 2);
  SharedCtrl c;
  Run out;
  out.load1 = read_load1();
  out.c2c_ns = core_to_core_rtt_ns(cfg);
  const std::uint64_t total = cfg.rtt_warmup + cfg.rtt_samples;
  const std::uint64_t cap_ns = static_cast<std::uint64_t>(cfg.max_run_s * 1e9);
  Proc pinger{cfg.cpu_a, [&] {
    typename T::Tx tx(t, 0);
    typename T::Rx rx(t, 1);
    std::vector<std::uint64_t> samples(cfg.rtt_samples);  // preallocated: no allocation while timing
    std::vector<std::byte> buf(p.size, std::byte{0x5a});
    barrier(c.get());
    std::uint64_t bad = 0, t_start = 0, i = 0;
    for (; i < total; ++i) {
      if (i == cfg.rtt_warmup) t_start = now_ns();
      // Every 1024 round trips: stop early if the run is taking too long.
      if ((i & 1023) == 0 && i > cfg.rtt_warmup && cap_ns != 0 && now_ns() - t_start > cap_ns) {
        c->capped.store(1);
        break;
      }
      stamp(buf.data(), i);
      const std::uint64_t t0 = now_ns();
      tx.send(buf.data(), p.size);
      std::size_t got = 0;
      while (got == 0)
        got = rx.recv([&](const std::byte* d, std::uint32_t n) { bad += (n != p.size) | (index_of(d) != i); });
      const std::uint64_t t1 = now_ns();
      bad += got != 1;
      if (i >= cfg.rtt_warmup) samples[i - cfg.rtt_warmup] = t1 - t0;
    }
    if (bad != 0) throw std::runtime_error(std::to_string(bad) + " bad pongs");
    samples.resize(i > cfg.rtt_warmup ? i - cfg.rtt_warmup : 0);
    c->measured = samples.size();
    c->rtt = percentiles(samples);
  }};
  Proc ponger{cfg.cpu_b, [&] {  // echoes every ping on channel 1
    typename T::Tx tx(t, 1);
    typename T::Rx rx(t, 0);
    barrier(c.get());
    std::uint64_t seen = 0;
    while (seen < total) seen += rx.recv([&](const std::byte* d, std::uint32_t n) { tx.send(d, n); });
  }};
  run_procs(cfg, c.get(), {pinger, ponger}, /*primary=*/0);
  out.p = c->rtt;
  out.measured = c->measured;
  out.cpu_seen = cpus_seen(c.get(), 2);
  return out;
}

// ------------------------------------------------------------ latency --
// One-way latency at a steady rate. Both processes read the same
// CLOCK_MONOTONIC (one host), so receive - send is the message's time in the
// queue plus the consumer's poll granularity. The producer sends on a fixed
// schedule (t0 + i / rate); when it falls behind (descheduled) it sends at
// once and counts a late send, and the backlog shows up as latency.
template <class T>
Run run_latency(const Config& cfg, const Variant&, const Params& p) {
  T t(p, 1);
  SharedCtrl c;
  Run out;
  out.load1 = read_load1();
  out.c2c_ns = core_to_core_rtt_ns(cfg);
  const std::uint64_t total = cfg.lat_warmup + cfg.lat_samples;
  const double period_ns = 1e9 / cfg.rate;
  Proc producer{cfg.cpu_a, [&] {
    typename T::Tx tx(t, 0);
    std::vector<std::byte> buf(p.size, std::byte{0x5a});
    barrier(c.get());
    std::uint64_t late = 0;
    const std::uint64_t t0 = now_ns();
    for (std::uint64_t i = 0; i < total; ++i) {
      const std::uint64_t due = t0 + static_cast<std::uint64_t>(static_cast<double>(i) * period_ns);
      std::uint64_t now = now_ns();
      late += now > due + 1000;
      while (now < due) now = now_ns();
      stamp(buf.data(), i);
      std::memcpy(buf.data() + 8, &now, 8);
      tx.send(buf.data(), p.size);
    }
    c->late_sends = late;
  }};
  Proc consumer{cfg.cpu_b, [&] {
    typename T::Rx rx(t, 0);
    auto hist = std::make_unique<LatencyHistogram>();  // allocated before timing starts
    barrier(c.get());
    std::uint64_t expect = 0, bad = 0;
    while (expect < total)
      rx.recv([&](const std::byte* d, std::uint32_t n) {
        const std::uint64_t now = now_ns();
        std::uint64_t sent;
        std::memcpy(&sent, d + 8, 8);
        bad += (n != p.size) | (index_of(d) != expect);
        if (expect >= cfg.lat_warmup) hist->record(now - sent);
        ++expect;
      });
    if (bad != 0) throw std::runtime_error(std::to_string(bad) + " messages out of order or mangled");
    c->hist = *hist;
    c->measured = hist->count();
  }};
  run_procs(cfg, c.get(), {producer, consumer});
  out.hist = std::make_shared<LatencyHistogram>(c->hist);
  const auto& h = *out.hist;
  out.p.min = static_cast<double>(h.min());
  out.p.p50 = static_cast<double>(h.value_at(0.50));
  out.p.p90 = static_cast<double>(h.value_at(0.90));
  out.p.p99 = static_cast<double>(h.value_at(0.99));
  out.p.p999 = static_cast<double>(h.value_at(0.999));
  out.p.max = static_cast<double>(h.max());
  out.measured = c->measured;
  out.late_sends = c->late_sends;
  out.cpu_seen = cpus_seen(c.get(), 2);
  return out;
}

// ------------------------------------------------------------ the matrix --
// Why a peer cannot run a topology honestly, or "" if it can.
std::string not_applicable(const std::string& transport, const Topology& topo, std::uint32_t size) {
  if (transport == "spsc" && topo.producers > 1) return "single producer by design";
  if (transport == "spsc" && topo.consumers > 1 && !topo.fanout) return "single consumer by design";
  if (transport == "pipe" && topo.consumers > 1 && !topo.fanout) return "a byte stream: two readers split frames";
  if (transport == "pipe" && topo.producers > 1 && size + 4 > PIPE_BUF)
    return "frames above PIPE_BUF interleave with two writers";
  return {};
}

}  // namespace

std::vector<Topology> all_topologies() {
  return {{"1->1", 1, 1, false}, {"2->1", 2, 1, false}, {"1->2 competing", 1, 2, false}, {"1->2 groups", 1, 2, true}};
}

std::vector<Variant> build_variants(const Config& cfg, const std::string& tag) {
  std::vector<Variant> v;
  const auto want = [&](const char* t) {
    return cfg.only.empty() || std::find(cfg.only.begin(), cfg.only.end(), t) != cfg.only.end();
  };
  const std::string cap = std::to_string(cfg.capacity) + " slots";
  const std::string mqd = std::to_string(cfg.mq_maxmsg) + " msgs";
  const std::uint64_t warm = cfg.warmup ? cfg.warmup : cfg.count / 10;
  int n = 0;
  const auto add = [&](const std::string& scenario, const Topology& topo, std::uint32_t size, std::string transport,
                       std::string label, std::string receiver, std::string depth, auto&& tweak, auto run) {
    Variant x;
    x.scenario = scenario;
    x.topology = topo;
    x.transport = std::move(transport);
    x.label = std::move(label);
    x.receiver = std::move(receiver);
    x.depth = std::move(depth);
    x.size = size;
    x.count = cfg.count;
    x.warmup = warm;
    x.params.tag = tag + "." + std::to_string(n++);
    x.params.size = size;
    x.params.capacity = cfg.capacity;
    x.params.batch = cfg.batch;
    x.params.mq_maxmsg = cfg.mq_maxmsg;
    tweak(x);
    if (scenario == "throughput") {
      x.not_applicable = not_applicable(x.transport, topo, size);
      if (topo.fanout && x.transport != "ackring" && x.not_applicable.empty())
        x.fanout = "emulated: the producer sends every message to each consumer's channel";
      if (topo.fanout && x.transport == "ackring") x.fanout = "native: one group per consumer";
    }
    x.run = run;
    v.push_back(std::move(x));
  };
  const auto none = [](Variant&) {};
  const std::string b = std::to_string(cfg.batch);

  if (cfg.do_tp) {
    for (const Topology& topo : all_topologies())
      for (const std::uint32_t size : cfg.sizes) {
        const bool matrix_cell = size == cfg.matrix_size;
        // The default run covers every size at 1->1 and every topology at
        // the matrix size; --full covers every size at every topology.
        if (!cfg.full && topo.name != "1->1" && !matrix_cell) continue;
        const auto ack = [&](const char* delivery, const char* durability, std::string label, std::string receiver,
                             auto&& more) {
          add("throughput", topo, size, "ackring", std::move(label), std::move(receiver), cap,
              [&](Variant& x) {
                x.delivery = delivery;
                x.durability = durability;
                if (x.durability == std::string("sync")) x.count = cfg.sync_count, x.warmup = cfg.sync_count / 20;
                more(x);
              },
              &run_topology<AckringModesTransport>);
        };
        if (want("ackring")) {
          // The headline row: at-least-once, library default waiting (spin
          // 50 us, then futex), no journal. Every ratio is taken against it.
          ack("at-least-once", "none", "ackring at-least-once batch" + b + "+ack_batch", "spin 50us, futex", none);
          v.back().reference = true;
          const bool modes = cfg.full || (topo.name == "1->1" && matrix_cell);
          if (modes) {
            // Throughput for latency (ConsumerOptions::linger): a short batch
            // waits 2 us for more instead of polling the slot being written.
            ack("at-least-once", "none", "ackring at-least-once batch" + b + "+ack_batch, linger 2us",
                "spin 50us, futex", [](Variant& x) { x.params.linger = std::chrono::microseconds(2); });
            ack("at-most-once", "none", "ackring at-most-once batch" + b, "spin 50us, futex", none);
            ack("at-least-once", "none", "ackring at-least-once publish_batch(32), batch" + b + "+ack_batch",
                "spin 50us, futex", [](Variant& x) { x.params.publish_batch = 32; });
            ack("effectively-once", "none", "ackring effectively-once keyed+process-once", "spin 50us, futex", none);
            ack("effectively-once", "none", "ackring effectively-once publish_keyed_batch(32)+process-once",
                "spin 50us, futex", [](Variant& x) { x.params.publish_batch = 32; });
            if (topo.consumers == 1)  // a spinning consumer next to another on one cpu measures the scheduler
              ack("at-least-once", "none", "ackring at-least-once batch" + b + "+ack_batch", "busy-poll",
                  [](Variant& x) { x.params.spin = std::chrono::hours(1); });
            // The journal's cost hardly depends on the payload size; the
            // smoke test keeps these (slow) rows to the matrix size.
            if (!cfg.quick || matrix_cell) {
              ack("at-least-once", "async", "ackring at-least-once, journal async", "spin 50us, futex", none);
              ack("at-least-once", "sync", "ackring at-least-once, journal sync", "spin 50us, futex", none);
            }
          }
        }
        if (want("spsc")) add("throughput", topo, size, "spsc", "bare SPSC ring (floor)", "busy-poll", cap, none, &run_topology<SpscTransport>);
        if (want("uds")) add("throughput", topo, size, "uds", "unix socket SEQPACKET", "blocking", "socket buffers", none, &run_topology<UdsTransport>);
        if (want("pipe")) add("throughput", topo, size, "pipe", "pipe (framed stream)", "blocking", "64 KiB pipe", none, &run_topology<PipeTransport>);
        if (want("mq")) add("throughput", topo, size, "mq", "POSIX mq", "blocking", mqd, none, &run_topology<MqTransport>);
        if (want("boost")) add("throughput", topo, size, "boost", "boost::interprocess mq", "blocking", cap, none, &run_topology<BoostMqTransport>);
      }
  }

  const Topology one = all_topologies().front();
  const std::uint32_t lsize = cfg.matrix_size;
  if (cfg.do_lat) {
    // One-way latency: busy-polling consumers, at-least-once for ackring.
    const auto poll = [](Variant& x) { x.params.poll = true; x.params.spin = std::chrono::hours(1); };
    if (want("ackring")) {
      add("latency", one, lsize, "ackring", "ackring at-least-once batch" + b + "+ack_batch", "busy-poll", cap, poll, &run_latency<AckringTransport>);
      v.back().reference = true;
    }
    if (want("spsc")) add("latency", one, lsize, "spsc", "bare SPSC ring (floor)", "busy-poll", cap, poll, &run_latency<SpscTransport>);
    if (want("boost")) add("latency", one, lsize, "boost", "boost::interprocess mq", "busy-poll", cap, poll, &run_latency<BoostMqTransport>);
    if (cfg.full) {
      if (want("uds")) add("latency", one, lsize, "uds", "unix socket SEQPACKET", "busy-poll", "socket buffers", poll, &run_latency<UdsTransport>);
      if (want("pipe")) add("latency", one, lsize, "pipe", "pipe (framed stream)", "busy-poll", "64 KiB pipe", poll, &run_latency<PipeTransport>);
      if (want("mq")) add("latency", one, lsize, "mq", "POSIX mq", "busy-poll", mqd, poll, &run_latency<MqTransport>);
    }
  }

  if (cfg.do_rtt) {
    const auto poll = [](Variant& x) { x.params.poll = true; x.params.batch = 1; x.params.spin = std::chrono::hours(1); };
    const auto block = [](Variant& x) { x.params.poll = false; x.params.batch = 1; x.params.spin = std::chrono::microseconds(0); };
    const auto rtt = [&](const char* t, std::string label, const char* recv, std::string depth, auto&& tweak, auto run) {
      if (want(t)) add("rtt", one, lsize, t, std::move(label), recv, std::move(depth), tweak, run);
    };
    rtt("ackring", "ackring at-least-once receive+ack", "busy-poll", cap, poll, &run_rtt<AckringTransport>);
    rtt("spsc", "bare SPSC ring (floor)", "busy-poll", cap, poll, &run_rtt<SpscTransport>);
    rtt("uds", "unix socket SEQPACKET", "busy-poll", "socket buffers", poll, &run_rtt<UdsTransport>);
    rtt("pipe", "pipe (framed stream)", "busy-poll", "64 KiB pipe", poll, &run_rtt<PipeTransport>);
    rtt("mq", "POSIX mq", "busy-poll", mqd, poll, &run_rtt<MqTransport>);
    rtt("boost", "boost::interprocess mq", "busy-poll", cap, poll, &run_rtt<BoostMqTransport>);
    rtt("ackring", "ackring at-least-once receive+ack", "blocking", cap, block, &run_rtt<AckringTransport>);
    rtt("uds", "unix socket SEQPACKET", "blocking", "socket buffers", block, &run_rtt<UdsTransport>);
    rtt("pipe", "pipe (framed stream)", "blocking", "64 KiB pipe", block, &run_rtt<PipeTransport>);
    rtt("mq", "POSIX mq", "blocking", mqd, block, &run_rtt<MqTransport>);
    rtt("boost", "boost::interprocess mq", "blocking", cap, block, &run_rtt<BoostMqTransport>);
  }
  return v;
}

// Core-to-core round trip of one cache line between the two placements
// (two pinned threads bouncing a counter): the hardware floor under every
// shared-memory figure. On a VM the host may move the vCPUs between cores
// that share a cache and cores that do not; this probe, taken before each
// run, shows it.
double core_to_core_rtt_ns(const Config& cfg) {
  struct alignas(64) Line {
    std::atomic<std::uint64_t> v{0};
  };
  Line line;
  // The smoke test only checks that the probe works: a short one.
  const std::uint64_t kWarm = cfg.quick ? 200 : 5'000, kRounds = cfg.quick ? 1'000 : 20'000;
  std::vector<std::uint64_t> rtt(kRounds);
  std::thread echo([&] {
    pin_to(cfg.cpu_b);
    for (std::uint64_t i = 1; i < 2 * (kWarm + kRounds); i += 2) {
      while (line.v.load(std::memory_order_acquire) != i) cpu_relax();
      line.v.store(i + 1, std::memory_order_release);
    }
  });
  std::thread ping([&] {
    pin_to(cfg.cpu_a);
    for (std::uint64_t r = 0; r < kWarm + kRounds; ++r) {
      const std::uint64_t t0 = now_ns();
      line.v.store(2 * r + 1, std::memory_order_release);
      while (line.v.load(std::memory_order_acquire) != 2 * r + 2) cpu_relax();
      if (r >= kWarm) rtt[r - kWarm] = now_ns() - t0;
    }
  });
  ping.join();
  echo.join();
  return percentiles(rtt).p50;
}

}  // namespace ackring_bench
