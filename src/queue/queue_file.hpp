// Cold-path file handling: names, creation, opening, validation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ackring/options.hpp"
#include "shm/queue_state.hpp"

namespace ackring::detail {

// Directory of named queues: $ACKRING_SHM_DIR, else /dev/shm.
[[nodiscard]] std::filesystem::path shm_directory();
// Empty if `name` is a valid queue name, else why not.
[[nodiscard]] std::string validate_queue_name(std::string_view name);
[[nodiscard]] std::filesystem::path resolve_path(std::string_view name_or_path);
// The options a layout was created with (all but journal_dir and mode,
// which live outside the layout).
[[nodiscard]] QueueOptions options_from_layout(const Layout& layout);
[[nodiscard]] std::shared_ptr<QueueState> create_file(const std::filesystem::path& path, const QueueOptions& options);
// Recovery's hooks into creation: a journal id to keep, and a step that
// fills the file while it is still under its temporary name (so no process
// sees a half-recovered queue).
struct CreateExtras {
  std::uint64_t journal_id = 0;  // 0: a new id
  bool recovering = false;       // an existing journal is expected
  std::function<void(QueueState&)> before_link;
};
[[nodiscard]] std::shared_ptr<QueueState> create_file(const std::filesystem::path& path, const QueueOptions& options,
                                                      const CreateExtras& extras);
[[nodiscard]] std::shared_ptr<QueueState> open_file(const std::filesystem::path& path);
// Throws ackring::Error (corrupt / incompatible) unless the mapped file is a
// well-formed queue; on success fills q.layout and q.mask.
void validate(QueueState& q, std::string_view op);

}  // namespace ackring::detail
