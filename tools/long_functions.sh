#!/bin/sh
# Lists the functions (lambdas included) in DIR longer than N lines (default
# 60), longest first: the outliers a reader meets. Needs universal-ctags.
#   tools/long_functions.sh [DIR] [N]     e.g. tools/long_functions.sh src 60
# Length: end line - start line + 1, from the end: field of ctags.
dir=${1:-src}; max=${2:-60}
find "$dir" \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.inl' \) -print0 |
  xargs -0 ctags --languages=C++ --c++-kinds=f --fields=+ne -o - 2>/dev/null |
  awk -F'\t' -v max="$max" '{
    line=""; end=""; scope="";
    for (i = 4; i <= NF; i++) {
      if ($i ~ /^line:/) line = substr($i, 6);
      else if ($i ~ /^end:/) end = substr($i, 5);
      else if ($i ~ /^(class|function|namespace|struct):/) { scope = $i; sub(/^[a-z]+:/, "", scope) }
    }
    if (line != "" && end != "") { n = end - line + 1; if (n > max) printf "%5d  %s:%s  %s%s\n", n, $2, line, (scope != "" ? scope "::" : ""), $1 }
  }' | sort -rn
