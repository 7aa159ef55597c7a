// Cold-path file handling: names, creation, opening, validation.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "ackring/options.hpp"
#include "queue_state.hpp"

namespace ackring::detail {

// Directory of named queues: $ACKRING_SHM_DIR, else /dev/shm.
[[nodiscard]] std::filesystem::path shm_directory();
// Empty if `name` is a valid queue name, else why not.
[[nodiscard]] std::string validate_queue_name(std::string_view name);
[[nodiscard]] std::filesystem::path resolve_path(std::string_view name_or_path);
[[nodiscard]] std::shared_ptr<QueueState> create_file(const std::filesystem::path& path, const QueueOptions& options);
[[nodiscard]] std::shared_ptr<QueueState> open_file(const std::filesystem::path& path);
// Throws ackring::Error (corrupt / incompatible) unless the mapped file is a
// well-formed queue; on success fills q.layout and q.mask.
void validate(QueueState& q, std::string_view op);

}  // namespace ackring::detail
