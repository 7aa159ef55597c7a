// xxHash compiled into the calling file (XXH_INLINE_ALL) for the hot paths:
// the payload checksum of every publish and delivery, and the dedup key
// fingerprints. Through the shared library each call pays a PLT jump and the
// library's runtime dispatch, and the compiler cannot see that most inputs
// are short. perf put ~24 % of a 64 B publish's samples in that call; timed
// A/B in BM_TryPublish/64 the gain is within this VM's noise (68-76 ns
// either way), so take it as a small win, not a large one. Other files use
// <xxhash.h>.
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>
