// Writes the seed inputs of fuzz_journal_reader into <dir>/journal_reader/
// (see the input format at the top of fuzz_journal_reader.cpp):
//
//   make_journal_corpus tests/fuzz/corpus
//
// Seeds: real segments written by JournalWriter (mode 0: one, two and three
// segments, one of them torn), framed records of every type (mode 1), and the
// template journal unpatched, patched and re-sealed (modes 2 and 3).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "journal/journal_format.hpp"
#include "journal/journal_records.hpp"
#include "journal/journal_writer.hpp"

using namespace ackring::detail;
namespace fs = std::filesystem;

namespace {

std::vector<std::uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_seed(const fs::path& dir, const std::string& name, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s (%zu bytes)\n", (dir / name).c_str(), bytes.size());
}

// Segments of a small journal written by the real writer.
std::vector<std::vector<std::uint8_t>> real_segments() {
  const fs::path dir = fs::temp_directory_path() / ("ackring-journal-corpus." + std::to_string(::getpid()));
  fs::remove_all(dir);
  JournalOptions o;
  o.queue_id = 0xfeed;
  o.segment_size = 4096;
  o.staging_size = 4096;
  {
    auto w = JournalWriter::try_acquire(dir, o);
    (void)w->append_group_create({"billing", 0, 0, 0, 0});
    for (std::uint64_t seq = 0; seq < 200; ++seq) {
      std::vector<std::byte> body(seq % 40, static_cast<std::byte>(seq));
      if (seq % 17 == 3) (void)w->append_skip(2);
      if (seq % 11 == 7)  // a replay copy (Queue::rewind_group) for the group
        (void)w->append_replay(body, seq, seq % 2 == 0, JournalKey{seq, seq}, journal_group_hash("billing"));
      else
        (void)w->append_message(body, seq, JournalKey{seq, seq});
      if (seq % 6 == 5) (void)w->flush();
    }
    w->close();
  }
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& f : journal_list_segments(dir)) out.push_back(read_file(dir / f.name));
  fs::remove_all(dir);
  return out;
}

// One framed record (checksum left 0: mode 1 seals it).
void frame(std::vector<std::uint8_t>& out, JournalRecordType type, std::uint16_t flags, std::uint64_t seq,
           const std::vector<std::byte>& payload) {
  JournalRecordHeader h{};
  h.length = static_cast<std::uint32_t>(payload.size());
  h.type = static_cast<std::uint16_t>(type);
  h.flags = flags;
  h.seq = seq;
  const std::size_t at = out.size();
  out.resize(at + journal_record_size(payload.size()));
  std::memcpy(out.data() + at, &h, sizeof h);
  if (!payload.empty()) std::memcpy(out.data() + at + sizeof h, payload.data(), payload.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus root>\n", argv[0]);
    return 2;
  }
  const fs::path dir = fs::path(argv[1]) / "journal_reader";
  fs::create_directories(dir);

  // Mode 0: real segments (byte 1 = number of segments - 1).
  const auto segs = real_segments();
  if (segs.size() < 3) {
    std::fprintf(stderr, "expected at least 3 segments\n");
    return 1;
  }
  for (std::size_t k = 1; k <= 3; ++k) {
    std::vector<std::uint8_t> in = {0, static_cast<std::uint8_t>(k - 1)};
    for (std::size_t i = 0; i < k; ++i) in.insert(in.end(), segs[i].begin(), segs[i].end());
    write_seed(dir, "raw_" + std::to_string(k) + "_segments", in);
  }
  {
    std::vector<std::uint8_t> in = {0, 0};
    in.insert(in.end(), segs[0].begin(), segs[0].end());
    for (std::size_t i = 900; i < 1100; ++i) in[2 + i] ^= 0x5a;  // a torn tail
    write_seed(dir, "raw_torn", in);
  }

  // Mode 1: 8 bytes of first seq, then framed records of every type.
  {
    std::vector<std::uint8_t> in = {1, 10, 0, 0, 0, 0, 0, 0, 0};
    std::vector<JournalGroupState> gs = {{"g", 10, 10, 0, 0}};
    std::vector<std::byte> cp(journal_checkpoint_size(gs));
    encode_checkpoint(cp.data(), gs);
    frame(in, JournalRecordType::checkpoint, kJournalFlagBatchStart, 10, cp);
    std::vector<std::byte> msg(journal_message_payload_size(5));
    encode_message(msg.data(), 1, {1, 2}, std::vector<std::byte>(5, std::byte{7}));
    frame(in, JournalRecordType::message, kJournalFlagHasKey, 10, msg);
    std::vector<std::byte> skip(8);
    encode_skip(skip.data(), 3);
    frame(in, JournalRecordType::skip, kJournalFlagBatchStart, 11, skip);
    std::vector<std::byte> g(journal_group_entry_size("h"));
    encode_group_entry(g.data(), {"h", 14, 14, 1, 0});
    frame(in, JournalRecordType::group_create, 0, 14, g);
    encode_group_entry(g.data(), {"h"});
    frame(in, JournalRecordType::group_remove, 0, 14, g);
    frame(in, JournalRecordType::message, 0, 14, msg);
    write_seed(dir, "framed_every_type", in);
    in.resize(in.size() - 20);
    write_seed(dir, "framed_cut", in);
  }

  // Modes 2 and 3: the template journal, as is, patched, re-sealed.
  write_seed(dir, "template", {2});
  write_seed(dir, "template_one_flip", {2, 0x40, 0x01, 0x10});        // a record of segment 0
  write_seed(dir, "template_last_segment_flip", {2, 0x80, 0x22, 0x01});  // segment 2
  write_seed(dir, "resealed_seq_change", {3, 0x80, 0x00, 0x01});       // a seq, checksum fixed up
  write_seed(dir, "resealed_prev_end", {3, 0x30, 0x10, 0x08});          // segment 1's prev end
  return 0;
}
