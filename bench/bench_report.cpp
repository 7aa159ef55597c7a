// What ackring-bench shows: the terminal tables (medians, ackring/peer
// ratios, placement), the JSON of every run, and the gnuplot plots.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "bench_types.hpp"

namespace ackring_bench {
namespace {

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

struct TpMedian {
  double msgs_per_s = 0, mb_per_s = 0, lo = 0, hi = 0;
};
TpMedian tp_median(const Variant& v) {
  std::vector<double> m, mb;
  for (const auto& r : v.runs) m.push_back(r.msgs_per_s), mb.push_back(r.mb_per_s);
  if (m.empty()) return {};
  return {median(m), median(mb), *std::min_element(m.begin(), m.end()), *std::max_element(m.begin(), m.end())};
}

// Per-percentile median over the runs.
Percentiles pct_median(const Variant& v) {
  Percentiles out;
  if (v.runs.empty()) return out;
  const auto med = [&](double Percentiles::*f) {
    std::vector<double> x;
    for (const auto& r : v.runs) x.push_back(r.p.*f);
    return median(x);
  };
  out.min = med(&Percentiles::min);
  out.p50 = med(&Percentiles::p50);
  out.p90 = med(&Percentiles::p90);
  out.p99 = med(&Percentiles::p99);
  out.p999 = med(&Percentiles::p999);
  out.max = med(&Percentiles::max);
  out.mean = med(&Percentiles::mean);
  return out;
}

std::string rate_text(double per_s);

[[nodiscard]] bool has_result(const Variant& v) { return v.error.empty() && v.not_applicable.empty() && !v.runs.empty(); }

// Median of what the runs measured, "1.00M" / "50.0k", with '*' when some
// run stopped at --max-run-seconds before the configured count.
std::string measured_text(const Variant& v, std::uint64_t configured) {
  std::vector<std::uint64_t> m;
  for (const auto& r : v.runs) m.push_back(r.measured);
  if (m.empty()) return "-";
  const bool capped = *std::min_element(m.begin(), m.end()) + 1 < configured;
  const double x = static_cast<double>(median(m));
  return rate_text(x) + (capped ? "*" : "");
}

double c2c_median(const Variant& v) {
  std::vector<double> x;
  for (const auto& r : v.runs) x.push_back(r.c2c_ns);
  return median(x);
}

// "P0:cpu0 P1:cpu0 C0:cpu1 x3": where each process ran at its end, per run.
std::string observed(const Variant& v) {
  std::map<std::vector<int>, int> seen;
  for (const auto& r : v.runs) ++seen[r.cpu_seen];
  std::ostringstream s;
  bool first = true;
  const int producers = v.topology.producers;
  for (const auto& [cpus, n] : seen) {
    s << (first ? "" : ", ");
    for (std::size_t i = 0; i < cpus.size(); ++i) {
      const bool prod = static_cast<int>(i) < producers;
      s << (i ? " " : "") << (prod ? "P" : "C") << (prod ? i : i - producers) << ":"
        << (cpus[i] < 0 ? std::string("?") : std::to_string(cpus[i]));  // ?: killed after a capped run
    }
    if (n > 1) s << " x" << n;
    first = false;
  }
  return s.str();
}

// Throughput: the headline ackring row of the same topology and size.
// RTT: the ackring row with the same kind of receiver. Latency: the ackring row.
const Variant* ackring_ref(const std::vector<Variant>& all, const Variant& v) {
  for (const auto& r : all)
    if (r.scenario == v.scenario && r.size == v.size && r.topology.name == v.topology.name && r.transport == "ackring" &&
        has_result(r) && (v.scenario == "rtt" ? r.receiver == v.receiver : r.reference))
      return &r;
  return nullptr;
}

// ackring/peer: throughput ratio (>1: ackring moves more), or latency ratio
// at the given percentile (<1: ackring is quicker).
double ratio(const std::vector<Variant>& all, const Variant& v, double Percentiles::*at = &Percentiles::p50) {
  const Variant* a = ackring_ref(all, v);
  if (!a || !has_result(v)) return 0;
  if (v.scenario == "throughput") {
    const double peer = tp_median(v).msgs_per_s;
    return peer > 0 ? tp_median(*a).msgs_per_s / peer : 0;
  }
  const double peer = pct_median(v).*at;
  return peer > 0 ? pct_median(*a).*at / peer : 0;
}

std::string ratio_text(double r) { return r > 0 ? fmt("%.2fx", r) : "-"; }

// "9.81M", "353k", "9.6": sync-journal rows are four orders below the rest.
std::string rate_text(double per_s) {
  if (per_s >= 1e6) return fmt("%.2fM", per_s / 1e6);
  if (per_s >= 1e3) return fmt("%.0fk", per_s / 1e3);
  return fmt("%.1f", per_s);
}

}  // namespace

std::string placement(const Config& cfg, const Variant& v) {
  const bool rtt = v.scenario == "rtt";
  const int np = v.topology.producers, nc = v.topology.consumers;
  const std::string a = rtt ? "pinger" : np > 1 ? std::to_string(np) + " producers" : "producer";
  const std::string b = rtt ? "ponger" : nc > 1 ? std::to_string(nc) + " consumers" : "consumer";
  std::ostringstream s;
  if (cfg.cpu_a < 0) {
    s << "unpinned (the scheduler places " << a << " and " << b << ")";
  } else {
    s << a << " pinned to cpu" << cfg.cpu_a << (np > 1 ? " (sharing it)" : "") << ", " << b << " pinned to cpu"
      << cfg.cpu_b << (nc > 1 ? " (sharing it)" : "") << (cfg.cpu_a == cfg.cpu_b ? "; all on one cpu" : "");
  }
  return s.str();
}

void print_tables(const Config& cfg, const std::vector<Variant>& all) {
  // Throughput: one table per topology and size, in the order built.
  std::vector<std::pair<std::string, std::uint32_t>> cells;
  for (const auto& v : all)
    if (v.scenario == "throughput" && std::find(cells.begin(), cells.end(), std::pair(v.topology.name, v.size)) == cells.end())
      cells.emplace_back(v.topology.name, v.size);
  bool emulated = false;
  for (const auto& [topo, size] : cells) {
    bool header = false;
    for (const auto& v : all) {
      if (v.scenario != "throughput" || v.topology.name != topo || v.size != size) continue;
      if (!header) {
        std::printf("\n== throughput %s, %u B, %llu msgs after %llu warm-up (sync: %llu), median of %d ==\n", topo.c_str(),
                    size, static_cast<unsigned long long>(cfg.count),
                    static_cast<unsigned long long>(cfg.warmup ? cfg.warmup : cfg.count / 10),
                    static_cast<unsigned long long>(cfg.sync_count), cfg.repeat);
        std::printf("   placement: %s\n", placement(cfg, v).c_str());
        std::printf("   %-44s %-17s %-15s %10s %9s %13s %16s %9s %7s %s\n", "transport", "consumer waits", "depth",
                    "msgs/s", "MB/s", "ackring/peer", "runs min..max", "measured", "c2c ns", "cpus seen");
        header = true;
      }
      const bool emu = v.fanout.rfind("emulated", 0) == 0;
      emulated = emulated || emu;
      const std::string label = v.label + (emu ? " (sends 2x)" : "");
      if (!v.not_applicable.empty()) {
        std::printf("   %-44s n/a: %s\n", label.c_str(), v.not_applicable.c_str());
        continue;
      }
      if (!v.error.empty()) {
        std::printf("   %-44s FAILED: %s\n", label.c_str(), v.error.c_str());
        continue;
      }
      const TpMedian m = tp_median(v);
      std::printf("   %-44s %-17s %-15s %10s %9.1f %12s %16s %9s %7s %s\n", label.c_str(), v.receiver.c_str(),
                  v.depth.c_str(), rate_text(m.msgs_per_s).c_str(), m.mb_per_s, ratio_text(ratio(all, v)).c_str(),
                  (rate_text(m.lo) + ".." + rate_text(m.hi)).c_str(),
                  measured_text(v, v.count).c_str(), fmt("%.0f", c2c_median(v)).c_str(), observed(v).c_str());
    }
  }

  const auto pct_table = [&](const char* scenario, const std::string& receiver, const std::string& title,
                             std::uint64_t samples) {
    bool header = false;
    for (const auto& v : all) {
      if (v.scenario != scenario || (!receiver.empty() && v.receiver != receiver)) continue;
      if (!header) {
        std::printf("\n== %s, %u B, median of %d (ns) ==\n", title.c_str(), v.size, cfg.repeat);
        std::printf("   placement: %s\n", placement(cfg, v).c_str());
        std::printf("   %-44s %8s %8s %8s %8s %8s %9s %11s %11s %9s %7s %s\n", "transport", "min", "p50", "p90", "p99",
                    "p99.9", "max", "ack/peer50", "ack/peer999", "samples", "c2c ns", "cpus seen");
        header = true;
      }
      if (!v.error.empty()) {
        std::printf("   %-44s FAILED: %s\n", v.label.c_str(), v.error.c_str());
        continue;
      }
      const Percentiles p = pct_median(v);
      std::printf("   %-44s %8.0f %8.0f %8.0f %8.0f %8.0f %9.0f %11s %11s %9s %7s %s\n", v.label.c_str(), p.min, p.p50,
                  p.p90, p.p99, p.p999, p.max, ratio_text(ratio(all, v)).c_str(),
                  ratio_text(ratio(all, v, &Percentiles::p999)).c_str(), measured_text(v, samples).c_str(),
                  fmt("%.0f", c2c_median(v)).c_str(), observed(v).c_str());
    }
  };
  pct_table("latency", "",
            "one-way latency at " + fmt("%.0f", cfg.rate) + " msgs/s, busy-polling consumer, " +
                std::to_string(cfg.lat_samples) + " samples after " + std::to_string(cfg.lat_warmup),
            cfg.lat_samples);
  for (const char* recv : {"busy-poll", "blocking"})
    pct_table("rtt", recv,
              std::string("ping-pong RTT, ") + recv + " receiver, " + std::to_string(cfg.rtt_samples) + " samples after " +
                  std::to_string(cfg.rtt_warmup),
              cfg.rtt_samples);

  std::printf("\n   ackring/peer: throughput against the headline ackring row of the same topology and size\n"
              "   (at-least-once, no journal), >1 means ackring moves more; latency and RTT at p50 (ack/peer50)\n"
              "   and p99.9 (ack/peer999) against the ackring row, <1 means ackring is quicker.\n");
  std::printf("   Other ackring rows show headline / that row: what the mode costs against the headline.\n");
  std::printf("   Throughput counts distinct messages: in 1->2 groups each is delivered twice (once per group).\n");
  if (emulated)
    std::printf("   (sends 2x): no fan-out in this transport; emulated with one channel per consumer, the producer\n"
                "   sending every message to each, so its msgs/s counts each message once but paid for twice.\n");
  std::printf("   *: some run stopped at --max-run-seconds (%g s) and measured fewer (median shown).\n", cfg.max_run_s);
  std::printf("   Shared 2-core machine: figures are noisy; see loadavg in the JSON and the runs' min..max.\n");
}

json results_json(const Config& cfg, const std::vector<Variant>& all) {
  json res = json::array();
  for (const auto& v : all) {
    json r;
    r["scenario"] = v.scenario;
    r["topology"] = {{"name", v.topology.name}, {"producers", v.topology.producers},
                     {"consumers", v.topology.consumers}, {"fanout", v.topology.fanout}};
    r["transport"] = v.transport;
    r["label"] = v.label;
    r["receiver"] = v.receiver;
    r["depth"] = v.depth;
    r["size"] = v.size;
    if (!v.delivery.empty()) r["delivery"] = v.delivery, r["durability"] = v.durability;
    if (!v.fanout.empty()) r["fanout"] = v.fanout;
    if (v.scenario == "throughput") r["count"] = v.count, r["warmup"] = v.warmup;
    r["placement"] = placement(cfg, v);
    r["reference"] = v.reference;
    if (!v.not_applicable.empty()) r["not_applicable"] = v.not_applicable;
    if (!v.error.empty()) r["error"] = v.error;
    json runs = json::array();
    for (const auto& t : v.runs) {
      json run = {{"measured", t.measured}, {"cpu_seen", t.cpu_seen}, {"loadavg1", t.load1},
                  {"core_to_core_rtt_ns", t.c2c_ns}, {"wall_seconds", t.wall_s}};
      if (v.scenario == "throughput") {
        run["msgs_per_s"] = t.msgs_per_s, run["mb_per_s"] = t.mb_per_s, run["seconds"] = t.seconds;
      } else {
        run.update({{"min_ns", t.p.min}, {"p50_ns", t.p.p50}, {"p90_ns", t.p.p90}, {"p99_ns", t.p.p99},
                    {"p999_ns", t.p.p999}, {"max_ns", t.p.max}});
        if (v.scenario == "rtt") run["mean_ns"] = t.p.mean;
        if (v.scenario == "latency") run["late_sends"] = t.late_sends;
      }
      runs.push_back(std::move(run));
    }
    if (has_result(v)) {
      if (v.scenario == "throughput") {
        const TpMedian m = tp_median(v);
        r["median"] = {{"msgs_per_s", m.msgs_per_s}, {"mb_per_s", m.mb_per_s}};
      } else {
        const Percentiles p = pct_median(v);
        r["median"] = {{"min_ns", p.min}, {"p50_ns", p.p50}, {"p90_ns", p.p90}, {"p99_ns", p.p99},
                       {"p999_ns", p.p999}, {"max_ns", p.max}};
      }
      if (const double x = ratio(all, v); x > 0) r["ackring_over_peer"] = x;
      if (v.scenario != "throughput")
        if (const double x = ratio(all, v, &Percentiles::p999); x > 0) r["ackring_over_peer_p999"] = x;
    }
    if (v.scenario == "latency" && has_result(v)) {
      // All runs merged: the percentile curve the plot draws.
      LatencyHistogram merged;
      for (const auto& t : v.runs)
        if (t.hist) merged.merge(*t.hist);
      json curve = json::array();
      for (const auto& [ns, frac] : merged.cumulative()) curve.push_back({ns, frac});
      r["histogram"] = {{"precision", "log-linear, 64 buckets per power of two (1/64)"},
                        {"count", merged.count()},
                        {"cumulative_ns_fraction", std::move(curve)}};
    }
    r["runs"] = std::move(runs);
    res.push_back(std::move(r));
  }
  return res;
}

// ------------------------------------------------------------------ plots --
namespace {

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

// Writes the script beside the plot and runs it; returns the PNG, or "" if gnuplot failed.
std::string run_gnuplot(const std::string& script_path, const std::string& script, const std::string& png) {
  {
    std::ofstream out(script_path);
    out << script;
  }
  if (std::system(("gnuplot '" + script_path + "'").c_str()) == 0) return png;
  std::fprintf(stderr, "ackring-bench: warning: gnuplot failed on %s\n", script_path.c_str());
  return {};
}

// Throughput bars: one cluster per topology and size, one bar per transport
// (ackring's headline row and each peer), log scale.
std::string plot_throughput(const Config& cfg, const std::vector<Variant>& all) {
  std::vector<std::string> transports;  // column order: as built
  std::vector<std::string> cells;
  std::map<std::pair<std::string, std::string>, double> value;
  for (const auto& v : all) {
    if (v.scenario != "throughput" || (v.transport == "ackring" && !v.reference)) continue;
    const std::string cell = v.topology.name + " " + std::to_string(v.size) + "B";
    const std::string col = v.transport == "ackring" ? "ackring at-least-once" : v.label;
    if (std::find(transports.begin(), transports.end(), col) == transports.end()) transports.push_back(col);
    if (std::find(cells.begin(), cells.end(), cell) == cells.end()) cells.push_back(cell);
    if (has_result(v)) value[{cell, col}] = tp_median(v).msgs_per_s;
  }
  if (cells.empty()) return {};
  std::ostringstream s;
  s << "set terminal pngcairo size 1600,700 font ',10'\nset output '" << cfg.plot_prefix << "-throughput.png'\n"
    << "set title 'Throughput, median of " << cfg.repeat << " (msgs/s, log scale; missing bar = n/a)'\n"
    << "set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
    << "set termoption noenhanced\nset logscale y\nset yrange [1e4:*]\nset grid ytics\nset ylabel 'distinct messages / s'\n"
    << "set xtics rotate by -25\nset key outside right\nset datafile missing '?'\n$data << EOD\ncell";
  for (const auto& t : transports) s << " \"" << t << "\"";
  s << "\n";
  for (const auto& c : cells) {
    s << '"' << c << '"';
    for (const auto& t : transports) {
      const auto it = value.find({c, t});
      s << ' ' << (it == value.end() ? std::string("?") : fmt("%.0f", it->second));
    }
    s << "\n";
  }
  s << "EOD\nplot for [i=2:" << transports.size() + 1 << "] $data using i:xtic(1) title columnhead(i)\n";
  return run_gnuplot(cfg.plot_prefix + "-throughput.gp", s.str(), cfg.plot_prefix + "-throughput.png");
}

// Latency percentile curves: latency on a log x axis, percentile on the
// usual "nines" y axis (-log10(1 - p)), so p99.9 is as visible as p50.
std::string plot_latency(const Config& cfg, const std::vector<Variant>& all, const char* scenario_name) {
  std::ostringstream data, plot;
  int n = 0;
  for (const auto& v : all) {
    if (v.scenario != "latency" || !has_result(v)) continue;
    LatencyHistogram merged;
    for (const auto& t : v.runs)
      if (t.hist) merged.merge(*t.hist);
    data << "$c" << n << " << EOD\n";
    for (const auto& [ns, frac] : merged.cumulative()) {
      const double tail = std::max(1.0 - frac, 1.0 / static_cast<double>(merged.count()));  // the max sits at 1/count
      data << ns << ' ' << -std::log10(tail) << "\n";
    }
    data << "EOD\n";
    plot << (n ? ", " : "plot ") << "$c" << n << " using 1:2 with steps lw 2 title '" << v.label << "'";
    ++n;
  }
  if (n == 0) return {};
  std::ostringstream s;
  s << "set terminal pngcairo size 1100,700 font ',10'\nset output '" << cfg.plot_prefix << "-latency.png'\n"
    << "set title 'One-way latency at " << fmt("%.0f", cfg.rate) << " msgs/s, " << scenario_name << ", "
    << cfg.repeat << " runs merged'\n"
    << "set termoption noenhanced\nset logscale x\nset xlabel 'latency (ns, log scale)'\nset ylabel 'percentile'\nset grid\n"
    // Tic labels are format strings: %% is a literal percent sign.
    << "set ytics ('0%%' 0, '50%%' 0.30103, '90%%' 1, '99%%' 2, '99.9%%' 3, '99.99%%' 4, '99.999%%' 5, '99.9999%%' 6)\n"
    << "set yrange [0:*]\nset key bottom right\n"
    << data.str() << plot.str() << "\n";
  return run_gnuplot(cfg.plot_prefix + "-latency.gp", s.str(), cfg.plot_prefix + "-latency.png");
}

}  // namespace

void write_plots(const Config& cfg, const std::vector<Variant>& all) {
  if (cfg.plot_prefix.empty()) return;
  if (!gnuplot_available()) {
    std::fprintf(stderr, "ackring-bench: warning: gnuplot not found (apt-get install gnuplot-nox): no plots\n");
    return;
  }
  for (const std::string& png : {plot_throughput(cfg, all), plot_latency(cfg, all, "busy-polling consumer")})
    if (!png.empty()) std::printf("   plot written to %s\n", png.c_str());
}

}  // namespace ackring_bench
