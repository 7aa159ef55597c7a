// The transports the multi-process benchmark drives: ackring and its peers.
//
// Each transport T has the same shape, so the driver is one template and no
// virtual call sits in a timed loop:
//   T(const Params&, int channels)  in the parent, before fork: creates the
//                                   channels' resources (files, fds, queues)
//   ~T()                            in the parent: removes them
//   T::Tx(T&, int ch).send(data, n) in a child: one message, waits while full
//   T::Rx(T&, int ch).recv(f)       in a child: waits (blocking or busy-poll)
//                                   until at least one message is there, calls
//                                   f(data, n) for each it takes, returns how many
// Channel 0 carries producer -> consumer (and pings); channel 1 carries pongs.
#pragma once

#include <fcntl.h>
#include <mqueue.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ackring/ackring.hpp"
#include "common.hpp"
#include "spsc_ring.hpp"

namespace ackring_bench {

struct Params {
  std::string tag;               // unique per transport instance, e.g. "ackring-bench.1234.7"
  std::uint32_t size = 64;       // payload bytes of every message
  std::uint32_t capacity = 4096; // slots of the rings (ackring, spsc, boost mq)
  std::uint32_t batch = 32;      // most messages one recv() takes (where the transport can batch)
  std::uint32_t publish_batch = 1;  // ackring modes: messages per publish call (> 1: publish_batch)
  bool poll = false;             // receivers busy-poll instead of sleeping in the kernel
  ackring::DeliveryMode mode = ackring::DeliveryMode::at_least_once;
  std::optional<std::chrono::microseconds> spin;  // ackring ConsumerOptions::spin (unset: library default)
  std::chrono::microseconds linger{0};            // ackring ConsumerOptions::linger (the modes rows)
  long mq_maxmsg = 10;           // POSIX mq depth
};

// ------------------------------------------------------------------ ackring --
class AckringTransport {
 public:
  AckringTransport(const Params& p, int channels) : p_(p) {
    for (int ch = 0; ch < channels; ++ch) {
      const std::string path = "/dev/shm/" + p.tag + ".ackring." + std::to_string(ch);
      Cleanup::add(Cleanup::Kind::file, path);
      Cleanup::add(Cleanup::Kind::file, ackring::dead_letter_queue_of(path));
      ackring::QueueOptions o;
      o.capacity = p.capacity;
      o.max_message_size = p.size;
      auto q = ackring::Queue::create(path, o);
      q.create_group("bench");  // before any publish: the group sees every message
      paths_.push_back(path);
    }
  }
  ~AckringTransport() {
    for (const auto& path : paths_) {
      Cleanup::remove(Cleanup::Kind::file, ackring::dead_letter_queue_of(path));
      Cleanup::remove(Cleanup::Kind::file, path);
    }
  }
  AckringTransport(const AckringTransport&) = delete;
  AckringTransport& operator=(const AckringTransport&) = delete;

  class Tx {
   public:
    Tx(AckringTransport& t, int ch) : q_(ackring::Queue::open(t.paths_.at(ch))), prod_(q_.producer()) {}
    void send(const std::byte* data, std::uint32_t n) {
      const auto r = prod_.publish(ackring::Bytes(data, n));
      if (!r.ok()) throw std::runtime_error("ackring publish: " + std::string(ackring::to_string(r.status)));
    }

   private:
    ackring::Queue q_;
    ackring::Producer prod_;
  };

  class Rx {
   public:
    Rx(AckringTransport& t, int ch)
        : q_(ackring::Queue::open(t.paths_.at(ch))),
          cons_(q_.consumer("bench", options(t.p_))),
          ack_(t.p_.mode == ackring::DeliveryMode::at_least_once),
          buf_(t.p_.batch) {}

    template <class F>
    std::size_t recv(F&& f) {
      if (buf_.size() == 1) {
        auto d = cons_.receive(std::chrono::seconds(1));
        if (!d) return 0;
        f(d->payload().data(), static_cast<std::uint32_t>(d->payload().size()));
        if (ack_ && cons_.ack(*d) != ackring::Status::ok) throw std::runtime_error("ackring ack failed");
        return 1;
      }
      const std::size_t n = cons_.receive_batch(buf_, std::chrono::seconds(1));
      for (std::size_t i = 0; i < n; ++i)
        f(buf_[i].payload().data(), static_cast<std::uint32_t>(buf_[i].payload().size()));
      // Cumulative ack: settles each lease, advances the floor once.
      if (ack_ && n != 0 && cons_.ack_batch(std::span(buf_.data(), n)) != n)
        throw std::runtime_error("ackring ack_batch lost leases");
      return n;
    }

