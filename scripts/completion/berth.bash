# bash completion for berth: `source <(berth completion bash)`, or put the
# output in /etc/bash_completion.d/berth. Commands, their flags, and the
# names of containers, images and networks (asked of berth itself).
_berth_names() { # containers | images | networks | snapshots
  case $1 in
    containers) berth ls -aq 2>/dev/null ;;
    running) berth ls -q 2>/dev/null ;;
    images) berth images 2>/dev/null | awk 'NR>1 && $1!="<none>" {print $1}' ;;
    networks) berth network ls 2>/dev/null | awk 'NR>1 {print $1}' ;;
    snapshots) berth snapshot ls 2>/dev/null | awk 'NR>1 {print $1}' ;;
  esac
}
_berth() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
  done
  local cmds="pull load images rmi commit snapshot create run exec ls ps status rm logs stop start restart kill cp hint network egress inspect stats top system tool mcp preflight autostart version help completion"
  if [ -z "$cmd" ]; then
    COMPREPLY=($(compgen -W "$cmds --debug --verbose --version --help" -- "$cur"))
    return
  fi
  local prev=${COMP_WORDS[COMP_CWORD-1]}
  case $prev in
    --network)
      if [ "$cmd" = logs ]; then COMPREPLY=($(compgen -W "$(_berth_names containers)" -- "$cur"))
      else COMPREPLY=($(compgen -W "bridge none host $(_berth_names networks)" -- "$cur")); fi
      return ;;
    --egress) COMPREPLY=($(compgen -W "allow: deny host nolog noprofile" -- "$cur")); compopt -o nospace 2>/dev/null; return ;;
    --restart) COMPREPLY=($(compgen -W "no on-failure always unless-stopped" -- "$cur")); return ;;
    -s|--signal) COMPREPLY=($(compgen -W "TERM KILL INT HUP QUIT USR1 USR2" -- "$cur")); return ;;
    --gpus) COMPREPLY=($(compgen -W "all device=" -- "$cur")); return ;;
    --device) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --purpose) COMPREPLY=($(compgen -W "python node rust go general amplifier clean try-repo" -- "$cur")); return ;;
    -v|--volume|--seccomp-profile|--egress-file|-w|--workdir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --type) COMPREPLY=($(compgen -W "container image" -- "$cur")); return ;;
  esac
  # system and snapshot: the subcommand's own help has the flags
  local sub=""
  case $cmd in system|snapshot) [ "$COMP_CWORD" -gt $((i + 1)) ] && sub=${COMP_WORDS[i+1]} ;; esac
  if [[ $cur == -* ]]; then
    local flags
    flags=$(berth "$cmd" $sub --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*\|^  -[a-zA-Z]' | tr -d ' ' | sort -u)
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  case $cmd in
    exec|hint|stop|restart|kill) COMPREPLY=($(compgen -W "$(_berth_names running)" -- "$cur")) ;;
    status|rm|logs|start) COMPREPLY=($(compgen -W "$(_berth_names containers)" -- "$cur")) ;;
    autostart) COMPREPLY=($(compgen -W "enable disable status" -- "$cur")) ;;
    stats|top) COMPREPLY=($(compgen -W "$(_berth_names running)" -- "$cur")) ;;
    inspect) COMPREPLY=($(compgen -W "$(_berth_names containers) $(_berth_names images)" -- "$cur")) ;;
    commit)
      if [ "$COMP_CWORD" -eq $((i + 1)) ]; then COMPREPLY=($(compgen -W "$(_berth_names containers)" -- "$cur")); fi ;;
    system) [ -z "$sub" ] && COMPREPLY=($(compgen -W "df prune" -- "$cur")) ;;
    snapshot)
      if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "ls rm" -- "$cur"))
      elif [ "$sub" = rm ]; then COMPREPLY=($(compgen -W "$(_berth_names snapshots)" -- "$cur")); fi ;;
    cp) COMPREPLY=($(compgen -W "$(_berth_names containers | sed 's/$/:/')" -- "$cur") $(compgen -f -- "$cur")); compopt -o nospace 2>/dev/null ;;
    create|run|rmi) COMPREPLY=($(compgen -W "$(_berth_names images)" -- "$cur")) ;;
    network)
      if [ "$COMP_CWORD" -eq $((i + 1)) ]; then COMPREPLY=($(compgen -W "create rm ls" -- "$cur"))
      else COMPREPLY=($(compgen -W "$(_berth_names networks)" -- "$cur")); fi ;;
    egress)
      if [ "$COMP_CWORD" -eq $((i + 1)) ]; then COMPREPLY=($(compgen -W "test" -- "$cur"))
      elif [ "$COMP_CWORD" -eq $((i + 2)) ]; then COMPREPLY=($(compgen -W "$(_berth_names containers)" -- "$cur")); fi ;;
    help) COMPREPLY=($(compgen -W "$cmds" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
    load) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F _berth berth
