// Verification of a journal (journal_scan.hpp). The rules, argued in
// docs/journal.md ("Recovery"):
//
//  1. Headers first. A segment that is not a journal segment, of another
//     version, or of another queue is refused (thrown), before any record is
//     handed out. A last segment whose header is zero or does not verify is
//     not part of the log (a roll-over or takeover that crashed before its
//     first flush), unless a second batch in it verifies.
//  2. A segment followed by another is *bounded*: the next header says where
//     its records end (prev_segment_end). Every byte up to there must be good
//     records with contiguous seqs, and the seq after them must be the next
//     segment's first seq. Anything else is corruption.
//  3. The last segment ends at the first zero record header (the
//     pre-allocated tail) or at the first record that does not verify. If
//     bytes that are not zero follow, they are either a torn tail (the last
//     batch, cut short by a crash) or corruption: it is corruption exactly if
//     a *later batch* verifies after the damage, because a batch is written
//     only after the previous one's fdatasync returned.
#include "journal/journal_scan.hpp"

#include <algorithm>
#include <cstring>

#include "ackring/error.hpp"

namespace ackring::detail {

namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

[[nodiscard]] bool all_zero(std::span<const std::byte> bytes) noexcept {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

// Index of the last byte in [from, to) that is not zero, or kNone.
[[nodiscard]] std::size_t last_nonzero(std::span<const std::byte> image, std::size_t from, std::size_t to) noexcept {
  std::size_t i = to;
  // Whole 8-byte words first (the image is mostly zeros when this is called).
  while (i >= from + 8) {
    std::uint64_t w;
    std::memcpy(&w, image.data() + i - 8, 8);
    if (w != 0) break;
    i -= 8;
  }
  while (i > from) {
    --i;
    if (image[i] != std::byte{0}) return i;
  }
  return kNone;
}

struct HeaderCheck {
  enum Kind { ok, zero, bad } kind = bad;
  JournalSegmentHeader h{};
  std::string why;  // bad: what is wrong
};

[[noreturn]] void refuse(const std::string& where, const std::string& why) {
  throw Error(ErrorCode::incompatible, "read journal segment '" + where + "': " + why);
}

// True if `magic` is a prefix of "ACKWAL01" followed by zeros: the start of
// our magic, cut short (a torn header), rather than another program's file.
[[nodiscard]] bool torn_magic(const char* magic) noexcept {
  std::size_t i = 0;
  while (i < sizeof kJournalMagic && magic[i] == kJournalMagic[i]) ++i;
  for (; i < sizeof kJournalMagic; ++i)
    if (magic[i] != 0) return false;
  return true;
}

HeaderCheck check_header(std::span<const std::byte> bytes, const std::string& name, const std::string& where,
                         std::uint64_t expected_queue_id) {
  HeaderCheck c;
  if (all_zero(bytes)) {
    c.kind = HeaderCheck::zero;
    return c;
  }
  std::memcpy(&c.h, bytes.data(), std::min(bytes.size(), sizeof c.h));  // a short file leaves zeros
  if (!torn_magic(c.h.magic))
    refuse(where, "not an ackring journal segment (the magic bytes are not \"ACKWAL01\"): damaged, or written "
                  "by another program");
  const bool checksum_ok =
      bytes.size() >= kJournalSegmentHeaderSize && c.h.checksum == journal_header_checksum(c.h);
  // Version 0 is no version: a header cut short after the magic.
  if (std::memcmp(c.h.magic, kJournalMagic, sizeof kJournalMagic) == 0 && c.h.version != 0 &&
      c.h.version != kJournalFormatVersion)
    refuse(where, "journal format version " + std::to_string(c.h.version) +
                      " is not supported (this build reads version " + std::to_string(kJournalFormatVersion) +
                      ")" + (checksum_ok ? "" : " (or the header is damaged: its checksum does not match)"));
  if (bytes.size() < kJournalSegmentHeaderSize) {
    c.why = "the file is " + std::to_string(bytes.size()) + " bytes, shorter than the 64-byte segment header";
    return c;
  }
  if (!checksum_ok) {
    c.why = "the segment header checksum does not match (the header is damaged or was never fully written)";
    return c;
  }
  if (expected_queue_id != 0 && c.h.queue_id != expected_queue_id)
    refuse(where, "the journal belongs to queue id " + std::to_string(c.h.queue_id) + ", not to queue id " +
                      std::to_string(expected_queue_id));
  if (c.h.header_size != kJournalSegmentHeaderSize) {
    c.why = "the header size is " + std::to_string(c.h.header_size) + ", not 64";
    return c;
  }
  std::uint64_t name_seq = 0, name_index = 0;
  if (!parse_journal_segment_name(name, name_seq, name_index) || name_seq != c.h.first_seq ||
      name_index != c.h.segment_index) {
    c.why = "the file name does not match the header (first seq " + std::to_string(c.h.first_seq) +
            ", index " + std::to_string(c.h.segment_index) + "): the file was renamed";
    return c;
  }
  if (c.h.segment_size < kJournalMinSegmentSize || c.h.segment_size > kJournalMaxSegmentSize ||
      c.h.segment_size % 4096 != 0) {
    c.why = "the segment size " + std::to_string(c.h.segment_size) + " is out of range";
    return c;
  }
  c.kind = HeaderCheck::ok;
  return c;
}

struct ParsedRecord {
  JournalRecordHeader h{};
  std::uint64_t size = 0;
};

enum class RecordKind { ok, zero, bad };

// Checks the record framed at `off`, which must end by `bound`. Does not
// check the seq (the caller knows what it expects).
RecordKind check_record(std::span<const std::byte> image, std::size_t off, std::size_t bound, ParsedRecord& out,
                        std::string& why) {
  const std::size_t room = bound - off;
  if (room < kJournalRecordHeaderSize) {
    if (all_zero(image.subspan(off, room))) return RecordKind::zero;
    why = "a record header is cut off by the end of the segment";
    return RecordKind::bad;
  }
  std::memcpy(&out.h, image.data() + off, sizeof out.h);
  if (all_zero(image.subspan(off, kJournalRecordHeaderSize))) return RecordKind::zero;
  if (out.h.length > kJournalMaxPayload) {
    why = "the record length " + std::to_string(out.h.length) + " is larger than any record";
    return RecordKind::bad;
  }
  out.size = journal_record_size(out.h.length);
  if (out.size > room) {
    why = "a record of " + std::to_string(out.size) + " bytes runs past the end of the segment";
    return RecordKind::bad;
  }
  if (out.h.checksum != journal_record_checksum(image.data() + off, out.h.length)) {
    why = "the record checksum does not match";
    return RecordKind::bad;
  }
  const auto type = static_cast<JournalRecordType>(out.h.type);
  const auto payload = image.subspan(off + kJournalRecordHeaderSize, out.h.length);
  if (out.h.type == 0 || out.h.type > kJournalMaxRecordType ||
      !journal_payload_valid(type, out.h.flags, out.h.seq, payload)) {
    why = "the record (type " + std::to_string(out.h.type) + ", flags " + std::to_string(out.h.flags) +
          ") verifies but is malformed";
    return RecordKind::bad;
  }
  return RecordKind::ok;
}

// What lies past the damage in the last segment: records that still verify
// (at 8-byte aligned offsets, with a seq not below `expected`), and whether
// one of them starts a batch (offset other than `ignore_at`).
struct Survivors {
  std::uint64_t records = 0;
  std::size_t later_batch_at = kNone;
};

Survivors find_survivors(std::span<const std::byte> image, std::size_t from, std::size_t bound,
                         std::uint64_t expected, std::size_t ignore_at) {
  Survivors s;
  std::size_t off = journal_align(from);
  std::string why;
  while (off + kJournalRecordHeaderSize <= bound) {
    // Cheap filters first: almost every offset in a damaged region fails them.
    JournalRecordHeader h;
    std::memcpy(&h, image.data() + off, sizeof h);
    ParsedRecord p;
    if (h.type != 0 && h.type <= kJournalMaxRecordType && (h.flags & ~kJournalKnownFlags) == 0 &&
        h.seq >= expected && check_record(image, off, bound, p, why) == RecordKind::ok) {
      ++s.records;
      if ((p.h.flags & kJournalFlagBatchStart) != 0 && off != ignore_at && s.later_batch_at == kNone)
        s.later_batch_at = off;
      off += p.size;
      continue;
    }
    off += kJournalAlign;
  }
  return s;
}

void set_corrupt(JournalScanResult& r, const std::string& where, std::uint64_t offset, const std::string& why,
                 std::size_t later_segments) {
  r.end = JournalEnd::corrupt;
  r.damaged_segment = where;
  r.damage_offset = offset;
  r.message = "journal segment '" + where + "', offset " + std::to_string(offset) + ": " + why +
              "; the journal is damaged before its end (records stop at seq " + std::to_string(r.next_seq) + ")";
  if (later_segments > 0)
    r.message += "; " + std::to_string(later_segments) + " later segment(s) are not read";
}

// One scan: the steps of the file comment, in order. A step that finds
// corruption records it in the result and returns false; the result is then
// final.
class JournalScan {
 public:
  JournalScan(JournalSegmentSource& source, std::uint64_t expected_queue_id, const JournalVisitor& visit)
      : source_(source), expected_queue_id_(expected_queue_id), visit_(visit) {}

  JournalScanResult run() {
    check_headers();
    for (std::size_t i = 0; i < m_; ++i)
      if (!scan_segment(i)) return std::move(r_);
    if (!check_ignored()) return std::move(r_);
    if (m_ == 0 && r_.end != JournalEnd::torn_tail) r_.end = JournalEnd::empty;
    return std::move(r_);
  }

 private:
  // Where a segment's records must end (rule 2), or why that is unknown.
  struct Bound {
    bool bounded = false;
    std::size_t at = 0;
    std::string problem;
  };
  // Where the records of a segment stopped, and why.
  struct Stop {
    std::size_t off = 0;
    RecordKind kind = RecordKind::ok;
    std::string why;
  };

  void check_headers();
  bool scan_segment(std::size_t i);
  bool check_chain(std::size_t i, const std::string& where);
  [[nodiscard]] Bound bound_of(std::size_t i, std::size_t limit) const;
  Stop read_records(std::size_t i, std::span<const std::byte> image, std::size_t bound);
  bool check_last_end(const std::string& where, std::span<const std::byte> image, std::size_t limit, const Stop& stop);
  bool check_ignored();

  [[nodiscard]] std::size_t later(std::size_t i) const noexcept { return m_ - i - 1; }

  JournalSegmentSource& source_;
  const std::uint64_t expected_queue_id_;
  const JournalVisitor& visit_;
  JournalScanResult r_;
  std::vector<HeaderCheck> hs_;
  std::size_t m_ = 0;            // segments that are part of the log (the first m_)
  std::uint64_t expected_ = 0;   // seq the next record must have
};

// ---- 1. headers -----------------------------------------------------------
void JournalScan::check_headers() {
  const std::size_t n = source_.count();
  hs_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    hs_.push_back(check_header(source_.header(i), source_.name(i), source_.where(i), expected_queue_id_));
    if (hs_.back().kind != HeaderCheck::ok) continue;
    if (r_.queue_id == 0) r_.queue_id = hs_.back().h.queue_id;
    else if (hs_.back().h.queue_id != r_.queue_id)
      refuse(source_.where(i), "the segment belongs to queue id " + std::to_string(hs_.back().h.queue_id) +
                                   " but earlier segments to queue id " + std::to_string(r_.queue_id));
  }
  // The last segment's header is written with its first batch. If it is
  // zero or does not verify, that batch may never have completed, so the
  // segment is not part of the log (step 4 checks that no later batch
  // proves otherwise). Any earlier segment was complete before the next
  // one was created, so there a bad header is corruption.
  m_ = n;
  if (n > 0 && hs_[n - 1].kind != HeaderCheck::ok) m_ = n - 1;
  for (std::size_t i = m_; i < n; ++i) r_.ignored.push_back(source_.name(i));
}

// ---- 2. records -----------------------------------------------------------
bool JournalScan::scan_segment(std::size_t i) {
  const std::string where = source_.where(i);
  if (!check_chain(i, where)) return false;
  const JournalSegmentHeader& h = hs_[i].h;
  const auto image = source_.load(i);
  const std::size_t limit = static_cast<std::size_t>(std::min<std::uint64_t>(image.size(), h.segment_size));
  const bool last = i + 1 == m_;
  const Bound bound = last ? Bound{false, limit, {}} : bound_of(i, limit);
  if (limit < kJournalSegmentHeaderSize) {
    set_corrupt(r_, where, 0, "the segment is shorter than its header", later(i));
    return false;
  }
  const Stop stop = read_records(i, image, bound.at);
  if (bound.bounded) {
    if (stop.off == bound.at) return true;
    set_corrupt(r_, where, stop.off,
                (stop.kind == RecordKind::zero ? std::string("the records end early (zeros)") : stop.why) +
                    ", before byte " + std::to_string(bound.at) + " where the next segment says they end",
                later(i));
    return false;
  }
  if (!last) {
    // The next header is unusable, so this segment's end cannot be checked:
    // its records up to the first stop are handed out, then the chain breaks.
    set_corrupt(r_, source_.where(i + 1), 0, bound.problem.empty() ? "the header is not valid" : bound.problem,
                m_ - i - 2);
    if (hs_[i + 1].kind == HeaderCheck::bad) r_.message += " (" + hs_[i + 1].why + ")";
    return false;
  }
  return check_last_end(where, image, limit, stop);
}

// Segment i's header is valid and continues the chain (index and first seq).
bool JournalScan::check_chain(std::size_t i, const std::string& where) {
  const HeaderCheck& hc = hs_[i];
  if (hc.kind == HeaderCheck::zero) {
    set_corrupt(r_, where, 0, "the segment header is all zeros but later segments exist", later(i));
    return false;
  }
  if (hc.kind == HeaderCheck::bad) {
    set_corrupt(r_, where, 0, hc.why, later(i));
    return false;
  }
  const JournalSegmentHeader& h = hc.h;
  if (i == 0) {
    expected_ = h.first_seq;
    r_.first_seq = h.first_seq;
    r_.next_seq = expected_;
    return true;
  }
  const auto& prev = r_.segments.back();
  if (h.segment_index != prev.index + 1) {
    set_corrupt(r_, where, 0,
                "segment index " + std::to_string(h.segment_index) + " follows index " + std::to_string(prev.index) +
                    ": a segment file is missing",
                later(i));
    return false;
  }
  if (h.first_seq != expected_) {
    set_corrupt(r_, where, 0,
                "the segment starts at seq " + std::to_string(h.first_seq) +
                    " but the previous one ends before seq " + std::to_string(expected_),
                later(i));
    return false;
  }
  return true;
}

// Rule 2: a segment followed by a valid header ends where that header says.
JournalScan::Bound JournalScan::bound_of(std::size_t i, std::size_t limit) const {
  const HeaderCheck& next = hs_[i + 1];
  if (next.kind != HeaderCheck::ok) return {false, limit, "the next segment's header is not valid"};
  if (next.h.segment_index != hs_[i].h.segment_index + 1)
    return {false, limit,
            "segment index " + std::to_string(next.h.segment_index) + " follows index " +
                std::to_string(hs_[i].h.segment_index) + ": a segment file is missing"};
  const std::uint64_t pe = next.h.prev_segment_end;
  if (pe < kJournalSegmentHeaderSize || pe > limit || pe % kJournalAlign != 0)
    return {false, limit,
            "the next segment says this one ends at byte " + std::to_string(pe) + ", outside its 64 .. " +
                std::to_string(limit) + " bytes"};
  return {true, static_cast<std::size_t>(pe), {}};
}

// Hands out the good records of segment i before `bound`, in order, and
// records the segment in the result.
JournalScan::Stop JournalScan::read_records(std::size_t i, std::span<const std::byte> image, std::size_t bound) {
  const JournalSegmentHeader& h = hs_[i].h;
  JournalSegmentInfo info{source_.name(i), h.segment_index, h.first_seq, 0, 0, 0, h.segment_size};
  Stop stop{kJournalSegmentHeaderSize, RecordKind::ok, {}};
  while (stop.off < bound) {
    ParsedRecord p;
    stop.kind = check_record(image, stop.off, bound, p, stop.why);
    if (stop.kind == RecordKind::ok && p.h.seq != expected_) {
      stop.kind = RecordKind::bad;
      stop.why = "the record has seq " + std::to_string(p.h.seq) + " where seq " + std::to_string(expected_) +
                 " was expected";
    }
    if (stop.kind != RecordKind::ok) break;
    const auto type = static_cast<JournalRecordType>(p.h.type);
    const auto payload = image.subspan(stop.off + kJournalRecordHeaderSize, p.h.length);
    if (visit_) visit_(JournalRecordView{type, p.h.flags, p.h.seq, payload, h.segment_index, stop.off});
    expected_ += journal_seqs_consumed(type, payload);
    r_.next_seq = expected_;
    ++r_.records;
    ++info.records;
    stop.off += p.size;
  }
  if (stop.off >= bound) stop.kind = RecordKind::ok;
  info.end_offset = stop.off;
  info.end_seq = expected_;
  r_.segments.push_back(info);
  return stop;
}

// ---- 3. the end of the last segment ----------------------------------------
bool JournalScan::check_last_end(const std::string& where, std::span<const std::byte> image, std::size_t limit,
                                 const Stop& stop) {
  r_.end = JournalEnd::clean;
  if (stop.off >= limit) return true;
  const std::size_t nz = last_nonzero(image, stop.off, limit);
  if (stop.kind == RecordKind::zero && nz == kNone) return true;
  const Survivors s = find_survivors(image, stop.off + kJournalAlign, limit, expected_, kNone);
  if (s.later_batch_at != kNone) {
    const std::string what = stop.kind == RecordKind::zero ? std::string("the records stop (zeros)") : stop.why;
    set_corrupt(r_, where, stop.off,
                what + ", but a later batch at offset " + std::to_string(s.later_batch_at) +
                    " verifies, so an acknowledged batch is damaged",
                0);
    return false;
  }
  r_.end = JournalEnd::torn_tail;
  r_.damaged_segment = where;
  r_.damage_offset = stop.off;
  r_.discarded_bytes = nz == kNone ? 0 : nz + 1 - stop.off;
  r_.discarded_records = s.records;
  r_.message = "journal segment '" + where + "': torn tail at offset " + std::to_string(stop.off) + " (" +
               (stop.kind == RecordKind::zero ? std::string("zeros followed by data") : stop.why) + "): " +
               std::to_string(r_.discarded_bytes) + " bytes and " + std::to_string(s.records) +
               " verifiable record(s) of the unfinished last batch discarded; the log ends before seq " +
               std::to_string(expected_);
  return true;
}

// ---- 4. ignored segments: a zero header must not hide acknowledged data ---
bool JournalScan::check_ignored() {
  for (std::size_t i = m_; i < hs_.size(); ++i) {
    const auto image = source_.load(i);
    const std::size_t nz = last_nonzero(image, 0, image.size());
    if (nz == kNone) continue;
    const Survivors s = find_survivors(image, kJournalSegmentHeaderSize, image.size(), expected_,
                                       kJournalSegmentHeaderSize);
    const std::string header_state =
        hs_[i].kind == HeaderCheck::zero ? std::string("the segment header is all zeros") : hs_[i].why;
    if (s.later_batch_at != kNone) {
      set_corrupt(r_, source_.where(i), 0,
                  header_state + ", but a second batch at offset " + std::to_string(s.later_batch_at) +
                      " verifies, so the header was damaged after it was written",
                  0);
      r_.ignored.clear();
      return false;
    }
    if (r_.end == JournalEnd::torn_tail) continue;
    r_.end = JournalEnd::torn_tail;
    r_.damaged_segment = source_.where(i);
    r_.damage_offset = 0;
    r_.discarded_bytes = nz + 1;
    r_.discarded_records = s.records;
    r_.message = "journal segment '" + source_.where(i) + "': " + header_state +
                 " (a new segment cut short by a crash): " + std::to_string(r_.discarded_bytes) + " bytes and " +
                 std::to_string(s.records) + " verifiable record(s) discarded; the log ends before seq " +
                 std::to_string(expected_);
  }
  return true;
}

}  // namespace

JournalScanResult scan_journal(JournalSegmentSource& source, std::uint64_t expected_queue_id,
                               const JournalVisitor& visit) {
  return JournalScan(source, expected_queue_id, visit).run();
}

}  // namespace ackring::detail