   private:
    static ackring::ConsumerOptions options(const Params& p) {
      ackring::ConsumerOptions o;
      o.mode = p.mode;
      o.create_group = false;
      if (p.spin) o.spin = *p.spin;
      return o;
    }
    ackring::Queue q_;
    ackring::Consumer cons_;
    bool ack_;
    std::vector<ackring::Delivery> buf_;
  };

 private:
  Params p_;
  std::vector<std::string> paths_;
};

// ------------------------------------------------------------ bare SPSC ring --
class SpscTransport {
 public:
  SpscTransport(const Params& p, int channels) : p_(p) {
    for (int ch = 0; ch < channels; ++ch) {
      const std::string path = "/dev/shm/" + p.tag + ".spsc." + std::to_string(ch);
      Cleanup::add(Cleanup::Kind::file, path);
      const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) throw_errno("open " + path);
      const bool ok = ::ftruncate(fd, static_cast<off_t>(spsc_bytes(p.capacity, p.size))) == 0;
      ::close(fd);
      if (!ok) throw_errno("ftruncate " + path);
      paths_.push_back(path);
    }
  }
  ~SpscTransport() {
    for (const auto& path : paths_) Cleanup::remove(Cleanup::Kind::file, path);
  }
  SpscTransport(const SpscTransport&) = delete;
  SpscTransport& operator=(const SpscTransport&) = delete;

  // Maps the ring's file in a child.
  class Mapping {
   public:
    Mapping(const std::string& path, std::size_t bytes) : bytes_(bytes) {
      const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) throw_errno("open " + path);
      base_ = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
      ::close(fd);
      if (base_ == MAP_FAILED) throw_errno("mmap " + path);
    }
    ~Mapping() { ::munmap(base_, bytes_); }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    [[nodiscard]] void* base() const noexcept { return base_; }

   private:
    void* base_ = nullptr;
    std::size_t bytes_;
  };

  class Tx {
   public:
    Tx(SpscTransport& t, int ch)
        : map_(t.paths_.at(ch), spsc_bytes(t.p_.capacity, t.p_.size)), ring_(map_.base(), t.p_.capacity, t.p_.size) {}
    void send(const std::byte* data, std::uint32_t n) noexcept {
      while (!ring_.try_push(data, n)) cpu_relax();
    }

   private:
    Mapping map_;
    SpscProducer ring_;
  };

  class Rx {
   public:
    Rx(SpscTransport& t, int ch)
        : map_(t.paths_.at(ch), spsc_bytes(t.p_.capacity, t.p_.size)),
          ring_(map_.base(), t.p_.capacity, t.p_.size),
          batch_(t.p_.batch) {}
    template <class F>
    std::size_t recv(F&& f) {
      std::uint32_t n = 0;
      const std::byte* d;
      while ((d = ring_.front(&n)) == nullptr) cpu_relax();
      std::size_t got = 0;
      do {
        f(d, n);
        ring_.pop();
      } while (++got < batch_ && (d = ring_.front(&n)) != nullptr);
      return got;
    }

   private:
    Mapping map_;
    SpscConsumer ring_;
    std::size_t batch_;
  };

 private:
  Params p_;
  std::vector<std::string> paths_;
};

// Waits for `fd` to be readable by spinning on EAGAIN (poll mode) or in the kernel.
inline void set_nonblocking(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) throw_errno("fcntl O_NONBLOCK");
}

// -------------------------------------------------- Unix domain SOCK_SEQPACKET --
// One socketpair per channel: message boundaries kept by the kernel, one
// send(2) and one recv(2) per message. Default socket buffer sizes.
class UdsTransport {
 public:
  UdsTransport(const Params& p, int channels) : p_(p) {
    for (int ch = 0; ch < channels; ++ch) {
      std::array<int, 2> sv{};
      if (::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv.data()) != 0) throw_errno("socketpair");
      fds_.push_back(sv);
    }
  }
  ~UdsTransport() {
    for (auto& sv : fds_) ::close(sv[0]), ::close(sv[1]);
  }
  UdsTransport(const UdsTransport&) = delete;
  UdsTransport& operator=(const UdsTransport&) = delete;

  class Tx {
   public:
    Tx(UdsTransport& t, int ch) : fd_(t.fds_.at(ch)[0]) {}
    void send(const std::byte* data, std::uint32_t n) {
      while (::send(fd_, data, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n))
        if (errno != EINTR) throw_errno("send");
    }

   private:
    int fd_;
  };

  class Rx {
   public:
    Rx(UdsTransport& t, int ch) : fd_(t.fds_.at(ch)[1]), flags_(t.p_.poll ? MSG_DONTWAIT : 0), buf_(t.p_.size) {}
    template <class F>
    std::size_t recv(F&& f) {
      for (;;) {
        const ssize_t r = ::recv(fd_, buf_.data(), buf_.size(), flags_);
        if (r >= 0) {
          f(buf_.data(), static_cast<std::uint32_t>(r));
          return 1;
        }
        if (errno == EAGAIN) cpu_relax();
        else if (errno != EINTR) throw_errno("recv");
      }
    }

   private:
    int fd_;
    int flags_;
    std::vector<std::byte> buf_;
  };

 private:
  Params p_;
  std::vector<std::array<int, 2>> fds_;
};

