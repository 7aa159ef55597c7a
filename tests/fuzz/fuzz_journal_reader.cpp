// Fuzz target: the journal reader's verification (scan_journal, in memory)
// and the record payload decoders, on segments anyone may have damaged.
//
// Input: byte 0 picks a mode, the rest is mode-specific.
//   mode 0  raw:        the rest is cut into 1..4 segment images (byte 1 says
//                       how many); each is named after what its header says,
//                       so the fuzzer can get past the name check.
//   mode 1  framed:     a valid segment header is put in front of the rest,
//                       and every record the rest frames gets a correct
//                       checksum: the fuzzer then drives types, lengths,
//                       seqs, flags and payloads (structure and seq rules).
//   mode 2  patched:    a valid three-segment journal built here, with the
//                       rest applied as patches (u16 offset, u8 xor); the
//                       reader must hand out a prefix of the original records.
//   mode 3  re-sealed:  like 2, then every header and record checksum is
//                       recomputed, so the damage must be caught by the
//                       structure, seq and chain rules alone.
//
// Properties checked (a violation traps, which the fuzzer reports):
//   - every record handed out lies inside its segment image, its checksum
//     verifies there, its payload passes the structural check and decodes,
//     and seqs are contiguous from the first segment's first seq;
//   - the result's counts and next seq agree with what was handed out;
//   - mode 2: what is handed out is a prefix of the original records, and
//     the log is not reported clean if an original record was lost;
//   - only ackring::Error(incompatible) is thrown, and only before any record;
//   - no crash, no out-of-bounds read (each image is an exact-size heap copy).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ackring/error.hpp"
#include "journal/journal_format.hpp"
#include "journal/journal_records.hpp"
#include "journal/journal_scan.hpp"

using namespace ackring::detail;

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_journal_reader: property violated: %s\n", what);
  __builtin_trap();
}

constexpr std::uint64_t kQueueId = 0xfeedu;
constexpr std::size_t kSegmentSize = 4096;

struct Seg {
  std::string name;
  std::vector<std::byte> bytes;
};

JournalSegmentHeader make_header(std::uint64_t index, std::uint64_t first_seq, std::uint64_t prev_end) {
  JournalSegmentHeader h{};
  std::memcpy(h.magic, kJournalMagic, sizeof h.magic);
  h.version = kJournalFormatVersion;
  h.header_size = kJournalSegmentHeaderSize;
  h.queue_id = kQueueId;
  h.segment_index = index;
  h.first_seq = first_seq;
  h.segment_size = kSegmentSize;
  h.prev_segment_end = prev_end;
  h.checksum = journal_header_checksum(h);
  return h;
}

// Frames a record at `off` of `b` and returns its size.
std::size_t put(std::vector<std::byte>& b, std::size_t off, JournalRecordType type, std::uint16_t flags,
                std::uint64_t seq, const std::vector<std::byte>& payload) {
  JournalRecordHeader h{};
  h.length = static_cast<std::uint32_t>(payload.size());
  h.type = static_cast<std::uint16_t>(type);
  h.flags = flags;
  h.seq = seq;
  std::memcpy(b.data() + off, &h, sizeof h);
  if (!payload.empty()) std::memcpy(b.data() + off + sizeof h, payload.data(), payload.size());
  h.checksum = journal_record_checksum(b.data() + off, h.length);
  std::memcpy(b.data() + off, &h.checksum, 8);
  return journal_record_size(payload.size());
}

std::vector<std::byte> message_payload(std::uint64_t seq) {
  std::vector<std::byte> body(seq % 29, static_cast<std::byte>(seq));
  std::vector<std::byte> p(journal_message_payload_size(body.size()));
  encode_message(p.data(), 1000 + seq, {seq, seq}, body);
  return p;
}

std::vector<std::byte> checkpoint_payload(const std::vector<JournalGroupState>& gs) {
  std::vector<std::byte> p(journal_checkpoint_size(gs));
  encode_checkpoint(p.data(), gs);
  return p;
}

