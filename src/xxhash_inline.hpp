// xxHash compiled into the calling file (XXH_INLINE_ALL) for the hot paths:
// the payload checksum of every publish and delivery, and the dedup key
// fingerprints. Through the shared library each call pays a PLT jump and the
// library's runtime dispatch, and the compiler cannot see that most inputs
// are short: the out-of-line call was ~24 % of a 64 B publish's CPU time
// (perf, bench/microbench.cpp BM_TryPublish). Other files use <xxhash.h>.
#pragma once

#define XXH_INLINE_ALL
#include <xxhash.h>
