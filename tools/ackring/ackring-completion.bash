# bash completion for ackring (installed as share/bash-completion/completions/ackring).
# Completes command and subcommand names, each command's options, and queue
# names (files ackring.* in --dir, $ACKRING_SHM_DIR or /dev/shm).

_ackring_queues() {
  local dir="${ACKRING_SHM_DIR:-/dev/shm}" i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    [[ ${COMP_WORDS[i]} == --dir ]] && dir="${COMP_WORDS[i + 1]}"
  done
  local f
  for f in "$dir"/ackring.*; do
    [[ -f $f ]] && printf '%s\n' "${f##*/ackring.}"
  done
}

_ackring() {
  local cur prev cmd sub
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD - 1]}"
  local commands="ls create rm purge stat metrics top peek pub sub group dlq verify recover journal journald bridge"

  # The command and, for command groups, the subcommand typed so far.
  local i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    [[ $w == -* ]] && continue
    [[ ${COMP_WORDS[i - 1]} == --dir ]] && continue
    if [[ -z $cmd ]]; then
      cmd="$w"
    elif [[ -z $sub && ($cmd == group || $cmd == journal || $cmd == dlq || $cmd == bridge) ]]; then
      sub="$w"
      break
    fi
  done

  case "$prev" in
    --dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --file | -f) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --delimiter | -d) COMPREPLY=($(compgen -W "line length" -- "$cur")); return ;;
    --start) COMPREPLY=($(compgen -W "earliest latest" -- "$cur")); return ;;
    --overflow) COMPREPLY=($(compgen -W "block drop" -- "$cur")); return ;;
    --dedup-full) COMPREPLY=($(compgen -W "refuse evict" -- "$cur")); return ;;
    --durability) COMPREPLY=($(compgen -W "none async sync" -- "$cur")); return ;;
    --journal-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --group-owner) COMPREPLY=($(compgen -g -- "$cur")); return ;;
  esac

  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$commands --dir --help --version" -- "$cur"))
    return
  fi

  local opts="--help --dir"
  case "$cmd" in
    ls) opts+=" --json" ;;
    create) opts+=" --capacity --max-message-size --lease --max-deliveries --max-groups --max-members
                    --max-producers --claim-timeout --mode --group-owner --group --no-dedup --dedup-entries
                    --dedup-window --dedup-full --no-bloom --durability --journal-dir --flush-interval" ;;
    rm) opts+=" --force --dlq --journal" ;;
    purge) opts+=" --group" ;;
    stat | verify) opts+=" --json" ;;
    metrics) opts+=" --listen" ;;
    recover) opts+=" --journal-dir --json --capacity --max-message-size --lease --max-deliveries --max-groups
                     --max-members --max-producers --claim-timeout --durability --flush-interval" ;;
    journald) opts+=" --journal-dir --verbose -v --interval" ;;
    top) opts+=" --interval --iterations" ;;
    peek) opts+=" --group --from --count -n --raw --delimiter --json" ;;
    pub) opts+=" --file --delimiter --timeout --json" ;;
    sub) opts+=" --group --ack --no-ack --count -n --timeout --lease --delimiter --json --create" ;;
    group)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "add rm ls rewind --help" -- "$cur"))
        return
      fi
      case "$sub" in
        add) opts+=" --start --overflow" ;;
        rm) opts+=" --force" ;;
        ls) opts+=" --json" ;;
        rewind) opts+=" --to-seq --to-time --json" ;;
      esac
      ;;
    journal)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "dump --help" -- "$cur"))
        return
      fi
      opts+=" --journal-dir --from --count -n --json --payload"
      ;;
    bridge)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "out in --help" -- "$cur"))
        return
      fi
      opts+=" --server -s --stream --name --count -n --connect-timeout --request-timeout --quiet -q"
      case "$sub" in
        out) opts+=" --group -g --subject --max-in-flight --lease" ;;
        in) opts+=" --consumer --filter-subject --batch --nak-delay" ;;
      esac
      ;;
    dlq)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "redrive --count -n --json --help --dir $(_ackring_queues)" -- "$cur"))
        return
      fi
      ;;
  esac

  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_ackring_queues)" -- "$cur"))
  fi
}

complete -F _ackring ackring