std::vector<std::byte> group_payload(const JournalGroupState& g) {
  std::vector<std::byte> p(journal_group_entry_size(g.name));
  encode_group_entry(p.data(), g);
  return p;
}

// A valid journal of three segments: checkpoints, groups, messages, a skip,
// several batches per segment.
std::vector<Seg> build_template() {
  std::vector<Seg> segs;
  std::uint64_t seq = 100, prev_end = 0;
  const std::vector<JournalGroupState> groups = {{"g0", 100, 100, 0, 0}, {"g1", 100, 100, 1, 1}};
  for (std::uint64_t index = 7; index < 10; ++index) {
    Seg s{journal_segment_name(seq, index), std::vector<std::byte>(kSegmentSize)};
    const auto h = make_header(index, seq, prev_end);
    std::memcpy(s.bytes.data(), &h, sizeof h);
    std::size_t off = kJournalSegmentHeaderSize;
    off += put(s.bytes, off, JournalRecordType::checkpoint, kJournalFlagBatchStart, seq, checkpoint_payload(groups));
    for (int i = 0; i < 12; ++i) {
      const std::uint16_t flags = (i % 4 == 3) ? kJournalFlagBatchStart : 0;
      if (i == 5) {
        std::vector<std::byte> p(8);
        encode_skip(p.data(), 2);
        off += put(s.bytes, off, JournalRecordType::skip, flags, seq, p);
        seq += 2;
      } else if (i == 8) {
        off += put(s.bytes, off, JournalRecordType::group_create, flags, seq, group_payload({"g2", seq, seq, 0, 0}));
      } else if (i == 9) {
        off += put(s.bytes, off, JournalRecordType::group_remove, flags, seq, group_payload({"g2"}));
      } else {
        off += put(s.bytes, off, JournalRecordType::message, flags | kJournalFlagHasKey, seq, message_payload(seq));
        ++seq;
      }
    }
    prev_end = off;
    segs.push_back(std::move(s));
  }
  return segs;
}

// Recomputes the checksum of each record framed from `from` on, as far as
// the lengths frame them.
void seal_records(std::vector<std::byte>& b, std::size_t from) {
  std::size_t off = from;
  while (off + kJournalRecordHeaderSize <= b.size()) {
    JournalRecordHeader h;
    std::memcpy(&h, b.data() + off, sizeof h);
    if (h.length > kJournalMaxPayload) break;
    const std::uint64_t size = journal_record_size(h.length);
    if (size > b.size() - off) break;
    h.checksum = journal_record_checksum(b.data() + off, h.length);
    std::memcpy(b.data() + off, &h.checksum, 8);
    off += size;
  }
}

void seal_header(std::vector<std::byte>& b) {
  if (b.size() < sizeof(JournalSegmentHeader)) return;
  JournalSegmentHeader h;
  std::memcpy(&h, b.data(), sizeof h);
  h.checksum = journal_header_checksum(h);
  std::memcpy(b.data(), &h, sizeof h);
}

struct Got {
  JournalRecordType type;
  std::uint64_t seq;
  std::uint64_t segment_index;
  std::uint64_t offset;
  std::vector<std::byte> payload;
};