// ------------------------------------------------------------------- pipe --
// A byte stream, so messages are framed: [u32 length][payload], one write(2)
// per message. The reader reads into a 64 KiB buffer and hands out every
// whole frame it holds, as a real stream consumer would.
class PipeTransport {
 public:
  PipeTransport(const Params& p, int channels) : p_(p) {
    for (int ch = 0; ch < channels; ++ch) {
      std::array<int, 2> fd{};
      if (::pipe2(fd.data(), O_CLOEXEC) != 0) throw_errno("pipe2");
      fds_.push_back(fd);
    }
  }
  ~PipeTransport() {
    for (auto& fd : fds_) ::close(fd[0]), ::close(fd[1]);
  }
  PipeTransport(const PipeTransport&) = delete;
  PipeTransport& operator=(const PipeTransport&) = delete;

  class Tx {
   public:
    Tx(PipeTransport& t, int ch) : fd_(t.fds_.at(ch)[1]), frame_(4 + t.p_.size) {}
    void send(const std::byte* data, std::uint32_t n) {
      std::memcpy(frame_.data(), &n, 4);
      std::memcpy(frame_.data() + 4, data, n);
      std::size_t off = 0;
      const std::size_t total = 4 + std::size_t{n};
      while (off < total) {
        const ssize_t w = ::write(fd_, frame_.data() + off, total - off);
        if (w > 0) off += static_cast<std::size_t>(w);
        else if (errno != EINTR) throw_errno("write pipe");
      }
    }

   private:
    int fd_;
    std::vector<std::byte> frame_;
  };

  class Rx {
   public:
    Rx(PipeTransport& t, int ch) : fd_(t.fds_.at(ch)[0]), buf_(std::max<std::size_t>(65536, 8 + 2 * t.p_.size)) {
      if (t.p_.poll) set_nonblocking(fd_);
    }
    template <class F>
    std::size_t recv(F&& f) {
      while (!whole_frame()) fill();
      std::size_t got = 0;
      while (whole_frame()) {
        std::uint32_t n;
        std::memcpy(&n, buf_.data() + head_, 4);
        f(buf_.data() + head_ + 4, n);
        head_ += 4 + std::size_t{n};
        ++got;
      }
      return got;
    }

   private:
    [[nodiscard]] bool whole_frame() const noexcept {
      if (tail_ - head_ < 4) return false;
      std::uint32_t n;
      std::memcpy(&n, buf_.data() + head_, 4);
      return tail_ - head_ >= 4 + std::size_t{n};
    }
    void fill() {
      if (head_ != 0) {  // keep the partial frame at the front
        std::memmove(buf_.data(), buf_.data() + head_, tail_ - head_);
        tail_ -= head_;
        head_ = 0;
      }
      const ssize_t r = ::read(fd_, buf_.data() + tail_, buf_.size() - tail_);
      if (r > 0) tail_ += static_cast<std::size_t>(r);
      else if (r == 0) throw std::runtime_error("pipe closed");
      else if (errno == EAGAIN) cpu_relax();
      else if (errno != EINTR) throw_errno("read pipe");
    }
    int fd_;
    std::vector<std::byte> buf_;
    std::size_t head_ = 0, tail_ = 0;
  };

 private:
  Params p_;
  std::vector<std::array<int, 2>> fds_;
};

