// How stat, metrics and top show the bridges of a queue: they read the
// bridges' status files (include/ackring/bridge_status.hpp) next to the queue
// file; a queue without bridges shows nothing extra.
#pragma once

#include <ackring/bridge_status.hpp>

#include <string>
#include <vector>

#include "format.hpp"

namespace ackring::cli {

// The bridges of the queue file at `queue_path` (alive or left by a dead bridge).
[[nodiscard]] std::vector<bridge::BridgeStatus> bridges_of(const std::string& queue_path);

// A table, one bridge per row ("" when there are none). `rates_from`: an
// earlier reading for per-second rates (top), with `seconds` between them.
[[nodiscard]] std::string render_bridges(const std::vector<bridge::BridgeStatus>& bridges,
                                         const std::vector<bridge::BridgeStatus>* rates_from = nullptr,
                                         double seconds = 0);

[[nodiscard]] Json to_json(const bridge::BridgeStatus& b);

}  // namespace ackring::cli