// Scans `segs` and checks every property that holds for any input.
std::vector<Got> scan_checked(const std::vector<Seg>& segs, JournalScanResult& result, bool& threw) {
  // Exact-size heap copies, so that ASan sees a read one byte past an image.
  std::vector<std::unique_ptr<std::byte[]>> heap;
  std::vector<JournalMemorySource::Segment> src;
  for (const auto& s : segs) {
    heap.push_back(std::make_unique<std::byte[]>(s.bytes.size() == 0 ? 1 : s.bytes.size()));
    if (!s.bytes.empty()) std::memcpy(heap.back().get(), s.bytes.data(), s.bytes.size());
    src.push_back({s.name, {heap.back().get(), s.bytes.size()}});
  }
  std::vector<Got> got;
  bool have_expected = false;
  std::uint64_t expected = 0;
  JournalMemorySource source(src);
  const auto visit = [&](const JournalRecordView& r) {
    // The image the record came from: the one its payload points into, and
    // whose header names the segment index the view reports.
    const std::byte* image = nullptr;
    std::size_t image_size = 0;
    const auto at = reinterpret_cast<std::uintptr_t>(r.payload.data());
    for (const auto& s : src) {
      const auto base = reinterpret_cast<std::uintptr_t>(s.bytes.data());
      if (at < base || at > base + s.bytes.size()) continue;
      JournalSegmentHeader h{};
      if (s.bytes.size() < sizeof h) violated("a record from a segment shorter than its header");
      std::memcpy(&h, s.bytes.data(), sizeof h);
      if (h.segment_index != r.segment_index) violated("the view names another segment");
      image = s.bytes.data();
      image_size = s.bytes.size();
    }
    if (image == nullptr) violated("a record from a segment that is not there");
    if (r.offset < kJournalSegmentHeaderSize || r.offset % kJournalAlign != 0 ||
        r.offset + kJournalRecordHeaderSize > image_size)
      violated("a record outside its segment");
    if (r.payload.data() != image + r.offset + kJournalRecordHeaderSize ||
        r.offset + journal_record_size(r.payload.size()) > image_size)
      violated("a payload outside its segment");
    JournalRecordHeader h;
    std::memcpy(&h, image + r.offset, sizeof h);
    if (h.checksum != journal_record_checksum(image + r.offset, h.length)) violated("a record that does not verify");
    if (h.seq != r.seq || h.length != r.payload.size() || h.type != static_cast<std::uint16_t>(r.type))
      violated("the view differs from the bytes");
    if (!journal_payload_valid(r.type, r.flags, r.seq, r.payload)) violated("a malformed payload handed out");
    if (have_expected && r.seq != expected) violated("seqs not contiguous");
    have_expected = true;
    expected = r.seq + journal_seqs_consumed(r.type, r.payload);
    // The decoders accept whatever the reader accepted.
    switch (r.type) {
      case JournalRecordType::message: {
        JournalMessageView m;
        if (!decode_message(r.payload, r.flags, m)) violated("decode_message refused a valid record");
        break;
      }
      case JournalRecordType::skip: {
        std::uint64_t n = 0;
        if (!decode_skip(r.payload, n)) violated("decode_skip refused a valid record");
        break;
      }
      case JournalRecordType::checkpoint: {
        std::vector<JournalGroupState> gs;
        if (!decode_checkpoint(r.payload, gs)) violated("decode_checkpoint refused a valid record");
        break;
      }
      default: {
        JournalGroupState g;
        if (!decode_group_entry(r.payload, g)) violated("decode_group_entry refused a valid record");
      }
    }
    got.push_back({r.type, r.seq, r.segment_index, r.offset, {r.payload.begin(), r.payload.end()}});
  };
  threw = false;
  try {
    result = scan_journal(source, 0, visit);
  } catch (const ackring::Error& e) {
    if (e.code() != ackring::ErrorCode::incompatible) violated("an error other than incompatible");
    if (!got.empty()) violated("refused after handing out records");
    threw = true;
    return got;
  }
  if (result.records != got.size()) violated("the record count differs from what was handed out");
  if (have_expected && result.next_seq != expected) violated("next seq differs from the last record's end");
  if (result.end == JournalEnd::corrupt && result.message.empty()) violated("corruption without a message");
  return got;
}

