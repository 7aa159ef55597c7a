// Queue: a move-only owner of one mapped queue file. Create, open and destroy
// are the cold path and throw ackring::Error with the file, operation and
// reason; producers and consumers made from it are the hot path.
//
// A queue is named by a name (file /dev/shm/ackring.<name>, or under
// $ACKRING_SHM_DIR when set) or by a path (anything containing '/').
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ackring/consumer.hpp"
#include "ackring/options.hpp"
#include "ackring/producer.hpp"
#include "ackring/stats.hpp"

namespace ackring {

namespace detail { struct QueueState; }

class Queue {
 public:
  // Builds the file under a temporary name and links it into place, so no
  // process ever maps a half-initialised queue. Throws already_exists.
  static Queue create(std::string_view name_or_path, const QueueOptions& options = {});
  // Maps an existing queue after validating magic, version, layout and header
  // checksum. Throws not_found, incompatible or corrupt.
  static Queue open(std::string_view name_or_path);
  // Opens the queue, or creates it with `options` if it does not exist.
  static Queue open_or_create(std::string_view name_or_path, const QueueOptions& options = {});
  // Unlinks the queue file. Processes that have it mapped keep working on
  // their mapping. Returns false if there was no such queue.
  static bool destroy(std::string_view name_or_path);
  // The file a name or path refers to; throws invalid_argument for a bad name.
  static std::filesystem::path resolve(std::string_view name_or_path);

  Queue(Queue&&) noexcept;
  Queue& operator=(Queue&&) noexcept;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ~Queue();

  // Registers a producer (pid + start time, for liveness and stats).
  [[nodiscard]] Producer producer();
  // Joins `group` as a competing member; creates the group if asked to.
  [[nodiscard]] Consumer consumer(std::string_view group, const ConsumerOptions& options = {});

  // Group management. create_group throws already_exists; remove_group
  // returns false if there was no such group.
  void create_group(std::string_view group, const GroupOptions& options = {});
  bool remove_group(std::string_view group);
  [[nodiscard]] std::vector<std::string> group_names() const;

  [[nodiscard]] QueueStats stats() const;
  [[nodiscard]] QueueOptions options() const;
  [[nodiscard]] const std::filesystem::path& path() const noexcept;

 private:
  explicit Queue(std::shared_ptr<detail::QueueState> state) noexcept;
  std::shared_ptr<detail::QueueState> state_;
};

}  // namespace ackring
