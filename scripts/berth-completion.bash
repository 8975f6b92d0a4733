# bash completion for berth. Install: source this file, or copy it to
# /etc/bash_completion.d/berth (or ~/.local/share/bash-completion/completions/berth).
_berth_containers() { berth ls 2>/dev/null | awk 'NR>1 {print $1}'; }
_berth_images() { berth images 2>/dev/null | awk 'NR>1 {print $1}'; }
_berth() {
  local cur prev cmd
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  cmd=${COMP_WORDS[1]}
  local cmds="pull load images rmi create run exec ls status rm cp hint tool mcp preflight version help"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$cmds --help --version --debug" -- "$cur"))
    return
  fi
  local flags=""
  case $cmd in
    pull) flags="--platform -q --quiet --json --help" ;;
    load) flags="--name -q --quiet --json --help" ;;
    images) flags="--json --help" ;;
    rmi) flags="--json --help" ;;
    create|run) flags="--name --image --purpose --repo --setup --env-passthrough -w --workdir -v --volume -p --publish
                       --no-mount-cwd -e --env --memory --cpus --pids --network --persistent --platform -q --quiet --json --help"
                [ "$cmd" = run ] && flags="$flags --rm -i -t -it" ;;
    exec) flags="-i -t -it -e --env -w --workdir -u --user --timeout --json --help" ;;
    ls) flags="--json --help" ;;
    status) flags="--health --json --help" ;;
    rm) flags="-f --force --all --confirm --json --help" ;;
    cp|hint) flags="--json --help" ;;
    tool) flags="--request --help" ;;
    preflight) flags="--json --help" ;;
  esac
  case $prev in
    --network) COMPREPLY=($(compgen -W "bridge none host" -- "$cur")); return ;;
    --purpose) COMPREPLY=($(compgen -W "python node rust go general amplifier clean try-repo" -- "$cur")); return ;;
    --env-passthrough) COMPREPLY=($(compgen -W "auto all none" -- "$cur")); return ;;
    -v|--volume|load) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  else
    case $cmd in
      exec|status|rm|hint) COMPREPLY=($(compgen -W "$(_berth_containers)" -- "$cur")) ;;
      rmi|create|run) COMPREPLY=($(compgen -W "$(_berth_images)" -- "$cur")) ;;
      cp) COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
  fi
}
complete -F _berth berth
