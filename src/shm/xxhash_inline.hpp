// xxHash compiled into the calling file (XXH_INLINE_ALL), for the hot paths
// only: the payload checksum of every publish and delivery, and the dedup key
// fingerprints. Inlined, a call skips the shared library's PLT jump and
// runtime dispatch, and the compiler sees the length, so the short inputs
// most messages are take xxHash's short-input code directly. Cold paths
// (journal, recovery, file checks) use <xxhash.h>: no reason to grow them.
// bench/README.md has the measurement.
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>
