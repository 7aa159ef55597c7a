#!/usr/bin/env bash
# Writes the ackring(1) man page from the CLI's own --help, so it never drifts
# from the binary: help2man turns `ackring --help` / `--version` into the page,
# and a COMMANDS section gets `ackring CMD [SUB] --help` of every subcommand.
# Usage: ackring-man.sh <ackring binary> <output ackring.1.gz>
set -euo pipefail
bin="$1"; out="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Names listed under "Subcommands:" in a help text.
subcommands() {
  awk '/^Subcommands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }'
}
# Roff-safe preformatted text: backslashes escaped, leading '.' and "'" defused.
roff_nf() {
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

main_help="$("$bin" --help)"
# The footer every help repeats (its last paragraph): kept once, on the main page.
footer="$(printf '%s\n' "$main_help" | awk 'BEGIN { RS = "" } { p = $0 } END { print p }')"
strip_footer() {
  local text; text="$(cat)"
  text="${text%"$footer"}"
  printf '%s\n' "$text" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

section() {  # section "<words of the command>"
  local cmd="$1" text
  # shellcheck disable=SC2086
  text="$("$bin" $cmd --help | strip_footer)"
  printf '.SS "ackring %s"\n.nf\n' "$cmd"
  printf '%s\n' "$text" | roff_nf
  printf '.fi\n'
  local sub
  for sub in $(printf '%s\n' "$text" | subcommands); do
    section "$cmd $sub"
  done
}

{
  printf '[COMMANDS]\n'
  for cmd in $(printf '%s\n' "$main_help" | subcommands); do
    section "$cmd"
  done
  printf '[SEE ALSO]\n'
  printf 'The README and docs/cli.md of the ackring sources.\n'
} > "$work/include.h2m"

help2man --no-info --section=1 \
  --name="inspect and operate ackring shared-memory message queues" \
  --include="$work/include.h2m" --output="$work/ackring.1" "$bin"
gzip -9n < "$work/ackring.1" > "$out.tmp"
mv "$out.tmp" "$out"
