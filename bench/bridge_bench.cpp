// ackring-bridge-bench: messages per second through the NATS JetStream bridges, next
// to plain libnats loops against the same server in the same run.
//
// For bodies of 64 B and 1 KiB it measures:
//
//   js publish    plain libnats: js_PublishAsync of N messages (at most 512
//                 outstanding), then js_PublishAsyncComplete
//   bridge out    ackring::bridge::Outbound: N messages already in a queue
//                 group -> JetStream (512 outstanding publishes), each acked
//                 in the queue after its publish ack
//   js pull       plain libnats: a durable pull consumer, Fetch(256) and an
//                 ack per message, N messages
//   bridge in     ackring::bridge::Inbound: N messages already in the stream
//                 -> a queue, keyed publish, ack to JetStream after each
//
// nats-server (started here with -js on a loopback port) keeps its store
// under DIR, on the same disk for every case; the queue lives in /dev/shm as
// usual. Each case runs R rounds, interleaved so a drifting disk or a busy
// neighbour affects all alike; the table gives the median and the range.
//
//   ackring-bridge-bench [--messages N] [--rounds R] [--dir DIR] [--quick]
//
// DIR defaults to /var/tmp/ackring-bridge-bench (created and removed).
#include <nats/nats.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ackring/ackring.hpp"
#include "ackring/bridge.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ackring-bridge-bench: %s\n", what.c_str());
  std::exit(1);
}

void check(natsStatus s, const char* what) {
  if (s != NATS_OK) die(std::string(what) + ": " + natsStatus_GetText(s));
}

