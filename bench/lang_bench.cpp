// ackring-lang-bench: what a call costs through each language binding, in
// one run: the C++ API, the C API (libackring_c) and the Python package
// (through bench/lang_bench.py, run by this program), each on a queue of its
// own, one thread, no other process.
//
// Rows: publish (try_publish of a 64-byte payload) and receive + ack
// (try_receive then ack). A round publishes `n` messages into an empty ring
// of n slots, then receives and acks all n; each row's figure is the median
// over the rounds of (round time / n), after warm-up rounds. The C++ figure
// is the floor; the C and Python columns show what each layer adds.
//
// Usage: ackring-lang-bench [--rounds R] [--n N] [--cpu C] [--quick] [--json FILE]
#include <ackring/ackring.h>
#include <ackring/ackring.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common.hpp"

namespace {

constexpr std::size_t kPayload = 64;

struct Config {
  int rounds = 21;
  int warmup = 3;
  std::uint32_t n = 4096;  // a power of two: the ring's capacity
  int cpu = -1;
  std::string json_path;
};

struct Row {
  std::vector<double> publish_ns;      // per round, ns per message
  std::vector<double> receive_ack_ns;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string unique_path(const char* what) {
  std::random_device entropy;
  std::ostringstream s;
  s << "/dev/shm/ackring-lang-bench." << ::getpid() << "." << std::hex << entropy() << "." << what;
  return s.str();
}

// Removes the queue file when the run ends, whatever happens.
struct QueueFile {
  std::string path;
  ~QueueFile() { ackring::Queue::destroy(path); }
};

Row bench_cpp(const Config& cfg) {
  QueueFile file{unique_path("cpp")};
  auto q = ackring::Queue::create(file.path, {.capacity = cfg.n, .max_message_size = 256});
  q.create_group("g");
  auto consumer = q.consumer("g");
  auto producer = q.producer();
  const std::vector<std::byte> payload(kPayload, std::byte{1});
  Row row;
  for (int r = 0; r < cfg.warmup + cfg.rounds; ++r) {
    const auto t0 = ackring_bench::now_ns();
    for (std::uint32_t i = 0; i < cfg.n; ++i)
      if (!producer.try_publish(ackring::Bytes(payload)).ok()) throw std::runtime_error("C++: publish failed");
    const auto t1 = ackring_bench::now_ns();
    for (std::uint32_t i = 0; i < cfg.n; ++i) {
      auto d = consumer.try_receive();
      if (!d || consumer.ack(*d) != ackring::Status::ok) throw std::runtime_error("C++: receive/ack failed");
    }
    const auto t2 = ackring_bench::now_ns();
    if (r < cfg.warmup) continue;
    row.publish_ns.push_back(static_cast<double>(t1 - t0) / cfg.n);
    row.receive_ack_ns.push_back(static_cast<double>(t2 - t1) / cfg.n);
  }
  return row;
}

Row bench_c(const Config& cfg) {
  QueueFile file{unique_path("c")};
  ackring_queue_options o;
  ackring_queue_options_init(&o);
  o.capacity = cfg.n;
  o.max_message_size = 256;
  ackring_queue* q = nullptr;
  ackring_consumer* c = nullptr;
  ackring_producer* p = nullptr;
  if (ackring_queue_create(file.path.c_str(), &o, &q) != ACKRING_OK ||
      ackring_queue_create_group(q, "g", nullptr) != ACKRING_OK ||
      ackring_queue_consumer(q, "g", nullptr, &c) != ACKRING_OK || ackring_queue_producer(q, &p) != ACKRING_OK)
    throw std::runtime_error(std::string("C: ") + ackring_last_error());
  const std::vector<unsigned char> payload(kPayload, 1);
  Row row;
  ackring_message m;
  for (int r = 0; r < cfg.warmup + cfg.rounds; ++r) {
    const auto t0 = ackring_bench::now_ns();
    for (std::uint32_t i = 0; i < cfg.n; ++i)
      if (ackring_publish(p, payload.data(), payload.size(), 0, nullptr) != ACKRING_OK)
        throw std::runtime_error(std::string("C: publish: ") + ackring_last_error());
    const auto t1 = ackring_bench::now_ns();
    for (std::uint32_t i = 0; i < cfg.n; ++i)
      if (ackring_receive(c, &m, 0) != ACKRING_OK || ackring_ack(c, &m) != ACKRING_OK)
        throw std::runtime_error(std::string("C: receive/ack: ") + ackring_last_error());
    const auto t2 = ackring_bench::now_ns();
    if (r < cfg.warmup) continue;
    row.publish_ns.push_back(static_cast<double>(t1 - t0) / cfg.n);
    row.receive_ack_ns.push_back(static_cast<double>(t2 - t1) / cfg.n);
  }
  ackring_producer_close(p);
  ackring_consumer_close(c);
  ackring_queue_close(q);
  return row;
}

// Runs bench/lang_bench.py with the built package; nullopt (with a reason)
// when the Python package was not built.
std::optional<Row> bench_python(const Config& cfg, [[maybe_unused]] std::string& why_not) {
#ifdef ACKRING_LANG_BENCH_PYTHON
  const std::string path = unique_path("py");
  QueueFile file{path};
  const std::string command = std::string("PYTHONPATH='") + ACKRING_LANG_BENCH_PYTHONPATH + "' '" +
                              ACKRING_LANG_BENCH_PYTHON + "' '" + ACKRING_LANG_BENCH_SCRIPT + "' '" + path + "' " +
                              std::to_string(cfg.n) + " " + std::to_string(cfg.warmup) + " " +
                              std::to_string(cfg.rounds);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen of the Python benchmark failed");
  std::string out;
  char buf[4096];
  while (std::size_t got = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, got);
  if (const int rc = ::pclose(pipe); rc != 0) throw std::runtime_error("the Python benchmark failed: " + command);
  const auto j = nlohmann::json::parse(out);
  Row row;
  row.publish_ns = j.at("publish_ns").get<std::vector<double>>();
  row.receive_ack_ns = j.at("receive_ack_ns").get<std::vector<double>>();
  return row;
#else
  (void)cfg;
  why_not = "the Python package was not built (pybind11-dev, python3-dev)";
  return std::nullopt;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--rounds") cfg.rounds = std::stoi(next());
    else if (a == "--n") cfg.n = static_cast<std::uint32_t>(std::stoul(next()));
    else if (a == "--cpu") cfg.cpu = std::stoi(next());
    else if (a == "--json") cfg.json_path = next();
    else if (a == "--quick") {
      cfg.rounds = 3;
      cfg.warmup = 1;
      cfg.n = 256;
    } else {
      std::fprintf(stderr, "usage: ackring-lang-bench [--rounds R] [--n N] [--cpu C] [--quick] [--json FILE]\n");
      return 2;
    }
  }
  try {
    if (cfg.cpu >= 0) ackring_bench::pin_to(cfg.cpu);  // the Python child inherits the pinning
    const Row cpp = bench_cpp(cfg);
    const Row c = bench_c(cfg);
    std::string why_not;
    const std::optional<Row> py = bench_python(cfg, why_not);

    std::printf("ackring-lang-bench: %u messages of %zu B per round, median of %d rounds (after %d warm-up)%s\n",
                cfg.n, kPayload, cfg.rounds, cfg.warmup, cfg.cpu >= 0 ? ", pinned" : "");
    std::printf("%-22s %12s %12s %12s\n", "ns per message", "C++", "C API", "Python");
    auto line = [&](const char* name, auto member) {
      std::printf("%-22s %12.1f %12.1f ", name, median(cpp.*member), median(c.*member));
      if (py) std::printf("%12.1f\n", median((*py).*member));
      else std::printf("%12s\n", "n/a");
    };
    line("publish (try)", &Row::publish_ns);
    line("receive + ack (try)", &Row::receive_ack_ns);
    if (!py) std::printf("Python: %s\n", why_not.c_str());

    if (!cfg.json_path.empty()) {
      nlohmann::json j;
      j["messages_per_round"] = cfg.n;
      j["payload_bytes"] = kPayload;
      j["rounds"] = cfg.rounds;
      for (auto [name, row] : {std::pair{"cpp", &cpp}, std::pair{"c", &c}})
        j[name] = {{"publish_ns_median", median(row->publish_ns)}, {"receive_ack_ns_median", median(row->receive_ack_ns)}};
      if (py)
        j["python"] = {{"publish_ns_median", median(py->publish_ns)},
                       {"receive_ack_ns_median", median(py->receive_ack_ns)}};
      std::ofstream(cfg.json_path) << j.dump(2) << "\n";
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ackring-lang-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
