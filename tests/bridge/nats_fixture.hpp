// A real nats-server for the bridge tests: started with JetStream on a
// loopback port it picks itself (-p -1; the port is read back from the ports
// file it writes), with a fresh temporary store directory, stopped by its pid
// and always reaped. restart() brings it back on the same port with the same
// store, as an operator's restart would. Plus a small JetStream client for
// the tests' own set-up and checks (create a stream, read it back).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ackring/bridge_status.hpp"
#include "process_util.hpp"

namespace ackring::testing {

// The nats-server binary, or empty if it is not installed (the tests skip).
inline std::string nats_server_binary() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) dirs.push_back(d);
  }
  for (const char* d : {"/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"}) dirs.emplace_back(d);
  for (const auto& d : dirs) {
    const std::string p = d + "/nats-server";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

inline std::string random_nonce() {
  std::random_device rd;
  std::ostringstream o;
  o << std::hex << ((std::uint64_t{rd()} << 32) | rd());
  return o.str();
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class NatsServer {
 public:
  NatsServer() {
    binary_ = nats_server_binary();
    dir_ = std::filesystem::temp_directory_path() / ("ackring-nats-" + std::to_string(::getpid()) + "-" + random_nonce());
    std::filesystem::create_directories(dir_ / "store");
  }
  ~NatsServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  [[nodiscard]] bool available() const { return !binary_.empty(); }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  // Starts the server (first time: on a port of its choosing) and waits until
  // it accepts connections. Returns false (with a reason in `why`) on failure.
  bool start(std::string* why = nullptr) {
    const std::string port_arg = port_ == 0 ? "-1" : std::to_string(port_);
    const std::string log = (dir_ / "server.log").string();
    const std::string ports_dir = (dir_ / "ports").string();
    std::filesystem::remove_all(ports_dir);
    std::filesystem::create_directories(ports_dir);
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return fail(why, "fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      if (::getppid() != parent) ::_exit(121);
      const std::string store = (dir_ / "store").string();
      ::execl(binary_.c_str(), binary_.c_str(), "-js", "-a", "127.0.0.1", "-p", port_arg.c_str(), "-sd",
              store.c_str(), "-l", log.c_str(), "--ports_file_dir", ports_dir.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pid_ = pid;
    // Wait for the ports file (written once it listens), then for a client connection.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return fail(why, "nats-server exited at start (" + describe_wait_status(status) + "): " + read_text(log));
      }
      if (port_ == 0) port_ = read_port(ports_dir);
      if (port_ != 0 && can_connect()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return fail(why, "nats-server did not accept connections within 20 s: " + read_text(log));
  }

  // SIGTERM (a clean shutdown, as a service manager does), then SIGKILL if it hangs; always reaped.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = 0;
  }

  bool restart(std::string* why = nullptr) {
    stop();
    // The same port: clients reconnect to the URL they know. Another process
    // could take the port meanwhile; a few tries ride out TIME_WAIT and such.
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (start(why)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

 private:
  static bool fail(std::string* why, const std::string& text) {
    if (why != nullptr) *why = text;
    return false;
  }
  static int read_port(const std::string& ports_dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(ports_dir, ec)) {
      const std::string text = read_text(e.path());
      const auto at = text.find("nats://");
      if (at == std::string::npos) continue;
      const auto colon = text.find(':', at + 7);
      if (colon == std::string::npos) continue;
      return std::atoi(text.c_str() + colon + 1);
    }
    return 0;
  }
  bool can_connect() const {
    natsConnection* nc = nullptr;
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url().c_str());
    natsOptions_SetTimeout(o, 500);
    const bool ok = natsConnection_Connect(&nc, o) == NATS_OK;
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return ok;
  }

  std::string binary_;
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

// A JetStream client for the tests' set-up and checks. Every call retries
// for a while: JetStream takes a moment to be ready after a (re)start.
class JsClient {
 public:
  explicit JsClient(const std::string& url) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 50);
    ok_ = natsConnection_Connect(&nc_, o) == NATS_OK;
    natsOptions_Destroy(o);
    if (ok_) ok_ = natsConnection_JetStream(&js_, nc_, nullptr) == NATS_OK;
  }
  ~JsClient() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  JsClient(const JsClient&) = delete;
  JsClient& operator=(const JsClient&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] jsCtx* js() const { return js_; }

  // A file-backed stream with a 2-minute duplicate window (the default).
  bool add_stream(const std::string& name, const std::string& subjects, std::int32_t max_msg_size = -1) {
    const char* subj[] = {subjects.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = 120'000'000'000LL;
    if (max_msg_size > 0) cfg.MaxMsgSize = max_msg_size;
    return retry([&] {
      jsStreamInfo* si = nullptr;
      const bool ok = js_AddStream(&si, js_, &cfg, nullptr, nullptr) == NATS_OK;
      jsStreamInfo_Destroy(si);
      return ok;
    });
  }

  bool add_pull_consumer(const std::string& stream, const std::string& durable, std::int64_t ack_wait_ms) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = ack_wait_ms * 1'000'000;
    cc.MaxDeliver = -1;
    return retry([&] {
      jsConsumerInfo* ci = nullptr;
      const bool ok = js_AddConsumer(&ci, js_, stream.c_str(), &cc, nullptr, nullptr) == NATS_OK;
      jsConsumerInfo_Destroy(ci);
      return ok;
    });
  }

  bool delete_consumer(const std::string& stream, const std::string& durable) {
    return js_DeleteConsumer(js_, stream.c_str(), durable.c_str(), nullptr, nullptr) == NATS_OK;
  }

  // With a msg id, a retry after a lost publish ack (a server restarting)
  // cannot store the message twice.
  bool publish(const std::string& subject, const std::string& body, const std::string& msg_id = {}) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    if (!msg_id.empty()) po.MsgId = msg_id.c_str();
    return retry([&] {
      return js_Publish(nullptr, js_, subject.c_str(), body.data(), static_cast<int>(body.size()), &po,
                        nullptr) == NATS_OK;
    });
  }

  // (messages, last seq) of a stream, nullopt if it cannot be read.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> stream_state(const std::string& stream) {
    std::optional<std::pair<std::uint64_t, std::uint64_t>> out;
    retry([&] {
      jsStreamInfo* si = nullptr;
      if (js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, nullptr) != NATS_OK) return false;
      out.emplace(si->State.Msgs, si->State.LastSeq);
      jsStreamInfo_Destroy(si);
      return true;
    });
    return out;
  }

  // (pending, ack pending) of a consumer.
  std::optional<std::pair<std::uint64_t, std::int64_t>> consumer_state(const std::string& stream,
                                                                        const std::string& durable) {
    std::optional<std::pair<std::uint64_t, std::int64_t>> out;
    retry([&] {
      jsConsumerInfo* ci = nullptr;
      if (js_GetConsumerInfo(&ci, js_, stream.c_str(), durable.c_str(), nullptr, nullptr) != NATS_OK) return false;
      out.emplace(ci->NumPending, ci->NumAckPending);
      jsConsumerInfo_Destroy(ci);
      return true;
    });
    return out;
  }

  // Every message body in the stream, with its Nats-Msg-Id header.
  std::vector<std::pair<std::string, std::string>> read_all(const std::string& stream) {
    std::vector<std::pair<std::string, std::string>> out;
    const auto state = stream_state(stream);
    if (!state) return out;
    for (std::uint64_t seq = 1; seq <= state->second; ++seq) {
      natsMsg* m = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      const natsStatus s = js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, &jerr);
      if (s != NATS_OK) continue;  // a deleted seq
      const char* id = nullptr;
      natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
      out.emplace_back(std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))),
                       id != nullptr ? id : "");
      natsMsg_Destroy(m);
    }
    return out;
  }

 private:
  template <class F>
  static bool retry(F&& f) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (;;) {
      if (f()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  bool ok_ = false;
};

// Runs the ackring CLI with `args`, its stderr into `log`. The child dies
// with the test (PDEATHSIG) and is SIGKILLed and reaped if left running.
inline Child run_cli(const std::vector<std::string>& args, const std::filesystem::path& log) {
  return fork_child([&] {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::dup2(fd, 1);
    }
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(ACKRING_CLI_PATH));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(ACKRING_CLI_PATH, argv.data());
    return 127;
  });
}