std::string find_nats_server() {
  for (const char* d : {"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"}) {
    const std::string p = std::string(d) + "/nats-server";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  die("nats-server not found (apt-get install nats-server)");
}

// nats-server -js on a port of its choosing (read back from its ports file).
class Server {
 public:
  explicit Server(const fs::path& dir) {
    fs::create_directories(dir / "store");
    fs::create_directories(dir / "ports");
    const std::string bin = find_nats_server();
    const std::string store = (dir / "store").string(), ports = (dir / "ports").string(),
                      log = (dir / "server.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl(bin.c_str(), bin.c_str(), "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", store.c_str(), "-l",
              log.c_str(), "--ports_file_dir", ports.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1000 && url_.empty(); ++i) {
      for (const auto& e : fs::directory_iterator(ports)) {
        std::ifstream in(e.path());
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string t = ss.str();
        const auto at = t.find("nats://");
        if (at != std::string::npos) url_ = t.substr(at, t.find('"', at) - at);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (url_.empty()) die("nats-server did not start; see " + log);
  }
  ~Server() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  [[nodiscard]] const std::string& url() const { return url_; }

 private:
  pid_t pid_ = 0;
  std::string url_;
};

struct Client {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  explicit Client(const std::string& url) {
    check(natsConnection_ConnectTo(&nc, url.c_str()), "connect");
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.MaxPending = 512;
    check(natsConnection_JetStream(&js, nc, &o), "jetstream");
  }
  ~Client() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
  void add_stream(const std::string& name) {
    const std::string subj = name + ".>";
    const char* subjects[] = {subj.c_str()};
    jsStreamConfig c;
    jsStreamConfig_Init(&c);
    c.Name = name.c_str();
    c.Subjects = subjects;
    c.SubjectsLen = 1;
    c.Storage = js_FileStorage;
    jsStreamInfo* si = nullptr;
    check(js_AddStream(&si, js, &c, nullptr, nullptr), "add stream");
    jsStreamInfo_Destroy(si);
  }
  void delete_stream(const std::string& name) { js_DeleteStream(js, name.c_str(), nullptr, nullptr); }
  void add_consumer(const std::string& stream, const std::string& durable) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.MaxAckPending = 20000;
    jsConsumerInfo* ci = nullptr;
    check(js_AddConsumer(&ci, js, stream.c_str(), &cc, nullptr, nullptr), "add consumer");
    jsConsumerInfo_Destroy(ci);
  }
};

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// js publish: N async publishes, then wait for every ack.
double plain_publish(Client& c, const std::string& stream, const std::string& body, int n) {
  const std::string subject = stream + ".m";
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i)
    check(js_PublishAsync(c.js, subject.c_str(), body.data(), static_cast<int>(body.size()), nullptr), "publish");
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60'000;
  check(js_PublishAsyncComplete(c.js, &po), "publish complete");
  return n / seconds_since(t0);
}

// js pull: fetch and ack N messages of a durable pull consumer.
double plain_pull(Client& c, const std::string& stream, const std::string& durable, int n) {
  c.add_consumer(stream, durable);
  natsSubscription* sub = nullptr;
  check(js_PullSubscribe(&sub, c.js, (stream + ".m").c_str(), durable.c_str(), nullptr, nullptr, nullptr), "pull sub");
  int got = 0;
  const auto t0 = Clock::now();
  while (got < n) {
    natsMsgList list{};
    if (natsSubscription_Fetch(&list, sub, 256, 5000, nullptr) != NATS_OK) die("fetch");
    for (int i = 0; i < list.Count; ++i) natsMsg_Ack(list.Msgs[i], nullptr);
    got += list.Count;
    natsMsgList_Destroy(&list);
  }
  natsConnection_Flush(c.nc);
  const double rate = n / seconds_since(t0);
  natsSubscription_Destroy(sub);
  return rate;
}

std::uint32_t pow2_at_least(std::uint64_t v) {
  std::uint32_t p = 2;
  while (p < v) p <<= 1;
  return p;
}

double bridge_out(const std::string& url, const std::string& stream, const std::string& body, int n) {
  const std::string qname = "bridge-bench-out-" + std::to_string(::getpid());
  ackring::Queue::destroy(qname);
  {
    auto q = ackring::Queue::create(qname, {.capacity = pow2_at_least(static_cast<std::uint64_t>(n)),
                                            .max_message_size = 1024});
    q.create_group("g");
    auto p = q.producer();
    for (int i = 0; i < n; ++i)
      if (!p.publish(body).ok()) die("queue publish");
  }
  ackring::bridge::OutboundOptions o;
  o.queue = qname;
  o.group = "g";
  o.stream = stream;
  o.subject = stream + ".m";
  o.nats.url = url;
  o.max_in_flight = 512;
  ackring::bridge::Outbound b(o);
  const auto t0 = Clock::now();
  b.run(static_cast<std::uint64_t>(n));
  const double rate = n / seconds_since(t0);
  ackring::Queue::destroy(qname);
  return rate;
}

double bridge_in(const std::string& url, const std::string& stream, const std::string& durable, int n) {
  const std::string qname = "bridge-bench-in-" + std::to_string(::getpid());
  ackring::Queue::destroy(qname);
  const std::uint32_t cap = pow2_at_least(static_cast<std::uint64_t>(n));
  auto q = ackring::Queue::create(qname, {.capacity = cap, .max_message_size = 1024, .dedup_entries = 2 * cap});
  q.create_group("g");
  ackring::bridge::InboundOptions o;
  o.queue = qname;
  o.stream = stream;
  o.consumer = durable;
  o.nats.url = url;
  ackring::bridge::Inbound b(o);
  const auto t0 = Clock::now();
  b.run(static_cast<std::uint64_t>(n));
  const double rate = n / seconds_since(t0);
  ackring::Queue::destroy(qname);
  return rate;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int n = 20000, rounds = 3;
  fs::path dir = "/var/tmp/ackring-bridge-bench";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--messages") n = std::stoi(next());
    else if (a == "--rounds") rounds = std::stoi(next());
    else if (a == "--dir") dir = next();
    else if (a == "--quick") n = 500, rounds = 1;
    else if (a == "-h" || a == "--help") {
      std::puts("usage: ackring-bridge-bench [--messages N] [--rounds R] [--dir DIR] [--quick]");
      return 0;
    } else {
      die("unknown argument '" + a + "'; see --help");
    }
  }
  if (n < 1 || rounds < 1) die("--messages and --rounds must be at least 1");
  dir /= std::to_string(::getpid());
  std::map<std::string, std::vector<double>> results;  // "<case> <size>" -> rates
  {
    Server server(dir);
    Client c(server.url());
    for (int r = 0; r < rounds; ++r) {
      for (const std::size_t size : {std::size_t{64}, std::size_t{1024}}) {
        const std::string body(size, 'x');
        const std::string tag = std::to_string(size) + "_" + std::to_string(r);
        const std::string plain = "PLAIN_" + tag, out = "OUT_" + tag;
        c.add_stream(plain);
        c.add_stream(out);
        results["js publish " + std::to_string(size)].push_back(plain_publish(c, plain, body, n));
        results["bridge out " + std::to_string(size)].push_back(bridge_out(server.url(), out, body, n));
        // Both pulls read the N messages the plain publish stored.
        results["js pull " + std::to_string(size)].push_back(plain_pull(c, plain, "P", n));
        results["bridge in " + std::to_string(size)].push_back(bridge_in(server.url(), plain, "B", n));
        c.delete_stream(plain);
        c.delete_stream(out);
      }
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::remove(dir.parent_path(), ec);  // only if no other run is using it (not empty: kept)
  utsname u{};
  ::uname(&u);
  std::printf("ackring-bridge-bench: %d messages per case, %d rounds (median, [min - max]); %s %s, %u cpus; store %s\n", n,
              rounds, u.sysname, u.release, std::thread::hardware_concurrency(), dir.parent_path().c_str());
  std::printf("%-12s %6s %14s %24s\n", "case", "bytes", "msgs/s", "range");
  for (const char* name : {"js publish", "bridge out", "js pull", "bridge in"})
    for (const int size : {64, 1024}) {
      const auto& v = results[std::string(name) + " " + std::to_string(size)];
      const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
      std::printf("%-12s %6d %14.0f   [%9.0f - %9.0f]\n", name, size, median(v), *lo, *hi);
    }
  return 0;
}
