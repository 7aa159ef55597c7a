#include "bridge_view.hpp"

#include <cstdio>

namespace ackring::cli {

std::vector<bridge::BridgeStatus> bridges_of(const std::string& queue_path) {
  return bridge::read_bridge_statuses(queue_path);
}

namespace {

std::string where(const bridge::BridgeStatus& b) {
  if (b.direction == "out") return "group " + b.group + " -> " + b.stream + " (" + b.subject + ")";
  return b.stream + " (" + b.consumer + ") -> queue";
}

std::string state(const bridge::BridgeStatus& b) {
  if (!b.alive) return "dead";
  return b.connected ? "connected" : "reconnecting";
}

}  // namespace

std::string render_bridges(const std::vector<bridge::BridgeStatus>& bridges,
                           const std::vector<bridge::BridgeStatus>* rates_from, double seconds) {
  if (bridges.empty()) return {};
  Table t{{"BRIDGE"},           {"PID", true},         {"STATE"},     {"ROUTE"},
          {"FORWARDED", true},  {"ACKED", true},       {rates_from != nullptr ? "ACKED/S" : "IN FLIGHT", true},
          {"RETRIES", true},    {"DEDUP HITS", true},  {"LAG", true}, {"RECONNECTS", true}};
  std::string errors;
  for (const auto& b : bridges) {
    std::string third = std::to_string(b.in_flight);
    if (rates_from != nullptr) {
      double rate = -1;
      for (const auto& old : *rates_from)
        if (old.name == b.name && old.pid == b.pid && seconds > 0 && b.acked >= old.acked)
          rate = static_cast<double>(b.acked - old.acked) / seconds;
      third = format_rate(rate);
    }
    t.add({b.name, std::to_string(b.pid), state(b), where(b), std::to_string(b.forwarded), std::to_string(b.acked),
           third, std::to_string(b.retries), std::to_string(b.dedup_hits), std::to_string(b.lag),
           std::to_string(b.reconnects)});
    if (!b.last_error.empty() && b.alive) errors += "  " + b.name + ": last error: " + b.last_error + '\n';
  }
  return t.render() + errors;
}

Json to_json(const bridge::BridgeStatus& b) {
  return Json{{"name", b.name},
              {"direction", b.direction},
              {"pid", b.pid},
              {"alive", b.alive},
              {"connected", b.connected},
              {"server", b.server},
              {"stream", b.stream},
              {"subject", b.subject},
              {"consumer", b.consumer},
              {"group", b.group},
              {"forwarded", b.forwarded},
              {"acked", b.acked},
              {"in_flight", b.in_flight},
              {"retries", b.retries},
              {"dedup_hits", b.dedup_hits},
              {"lag", b.lag},
              {"reconnects", b.reconnects},
              {"queue_reopens", b.queue_reopens},
              {"updated_unix_ms", b.updated_unix_ms},
              {"last_error", b.last_error}};
}

}  // namespace ackring::cli