// The status of the bridge with process id `pid` on `queue_file`, if it wrote one.
inline std::optional<bridge::BridgeStatus> bridge_status_of(const std::string& queue_file, pid_t pid) {
  for (auto& s : bridge::read_bridge_statuses(queue_file))
    if (s.pid == pid) return s;
  return std::nullopt;
}

// One line for a failure message: what a bridge's status file says.
inline std::string describe_bridges(const std::string& queue_file) {
  std::string out;
  for (const auto& s : bridge::read_bridge_statuses(queue_file))
    out += "bridge " + s.name + " pid " + std::to_string(s.pid) + (s.alive ? " alive" : " dead") +
           ": forwarded " + std::to_string(s.forwarded) + " acked " + std::to_string(s.acked) + " in_flight " +
           std::to_string(s.in_flight) + " retries " + std::to_string(s.retries) + " dedup_hits " +
           std::to_string(s.dedup_hits) + " reconnects " + std::to_string(s.reconnects) + " lag " +
           std::to_string(s.lag) + " last_error '" + s.last_error + "'\n";
  return out;
}

// Waits (up to `timeout`, which only detects a hang) until `pred` holds.
template <class P>
bool wait_until(P&& pred, std::chrono::seconds timeout = std::chrono::seconds(40)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Removes the status files bridges left next to a queue (a SIGKILLed bridge
// cannot remove its own).
class BridgeFilesCleanup {
 public:
  explicit BridgeFilesCleanup(std::filesystem::path queue_file) : queue_file_(std::move(queue_file)) {}
  ~BridgeFilesCleanup() {
    const std::string prefix = "." + queue_file_.filename().string() + ".bridge-";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(queue_file_.parent_path(), ec))
      if (e.path().filename().string().starts_with(prefix)) std::filesystem::remove(e.path(), ec);
  }
  BridgeFilesCleanup(const BridgeFilesCleanup&) = delete;
  BridgeFilesCleanup& operator=(const BridgeFilesCleanup&) = delete;

 private:
  std::filesystem::path queue_file_;
};

// A test with its own nats-server (JetStream on) and a client of it; the
// stream `stream` on `subjects` is created first unless `stream` is empty.
// Skipped when nats-server is not installed.
class JetStreamTest : public ::testing::Test {
 protected:
  void start(const std::string& stream, const std::string& subjects) {
    if (!server_.available()) GTEST_SKIP() << "nats-server is not installed (tools/setup.sh installs it)";
    std::string why;
    ASSERT_TRUE(server_.start(&why)) << why;
    js_.emplace(server_.url());
    ASSERT_TRUE(js_->ok());
    if (!stream.empty()) ASSERT_TRUE(js_->add_stream(stream, subjects));
    log_ = server_.dir() / "bridge.log";
  }

  NatsServer server_;
  std::optional<JsClient> js_;
  std::filesystem::path log_;
};

}  // namespace ackring::testing
