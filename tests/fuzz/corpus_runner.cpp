// Regression runner: feeds every file of the given corpus directories (or
// single files) through the fuzz target's LLVMFuzzerTestOneInput, compiled
// without libFuzzer, so any compiler runs the checked-in seeds and every
// crash input once saved there. A crash or a violated property aborts the
// process (the test fails); otherwise it prints what it ran and exits 0.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    if (fs::is_directory(arg)) {
      for (const auto& e : fs::directory_iterator(arg))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else if (fs::is_regular_file(arg)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "corpus_runner: no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());  // a stable order: a failure names the same input every run
  if (inputs.empty()) {
    std::fprintf(stderr, "corpus_runner: no inputs (an empty corpus tests nothing)\n");
    return 2;
  }
  for (const fs::path& p : inputs) {
    std::ifstream f(p, std::ios::binary);
    const std::vector<char> bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    std::fprintf(stderr, "running %s (%zu bytes)\n", p.c_str(), bytes.size());
    // An exact-size heap copy, as libFuzzer passes it, so ASan catches a read past the end.
    auto copy = std::make_unique<std::uint8_t[]>(bytes.size() == 0 ? 1 : bytes.size());
    std::copy(bytes.begin(), bytes.end(), copy.get());
    (void)LLVMFuzzerTestOneInput(copy.get(), bytes.size());
  }
  std::printf("corpus_runner: %zu inputs ran without a finding\n", inputs.size());
  return 0;
}