bool same_prefix(const std::vector<Got>& got, const std::vector<Got>& orig) {
  if (got.size() > orig.size()) return false;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i].seq != orig[i].seq || got[i].type != orig[i].type || got[i].offset != orig[i].offset ||
        got[i].segment_index != orig[i].segment_index || got[i].payload != orig[i].payload)
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto* in = reinterpret_cast<const std::byte*>(data + 1);
  const std::size_t n = size - 1;
  std::vector<Seg> segs;
  JournalScanResult result;
  bool threw = false;

  switch (data[0] % 4) {
    case 0: {  // raw
      if (n == 0) break;
      const std::size_t k = 1 + static_cast<std::size_t>(data[1] % 4);
      const std::size_t body = n - 1;
      const std::size_t part = body / k;
      for (std::size_t i = 0; i < k; ++i) {
        Seg s;
        const std::size_t len = i + 1 == k ? body - part * i : part;
        s.bytes.assign(in + 1 + part * i, in + 1 + part * i + len);
        JournalSegmentHeader h{};
        if (!s.bytes.empty()) std::memcpy(&h, s.bytes.data(), std::min(s.bytes.size(), sizeof h));
        s.name = journal_segment_name(h.first_seq, h.segment_index);
        segs.push_back(std::move(s));
      }
      (void)scan_checked(segs, result, threw);
      break;
    }
    case 1: {  // framed: a valid header, the input as records with correct checksums
      Seg s;
      std::uint64_t first_seq = 0;
      if (n >= 8) std::memcpy(&first_seq, in, 8);
      const std::size_t skip = n >= 8 ? 8 : 0;
      s.name = journal_segment_name(first_seq, 0);
      s.bytes.resize(std::max<std::size_t>(kJournalSegmentHeaderSize + n - skip, kJournalSegmentHeaderSize));
      const auto h = make_header(0, first_seq, 0);
      std::memcpy(s.bytes.data(), &h, sizeof h);
      if (n > skip) std::memcpy(s.bytes.data() + kJournalSegmentHeaderSize, in + skip, n - skip);
      seal_records(s.bytes, kJournalSegmentHeaderSize);
      segs.push_back(std::move(s));
      (void)scan_checked(segs, result, threw);
      break;
    }
    default: {  // patched (2) or patched and re-sealed (3)
      static const std::vector<Seg> tmpl = build_template();
      static std::vector<Got> original;
      static bool have_original = false;
      if (!have_original) {
        JournalScanResult r0;
        bool t0 = false;
        original = scan_checked(tmpl, r0, t0);
        if (t0 || r0.end != JournalEnd::clean || original.empty()) violated("the template journal does not verify");
        have_original = true;
      }
      segs = tmpl;
      const std::size_t total = segs.size() * kSegmentSize;
      for (std::size_t i = 0; i + 3 <= n; i += 3) {
        const std::size_t at = (static_cast<std::size_t>(data[1 + i]) | (static_cast<std::size_t>(data[2 + i]) << 8)) % total;
        segs[at / kSegmentSize].bytes[at % kSegmentSize] ^= static_cast<std::byte>(data[3 + i]);
      }
      const bool reseal = data[0] % 4 == 3;
      if (reseal)
        for (auto& s : segs) {
          seal_header(s.bytes);
          seal_records(s.bytes, kJournalSegmentHeaderSize);
        }
      const auto got = scan_checked(segs, result, threw);
      if (!reseal && !threw) {
        if (!same_prefix(got, original)) violated("handed out a record that is not in the original journal");
        bool changed_live = false;
        for (std::size_t i = 0; i < segs.size(); ++i)
          for (std::size_t b = 0; b < kSegmentSize; ++b)
            if (segs[i].bytes[b] != tmpl[i].bytes[b]) {
              JournalSegmentHeader h;
              std::memcpy(&h, tmpl[i].bytes.data(), sizeof h);
              const std::uint64_t live_end =
                  i + 1 < segs.size() ? [&] {
                    JournalSegmentHeader nh;
                    std::memcpy(&nh, tmpl[i + 1].bytes.data(), sizeof nh);
                    return nh.prev_segment_end;
                  }()
                                      : original.back().offset + journal_record_size(original.back().payload.size());
              if (b < live_end) changed_live = true;
            }
        if (changed_live && got.size() == original.size() && result.end == JournalEnd::clean)
          violated("damage to the live bytes went unnoticed");
      }
      break;
    }
  }
  return 0;
}
