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
#include "journal_scan.hpp"

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

}  // namespace

const char* to_string(JournalEnd end) noexcept {
  switch (end) {
    case JournalEnd::empty: return "empty";
    case JournalEnd::clean: return "clean";
    case JournalEnd::torn_tail: return "torn_tail";
    case JournalEnd::corrupt: return "corrupt";
  }
  return "?";
}

JournalScanResult scan_journal(JournalSegmentSource& source, std::uint64_t expected_queue_id,
                               const JournalVisitor& visit) {
  JournalScanResult r;
  const std::size_t n = source.count();

  // ---- 1. headers -----------------------------------------------------------
  std::vector<HeaderCheck> hs;
  hs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    hs.push_back(check_header(source.header(i), source.name(i), source.where(i), expected_queue_id));
    if (hs.back().kind != HeaderCheck::ok) continue;
    if (r.queue_id == 0) r.queue_id = hs.back().h.queue_id;
    else if (hs.back().h.queue_id != r.queue_id)
      refuse(source.where(i), "the segment belongs to queue id " + std::to_string(hs.back().h.queue_id) +
                                  " but earlier segments to queue id " + std::to_string(r.queue_id));
  }
  // The last segment's header is written with its first batch. If it is
  // zero or does not verify, that batch may never have completed, so the
  // segment is not part of the log (step 4 checks that no later batch
  // proves otherwise). Any earlier segment was complete before the next
  // one was created, so there a bad header is corruption.
  std::size_t m = n;  // segments that are part of the log
  if (n > 0 && hs[n - 1].kind != HeaderCheck::ok) m = n - 1;
  for (std::size_t i = m; i < n; ++i) r.ignored.push_back(source.name(i));

  // ---- 2. records -----------------------------------------------------------
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < m; ++i) {
    const std::string where = source.where(i);
    const HeaderCheck& hc = hs[i];
    if (hc.kind == HeaderCheck::zero) {
      set_corrupt(r, where, 0, "the segment header is all zeros but later segments exist", m - i - 1);
      return r;
    }
    if (hc.kind == HeaderCheck::bad) {
      set_corrupt(r, where, 0, hc.why, m - i - 1);
      return r;
    }
    const JournalSegmentHeader& h = hc.h;
    if (i == 0) {
      expected = h.first_seq;
      r.first_seq = h.first_seq;
      r.next_seq = expected;
    } else {
      const auto& prev = r.segments.back();
      if (h.segment_index != prev.index + 1) {
        set_corrupt(r, where, 0,
                    "segment index " + std::to_string(h.segment_index) + " follows index " +
                        std::to_string(prev.index) + ": a segment file is missing",
                    m - i - 1);
        return r;
      }
      if (h.first_seq != expected) {
        set_corrupt(r, where, 0,
                    "the segment starts at seq " + std::to_string(h.first_seq) +
                        " but the previous one ends before seq " + std::to_string(expected),
                    m - i - 1);
        return r;
      }
    }

    const auto image = source.load(i);
    const std::size_t limit = static_cast<std::size_t>(std::min<std::uint64_t>(image.size(), h.segment_size));
    const bool last = i + 1 == m;
    // Rule 2: a segment followed by a valid header ends where that header says.
    bool bounded = false;
    std::size_t bound = limit;
    std::string bound_problem;
    if (!last) {
      if (hs[i + 1].kind != HeaderCheck::ok) {
        bound_problem = "the next segment's header is not valid";
      } else if (hs[i + 1].h.segment_index != h.segment_index + 1) {
        bound_problem = "segment index " + std::to_string(hs[i + 1].h.segment_index) + " follows index " +
                        std::to_string(h.segment_index) + ": a segment file is missing";
      } else {
        const std::uint64_t pe = hs[i + 1].h.prev_segment_end;
        if (pe < kJournalSegmentHeaderSize || pe > limit || pe % kJournalAlign != 0)
          bound_problem = "the next segment says this one ends at byte " + std::to_string(pe) +
                          ", outside its 64 .. " + std::to_string(limit) + " bytes";
        else {
          bounded = true;
          bound = static_cast<std::size_t>(pe);
        }
      }
    }
    if (limit < kJournalSegmentHeaderSize) {
      set_corrupt(r, where, 0, "the segment is shorter than its header", m - i - 1);
      return r;
    }

    JournalSegmentInfo info{source.name(i), h.segment_index, h.first_seq, 0, 0, 0, h.segment_size};
    std::size_t off = kJournalSegmentHeaderSize;
    RecordKind stop = RecordKind::ok;
    std::string why;
    while (off < bound) {
      ParsedRecord p;
      stop = check_record(image, off, bound, p, why);
      if (stop == RecordKind::ok && p.h.seq != expected) {
        stop = RecordKind::bad;
        why = "the record has seq " + std::to_string(p.h.seq) + " where seq " + std::to_string(expected) +
              " was expected";
      }
      if (stop != RecordKind::ok) break;
      const auto type = static_cast<JournalRecordType>(p.h.type);
      const auto payload = image.subspan(off + kJournalRecordHeaderSize, p.h.length);
      if (visit) visit(JournalRecordView{type, p.h.flags, p.h.seq, payload, h.segment_index, off});
      expected += journal_seqs_consumed(type, payload);
      r.next_seq = expected;
      ++r.records;
      ++info.records;
      off += p.size;
    }
    if (off >= bound) stop = RecordKind::ok;
    info.end_offset = off;
    info.end_seq = expected;
    r.segments.push_back(info);

    if (bounded) {
      if (off != bound) {
        set_corrupt(r, where, off,
                    (stop == RecordKind::zero ? std::string("the records end early (zeros)") : why) +
                        ", before byte " + std::to_string(bound) + " where the next segment says they end",
                    m - i - 1);
        return r;
      }
      continue;
    }
    if (!last) {
      // The next header is unusable, so this segment's end cannot be checked:
      // its records up to the first stop are handed out, then the chain breaks.
      set_corrupt(r, source.where(i + 1), 0, bound_problem.empty() ? "the header is not valid" : bound_problem,
                  m - i - 2);
      if (hs[i + 1].kind == HeaderCheck::bad) r.message += " (" + hs[i + 1].why + ")";
      return r;
    }

    // ---- 3. the end of the last segment ------------------------------------
    r.end = JournalEnd::clean;
    if (off >= limit) break;
    const std::size_t nz = last_nonzero(image, off, limit);
    if (stop == RecordKind::zero && nz == kNone) break;
    const Survivors s = find_survivors(image, off + kJournalAlign, limit, expected, kNone);
    if (s.later_batch_at != kNone) {
      const std::string what = stop == RecordKind::zero ? std::string("the records stop (zeros)") : why;
      set_corrupt(r, where, off,
                  what + ", but a later batch at offset " + std::to_string(s.later_batch_at) +
                      " verifies, so an acknowledged batch is damaged",
                  0);
      return r;
    }
    r.end = JournalEnd::torn_tail;
    r.damaged_segment = where;
    r.damage_offset = off;
    r.discarded_bytes = nz == kNone ? 0 : nz + 1 - off;
    r.discarded_records = s.records;
    r.message = "journal segment '" + where + "': torn tail at offset " + std::to_string(off) + " (" +
                (stop == RecordKind::zero ? std::string("zeros followed by data") : why) + "): " +
                std::to_string(r.discarded_bytes) + " bytes and " + std::to_string(s.records) +
                " verifiable record(s) of the unfinished last batch discarded; the log ends before seq " +
                std::to_string(expected);
  }

  // ---- 4. ignored segments: a zero header must not hide acknowledged data ---
  for (std::size_t i = m; i < n; ++i) {
    const auto image = source.load(i);
    const std::size_t nz = last_nonzero(image, 0, image.size());
    if (nz == kNone) continue;
    const Survivors s = find_survivors(image, kJournalSegmentHeaderSize, image.size(), expected,
                                       kJournalSegmentHeaderSize);
    const std::string header_state =
        hs[i].kind == HeaderCheck::zero ? std::string("the segment header is all zeros") : hs[i].why;
    if (s.later_batch_at != kNone) {
      set_corrupt(r, source.where(i), 0,
                  header_state + ", but a second batch at offset " + std::to_string(s.later_batch_at) +
                      " verifies, so the header was damaged after it was written",
                  0);
      r.ignored.clear();
      return r;
    }
    if (r.end != JournalEnd::torn_tail) {
      r.end = JournalEnd::torn_tail;
      r.damaged_segment = source.where(i);
      r.damage_offset = 0;
      r.discarded_bytes = nz + 1;
      r.discarded_records = s.records;
      r.message = "journal segment '" + source.where(i) + "': " + header_state +
                  " (a new segment cut short by a crash): " + std::to_string(r.discarded_bytes) + " bytes and " +
                  std::to_string(s.records) + " verifiable record(s) discarded; the log ends before seq " +
                  std::to_string(expected);
    }
  }
  if (m == 0 && r.end != JournalEnd::torn_tail) r.end = JournalEnd::empty;
  return r;
}

}  // namespace ackring::detail