// ------------------------------------------------------- POSIX message queue --
class MqTransport {
 public:
  MqTransport(const Params& p, int channels) : p_(p) {
    for (int ch = 0; ch < channels; ++ch) {
      const std::string name = "/" + p.tag + ".mq." + std::to_string(ch);
      Cleanup::add(Cleanup::Kind::mqueue, name);
      mq_attr attr{};
      attr.mq_maxmsg = p.mq_maxmsg;
      attr.mq_msgsize = p.size;
      const mqd_t q = ::mq_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr);
      if (q == static_cast<mqd_t>(-1))
        throw_errno("mq_open " + name + " (maxmsg " + std::to_string(p.mq_maxmsg) + ", msgsize " +
                    std::to_string(p.size) + "; see /proc/sys/fs/mqueue)");
      ::mq_close(q);
      names_.push_back(name);
    }
  }
  ~MqTransport() {
    for (const auto& name : names_) Cleanup::remove(Cleanup::Kind::mqueue, name);
  }
  MqTransport(const MqTransport&) = delete;
  MqTransport& operator=(const MqTransport&) = delete;

  class Tx {
   public:
    Tx(MqTransport& t, int ch) : q_(::mq_open(t.names_.at(ch).c_str(), O_WRONLY | O_CLOEXEC)) {
      if (q_ == static_cast<mqd_t>(-1)) throw_errno("mq_open " + t.names_.at(ch));
    }
    ~Tx() { ::mq_close(q_); }
    Tx(const Tx&) = delete;
    Tx& operator=(const Tx&) = delete;
    void send(const std::byte* data, std::uint32_t n) {
      while (::mq_send(q_, reinterpret_cast<const char*>(data), n, 0) != 0)
        if (errno != EINTR) throw_errno("mq_send");
    }

   private:
    mqd_t q_;
  };

  class Rx {
   public:
    Rx(MqTransport& t, int ch)
        : q_(::mq_open(t.names_.at(ch).c_str(), O_RDONLY | O_CLOEXEC | (t.p_.poll ? O_NONBLOCK : 0))),
          buf_(t.p_.size) {
      if (q_ == static_cast<mqd_t>(-1)) throw_errno("mq_open " + t.names_.at(ch));
    }
    ~Rx() { ::mq_close(q_); }
    Rx(const Rx&) = delete;
    Rx& operator=(const Rx&) = delete;
    template <class F>
    std::size_t recv(F&& f) {
      for (;;) {
        const ssize_t r = ::mq_receive(q_, reinterpret_cast<char*>(buf_.data()), buf_.size(), nullptr);
        if (r >= 0) {
          f(buf_.data(), static_cast<std::uint32_t>(r));
          return 1;
        }
        if (errno == EAGAIN) cpu_relax();
        else if (errno != EINTR) throw_errno("mq_receive");
      }
    }

   private:
    mqd_t q_;
    std::vector<std::byte> buf_;
  };

 private:
  Params p_;
  std::vector<std::string> names_;
};

// ------------------------------------------- Boost.Interprocess message_queue --
// A process-shared mutex + two condition variables around a ring of
// fixed-size messages in a shm object (/dev/shm/<name>).
class BoostMqTransport {
 public:
  using message_queue = boost::interprocess::message_queue;

  BoostMqTransport(const Params& p, int channels) : p_(p) {
    for (int ch = 0; ch < channels; ++ch) {
      const std::string name = p.tag + ".boost." + std::to_string(ch);
      Cleanup::add(Cleanup::Kind::shm, "/" + name);
      message_queue q(boost::interprocess::create_only, name.c_str(), p.capacity, p.size);
      names_.push_back(name);
    }
  }
  ~BoostMqTransport() {
    for (const auto& name : names_) {
      message_queue::remove(name.c_str());
      Cleanup::remove(Cleanup::Kind::shm, "/" + name);
    }
  }
  BoostMqTransport(const BoostMqTransport&) = delete;
  BoostMqTransport& operator=(const BoostMqTransport&) = delete;

  class Tx {
   public:
    Tx(BoostMqTransport& t, int ch) : q_(boost::interprocess::open_only, t.names_.at(ch).c_str()) {}
    void send(const std::byte* data, std::uint32_t n) { q_.send(data, n, 0); }

   private:
    message_queue q_;
  };

  class Rx {
   public:
    Rx(BoostMqTransport& t, int ch)
        : q_(boost::interprocess::open_only, t.names_.at(ch).c_str()), poll_(t.p_.poll), buf_(t.p_.size) {}
    template <class F>
    std::size_t recv(F&& f) {
      message_queue::size_type got = 0;
      unsigned prio = 0;
      if (poll_) {
        while (!q_.try_receive(buf_.data(), buf_.size(), got, prio)) cpu_relax();
      } else {
        q_.receive(buf_.data(), buf_.size(), got, prio);
      }
      f(buf_.data(), static_cast<std::uint32_t>(got));
      return 1;
    }

   private:
    message_queue q_;
    bool poll_;
    std::vector<std::byte> buf_;
  };

 private:
  Params p_;
  std::vector<std::string> names_;
};

}  // namespace ackring_bench
