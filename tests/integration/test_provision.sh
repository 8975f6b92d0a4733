#!/bin/bash
# Provisioning: env modes and precedence, git/gh/ssh forwarding, dotfiles
# (every script choice, symlink fallback, inline files, private repo on an
# image without git), purpose profiles, try-repo, setup commands. Local git
# repositories are served on loopback (git daemon and git http-backend).
. "$(dirname "$0")/lib.sh"

PROBE=$SUITE_TMP/probe
gcc -static -O2 -o "$PROBE" "$IT_DIR/probe.c" 2>"$SUITE_TMP/probe.log" && chmod 755 "$PROBE"
GITROOT=$SUITE_TMP/git
mkdir -p "$GITROOT/private"
chmod -R 755 "$GITROOT"
GIT_PORT=$((20000 + RANDOM % 10000)); HTTP_PORT=$((GIT_PORT + 1))
git daemon --base-path="$GITROOT" --export-all --listen=127.0.0.1 --port=$GIT_PORT --reuseaddr --detach \
  --pid-file="$SUITE_TMP/gitd.pid" "$GITROOT" 2>"$SUITE_TMP/gitd.log"
python3 "$REPO/tests/fixtures/githttp.py" "$GITROOT" "$HTTP_PORT" tester:s3cret >"$SUITE_TMP/githttp.log" 2>&1 &
HTTP_PID=$!
trap 'kill "$(cat "$SUITE_TMP/gitd.pid" 2>/dev/null)" "$HTTP_PID" 2>/dev/null; t_cleanup_suite' EXIT

# mkrepo NAME FILE=CONTENT...: a bare repo under $GITROOT/NAME.git
mkrepo() {
  local name=$1; shift
  local w=$SUITE_TMP/work-${name//\//-}
  rm -rf "$w"; mkdir -p "$w"
  local kv f
  for kv in "$@"; do
    f=${kv%%=*}
    mkdir -p "$w/$(dirname "$f")"
    printf '%b' "${kv#*=}" >"$w/$f"
    case $f in *.sh|script/*) chmod 755 "$w/$f" ;; esac
  done
  git -C "$w" init -q -b main && git -C "$w" -c user.name=t -c user.email=t@t add -A && \
    git -C "$w" -c user.name=t -c user.email=t@t commit -qm init
  rm -rf "$GITROOT/$name.git"
  git clone -q --bare "$w" "$GITROOT/$name.git"
  chmod -R a+rX "$GITROOT"
}
REPO_URL() { echo "git://127.0.0.1:$GIT_PORT/$1.git"; }

step_of() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); s=[x for x in d["provisioning_report"] if x["name"]==sys.argv[2]]; print(s[0][sys.argv[3]] if s else "MISSING")' "$B_OUTF" "$1" "$2"; }
home_file() { printf '%b' "$2" >"$BERTH_HOME/$1"; [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$BERTH_HOME"; true; }
create_req() { # JSON fields (without braces) added to a busybox create
  tool '{"operation":"create","name":"p","image":"localhost/busybox","mount_cwd":false,'"$1"'}'
  [ "$B_RC" = 0 ] || fail "create failed: $(cat "$B_OUTF")"
}
in_ctr() { b_ok exec p sh -c "$1"; }

test_env_modes_and_precedence() {
  setup_ctr
  B_EXTRA_ENV="FOO_API_KEY=k1 OTHER=o1 GH_PLAIN=g A*B_TOKEN=star PATH_LIKE=p" create_req '"env_passthrough":"auto","env":{"FOO_API_KEY":"explicit"}'
  in_ctr 'echo "$FOO_API_KEY|${OTHER:-unset}"'
  assert_eq "$B_OUT" "explicit|unset" "auto: patterns match; explicit env wins"
  b_ok exec p env # not through a shell: sh drops names that are not identifiers
  assert_contains "$B_OUT" "A*B_TOKEN=star" "a name with glob characters is matched like any other"
  b_ok rm -f p
  B_EXTRA_ENV="FOO_API_KEY=k1 OTHER=o1" create_req '"env_passthrough":"all"'
  in_ctr 'echo "$FOO_API_KEY|$OTHER|${SHLVL:-x}|$HOME"'
  assert_eq "$B_OUT" "k1|o1|1|/root" "all: everything except the never-pass list (HOME stays the container's)"
  b_ok rm -f p
  B_EXTRA_ENV="FOO_API_KEY=k1 OTHER=o1" create_req '"env_passthrough":"none","env":{"ONLY":"me"}'
  in_ctr 'echo "${FOO_API_KEY:-unset}|${OTHER:-unset}|$ONLY"'
  assert_eq "$B_OUT" "unset|unset|me" "none"
  b_ok rm -f p
  B_EXTRA_ENV="FOO_API_KEY=k1 OTHER=o1 A*B_TOKEN=star" create_req '"env_passthrough":["OTHER","MISSING_VAR","A*B_TOKEN"]'
  assert_contains "$(cat "$B_OUTF")" '"A*B_TOKEN"' "the reply names it"
  in_ctr 'echo "${FOO_API_KEY:-unset}|$OTHER|${MISSING_VAR-absent}"'
  assert_eq "$B_OUT" "unset|o1|absent" "an explicit list passes exactly the named vars that exist"
  b_ok exec p env
  assert_contains "$B_OUT" "A*B_TOKEN=star" "names are taken literally (no globbing)"
  b_ok rm -f p
  # a list naming HOME or PATH: the container keeps its own, and the report says so
  B_EXTRA_ENV="OTHER=o1 PATH=/host-only:/usr/sbin:/usr/bin:/sbin:/bin" create_req '"env_passthrough":["HOME","PATH","OTHER","SHELL"]'
  assert_contains "$(step_of environment detail)" "keeps its own: HOME, PATH, SHELL"
  in_ctr 'echo "$HOME|$OTHER|$PATH"'
  assert_contains "$B_OUT" "/root|o1|" "HOME is the container's"
  assert_not_contains "$B_OUT" "/host-only" "PATH is the container's"
}

test_profile_env_under_explicit() {
  setup_ctr
  write_config '{"profiles":{"t1":{"image":"localhost/busybox","packages":[],"setup":[],"env":{"PROF":"p","BOTH":"profile"}}}}'
  B_EXTRA_ENV="BOTH_TOKEN=x" tool '{"operation":"create","name":"p","purpose":"t1","mount_cwd":false,"env":{"BOTH":"explicit"}}'
  assert_eq "$B_RC" 0 "$(cat "$B_OUTF")"
  in_ctr 'echo "$PROF|$BOTH|$BOTH_TOKEN"'
  assert_eq "$B_OUT" "p|explicit|x"
}

test_git_forwarding() {
  setup_ctr
  home_file .gitconfig '[user]\n\tname = Test User\n\temail = t@example.com\n[include]\n\tpath = ~/.gitconfig-extra\n[credential]\n\thelper = store\n[http]\n\tproxy = http://proxy:3128\n[safe]\n\tdirectory = *\n[alias]\n\tco = checkout\n[url "git@github.com:"]\n\tinsteadOf = gh:\n'
  home_file .gitconfig-extra '[core]\n\teditor = vim\n'
  home_file .gitconfig.local '[user]\n\tsigningkey = ABC\n'
  mkdir -p "$BERTH_HOME/.ssh"; home_file .ssh/known_hosts 'github.com ssh-ed25519 AAAA\n'
  create_req '"forward_gh":false'
  assert_eq "$(step_of git status)" success "git step: $(step_of git detail)"
  in_ctr 'cat ~/.gitconfig; echo ---; cat ~/.gitconfig.local ~/.ssh/known_hosts; ls -ln ~/.gitconfig | awk "{print \$3}"'
  assert_contains "$B_OUT" 'name = "Test User"'
  assert_contains "$B_OUT" 'editor = "vim"' "includes are resolved"
  assert_contains "$B_OUT" 'co = "checkout"'
  assert_contains "$B_OUT" '[url "git@github.com:"]'
  assert_not_contains "$B_OUT" "helper" "credential section removed"
  assert_not_contains "$B_OUT" "proxy" "http section removed"
  assert_not_contains "$B_OUT" "directory" "safe section removed"
  assert_not_contains "$B_OUT" "[include]"
  assert_contains "$B_OUT" "signingkey = ABC"
  assert_contains "$B_OUT" "github.com ssh-ed25519"
  assert_eq "$(tail -n1 <<<"$B_OUT")" 0 "owned by the container user (root)"
}

test_gh_token_from_stub() {
  setup_ctr
  mkdir -p "$T_DIR/bin"
  printf '#!/bin/sh\n[ "$1 $2" = "auth token" ] && echo ghp_stubtoken123 && exit 0\nexit 1\n' >"$T_DIR/bin/gh"
  chmod 755 "$T_DIR/bin" "$T_DIR/bin/gh"
  B_EXTRA_ENV="PATH=$T_DIR/bin:/usr/local/bin:/usr/bin:/bin" create_req '"forward_git":false'
  assert_eq "$(step_of gh status)" success "gh step: $(step_of gh detail)"
  assert_not_contains "$(cat "$B_OUTF")" ghp_stubtoken123 "the reply"
  in_ctr 'echo $GH_TOKEN $GITHUB_TOKEN'
  assert_eq "$B_OUT" "ghp_stubtoken123 ghp_stubtoken123" "every exec sees the token"
  grep -rqs ghp_stubtoken123 "$BERTH_ROOT" && fail "the token is in a file under the data dir"
  b_ok rm -f p
  B_EXTRA_ENV="PATH=$T_DIR/bin:/usr/local/bin:/usr/bin:/bin" create_req '"forward_gh":false'
  in_ctr 'echo ${GH_TOKEN:-none}'
  assert_eq "$B_OUT" none "forward_gh=false"
}

test_ssh_agent_and_copy() {
  [ -x "$PROBE" ] || fail "probe not built: $(cat "$SUITE_TMP/probe.log")"
  command -v ssh-agent >/dev/null || fail "ssh-agent not installed (openssh-client)"
  setup_ctr
  mkdir -p "$BERTH_HOME/.ssh"
  ssh-keygen -q -t ed25519 -N '' -f "$BERTH_HOME/.ssh/id_ed25519" >/dev/null
  echo 'github.com ssh-ed25519 AAAA' >"$BERTH_HOME/.ssh/known_hosts"
  [ "$BERTH_MODE" = rootless ] && chown -R "$TEST_USER:" "$BERTH_HOME"
  local sock=$BERTH_HOME/agent.sock # a directory the agent's user may write
  if [ "$BERTH_MODE" = rootless ]; then
    runuser -u "$TEST_USER" -- ssh-agent -a "$sock" >"$T_DIR/agent.env"
    runuser -u "$TEST_USER" -- env SSH_AUTH_SOCK="$sock" ssh-add -q "$BERTH_HOME/.ssh/id_ed25519"
  else
    ssh-agent -a "$sock" >"$T_DIR/agent.env"
    SSH_AUTH_SOCK=$sock ssh-add -q "$BERTH_HOME/.ssh/id_ed25519"
  fi
  local apid; apid=$(sed -n 's/.*SSH_AGENT_PID=\([0-9]*\).*/\1/p' "$T_DIR/agent.env")
  cp "$PROBE" "$T_DIR/probe"; chmod 755 "$T_DIR/probe"
  B_EXTRA_ENV="SSH_AUTH_SOCK=$sock" create_req '"forward_ssh":true,"forward_git":false'
  assert_eq "$(step_of ssh status)" success
  assert_contains "$(step_of ssh detail)" "agent"
  b_ok cp "$T_DIR/probe" p:/probe
  in_ctr '/probe agent'
  assert_eq "$B_OUT" "agent identities=1" "the forwarded agent lists the key inside"
  b_ok rm -f p
  kill "$apid" 2>/dev/null || true
  # no agent: ~/.ssh is copied with usable modes, owned by the container user
  create_req '"forward_ssh":true,"forward_git":false'
  assert_eq "$(step_of ssh status)" success "ssh copy: $(step_of ssh detail) $(step_of ssh error)"
  in_ctr 'stat -c "%a %u %n" ~/.ssh ~/.ssh/id_ed25519 ~/.ssh/id_ed25519.pub ~/.ssh/known_hosts; head -c 35 ~/.ssh/id_ed25519'
  assert_contains "$B_OUT" "700 0 /root/.ssh"
  assert_contains "$B_OUT" "600 0 /root/.ssh/id_ed25519"
  assert_contains "$B_OUT" "644 0 /root/.ssh/id_ed25519.pub"
  assert_contains "$B_OUT" "-----BEGIN OPENSSH PRIVATE KEY-----" "the key is readable by the container user"
}

test_dotfiles_script_order() {
  setup_ctr
  mkrepo df-explicit 'custom.sh=echo custom > ~/ran' 'install.sh=echo install > ~/ran'
  mkrepo df-install 'install.sh=echo install > ~/ran' 'setup.sh=echo setup > ~/ran'
  mkrepo df-setup 'setup.sh=echo setup > ~/ran' 'bootstrap.sh=echo bootstrap > ~/ran'
  mkrepo df-bootstrap 'bootstrap.sh=echo bootstrap > ~/ran' 'script/setup=#!/bin/sh\necho script-setup > ~/ran'
  mkrepo df-scriptsetup 'script/setup=#!/bin/sh\necho script-setup > ~/ran' 'Makefile=all:\n\techo make > ~/ran\n'
  mkrepo df-make 'Makefile=all:\n\techo make > ~/ran\n'
  local c want
  for c in explicit:custom install:install setup:setup bootstrap:bootstrap scriptsetup:script-setup; do
    want=${c#*:}
    local extra=""; [ "${c%%:*}" = explicit ] && extra=',"dotfiles_script":"custom.sh"'
    create_req "\"dotfiles_repo\":\"$(REPO_URL df-${c%%:*})\",\"forward_git\":false$extra"
    assert_eq "$(step_of dotfiles status)" success "df-${c%%:*}: $(step_of dotfiles detail) $(step_of dotfiles error)"
    in_ctr 'cat ~/ran; ls ~/.dotfiles | head -3'
    assert_eq "$(head -n1 <<<"$B_OUT")" "$want" "df-${c%%:*} ran the right script"
    b_ok rm -f p
  done
  # Makefile -> make (busybox has no make: the step must say so, not pass)
  create_req "\"dotfiles_repo\":\"$(REPO_URL df-make)\",\"forward_git\":false"
  assert_eq "$(step_of dotfiles status)" failed
  assert_contains "$(step_of dotfiles detail)" "ran make"
  assert_eq "$(field '["status"]')" partial
}

test_dotfiles_symlink_fallback_target_branch() {
  setup_ctr
  mkrepo df-links '.bashrc=alias ll=ls\n' '.vimrc=set nu\n' 'README=x'
  git -C "$GITROOT/df-links.git" branch other main
  create_req "\"dotfiles_repo\":\"$(REPO_URL df-links)\",\"dotfiles_branch\":\"other\",\"dotfiles_target\":\"~/dots\",\"forward_git\":false"
  assert_eq "$(step_of dotfiles status)" success "$(step_of dotfiles detail)"
  in_ctr 'readlink ~/.bashrc; readlink ~/.vimrc; cat ~/.bashrc; test -e ~/README || echo no-readme'
  assert_eq "$B_OUT" $'dots/.bashrc\ndots/.vimrc\nalias ll=ls\nno-readme'
}

test_dotfiles_inline_awkward() {
  setup_ctr
  local content='quotes '"'"'single'"'"' "double" $HOME `cmd` \\back\\slash\nline2\n\ttab\n'
  create_req '"forward_git":false,"dotfiles_inline":{".bashrc":"alias ll='"'"'ls -la'"'"'\nexport X=\"$HOME\"\n","sub/dir/f.txt":"quotes '"'"'single'"'"' \"double\" $HOME `cmd` \\back\\slash\nline2\n\ttab\n"}'
  assert_eq "$(step_of dotfiles status)" success "$(step_of dotfiles error)"
  mkdir -p "$T_DIR/out"; [ "$BERTH_MODE" = rootless ] && chown "$TEST_USER:" "$T_DIR/out"
  b_ok cp p:/root/sub/dir/f.txt "$T_DIR/out/f.txt"
  printf '%b' "$content" >"$T_DIR/want.txt"
  cmp "$T_DIR/want.txt" "$T_DIR/out/f.txt" || fail "inline file not byte-exact: $(od -c "$T_DIR/out/f.txt" | head)"
  b_ok cp p:/root/.bashrc "$T_DIR/out/bashrc"
  assert_file_content "$T_DIR/out/bashrc" $'alias ll=\'ls -la\'\nexport X="$HOME"\n'
  tool '{"operation":"create","name":"q","image":"localhost/busybox","dotfiles_inline":{"../escape":"x"}}'
  assert_eq "$(field '["code"]')" invalid_value "inline paths may not climb out of ~"
}

test_dotfiles_skip_and_clean() {
  setup_ctr
  mkrepo df-skip 'install.sh=echo install > ~/ran'
  create_req "\"dotfiles_repo\":\"$(REPO_URL df-skip)\",\"dotfiles_skip\":true"
  assert_eq "$(step_of dotfiles status)" skipped
  in_ctr 'test -e ~/ran && echo ran || echo not-ran'
  assert_eq "$B_OUT" not-ran
  b_ok rm -f p
  home_file .gitconfig '[user]\n\tname = X\n'
  B_EXTRA_ENV="SOME_API_KEY=k" create_req "\"purpose\":\"clean\",\"dotfiles_repo\":\"$(REPO_URL df-skip)\""
  assert_eq "$(step_of dotfiles status)" skipped
  assert_eq "$(step_of git status)" skipped
  assert_contains "$(step_of git detail)" clean
  in_ctr 'echo ${SOME_API_KEY:-none}; test -e ~/.gitconfig && echo gitconfig || echo no-gitconfig'
  assert_eq "$B_OUT" $'none\nno-gitconfig' "clean: no credentials, no dotfiles"
}

test_private_dotfiles_without_git_in_image() {
  setup_ctr
  mkrepo private/df-priv 'install.sh=echo private-ok > ~/ran'
  # the user's own credentials on the host: a git credential store
  home_file .git-credentials "http://tester:s3cret@127.0.0.1:$HTTP_PORT\n"
  home_file .gitconfig '[credential]\n\thelper = store\n'
  chmod 600 "$BERTH_HOME/.git-credentials"
  create_req "\"dotfiles_repo\":\"http://127.0.0.1:$HTTP_PORT/private/df-priv.git\""
  assert_eq "$(step_of dotfiles status)" success "$(step_of dotfiles detail) $(step_of dotfiles error)"
  in_ctr 'cat ~/ran; command -v git || echo no-git-in-image'
  assert_eq "$B_OUT" $'private-ok\nno-git-in-image'
  assert_not_contains "$(cat "$B_OUTF")" s3cret
  rm -f "$BERTH_HOME/.git-credentials"
  b_ok rm -f p
  create_req "\"dotfiles_repo\":\"http://127.0.0.1:$HTTP_PORT/private/df-priv.git\""
  assert_eq "$(step_of dotfiles status)" failed "without credentials the clone fails and says so"
  assert_contains "$(step_of dotfiles error)" "clone"
}

test_try_repo_languages() {
  setup_ctr
  # the language profiles' images and packages are out of reach offline:
  # keep their repo setup, run everything on busybox
  write_config '{"profiles":{"rust":{"image":"localhost/busybox","packages":[],"setup":[]},"python":{"image":"localhost/busybox","packages":[],"setup":[]},"node":{"image":"localhost/busybox","packages":[],"setup":[]},"go":{"image":"localhost/busybox","packages":[],"setup":[]},"general":{"image":"localhost/busybox","packages":[],"setup":[]}}}'
  mkrepo tr-rust 'Cargo.toml=[package]\nname="x"\n'
  mkrepo tr-pyproject 'pyproject.toml=[project]\nname="x"\n'
  mkrepo tr-setuppy 'setup.py=print(1)\n'
  mkrepo tr-req 'requirements.txt=\n'
  mkrepo tr-node 'package.json={}\n'
  mkrepo tr-go 'go.mod=module x\n'
  mkrepo tr-plain 'README=hi\n'
  mkdir -p "$T_DIR/cwd"; chmod 777 "$T_DIR/cwd"
  local c
  for c in rust:rust pyproject:python setuppy:python req:python node:node go:go plain:general; do
    berth_cmd tool --request '{"operation":"create","name":"p","purpose":"try-repo","repo":"'"$(REPO_URL tr-${c%%:*})"'"}'
    (cd "$T_DIR/cwd" && "${B_CMD[@]}") >"$T_DIR/tr.json" 2>"$T_DIR/tr.err" || true
    B_OUTF=$T_DIR/tr.json
    assert_eq "$(field '["detected_language"]')" "${c#*:}" "tr-${c%%:*}: $(head -c 400 "$T_DIR/tr.json")"
    assert_eq "$(step_of purpose_profile:repo status)" success
    b_ok exec p ls /workspace/tr-${c%%:*}
    assert_ne "$B_OUT" "" "the clone is in the container's workspace"
    [ "${c#*:}" = general ] || assert_ne "$(step_of purpose_profile:repo_setup status)" MISSING "the language setup ran"
    b_ok rm -f p
  done
  assert_dir_empty "$T_DIR/cwd" "nothing is written to the caller's current directory"
}

test_setup_commands_report() {
  setup_ctr
  create_req '"setup_commands":["echo first","echo oops >&2; exit 3","echo never"],"forward_git":false'
  assert_eq "$(field '["status"]')" partial
  assert_eq "$(field '["failed_step"]')" "setup_command[1]" "a partial create names its failed step"
  assert_eq "$(step_of 'setup_command[0]' status)" success
  assert_eq "$(step_of 'setup_command[1]' status)" failed
  assert_contains "$(step_of 'setup_command[1]' detail)" "exit 3"
  assert_contains "$(step_of 'setup_command[1]' detail)" "oops"
  assert_eq "$(step_of 'setup_command[2]' status)" skipped
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 1' "kept by default"
  b_ok rm -f p
  # the CLI: a failed step is a failed create (exit 1), saying which; the container is kept
  b_run create -q --no-mount-cwd --setup 'exit 5' --name p localhost/busybox
  assert_eq "$B_RC" 1 "create --setup 'exit 5'"
  assert_contains "$B_ERR" "setup_command[0]"
  assert_contains "$B_ERR" "berth rm -f p"
  b_run create --json --no-mount-cwd --setup 'exit 5' --name q localhost/busybox
  assert_eq "$B_RC" 1 "create --json --setup 'exit 5'"
  assert_eq "$(field '["failed_step"]')" "setup_command[0]"
  b_ok rm -f p q
  tool '{"operation":"create","name":"p","image":"localhost/busybox","mount_cwd":false,"setup_commands":["exit 1"],"remove_on_failure":true,"forward_git":false}'
  assert_eq "$B_RC" 1 "a create removed on failure is a failed call"
  assert_eq "$(field '["removed"]')" true
  assert_contains "$(field '["error"]')" "setup_command[0] failed" "remove_on_failure's reply has an error (MCP isError)"
  b_ok ls --json
  assert_contains "$B_OUT" '"count": 0' "remove_on_failure removes it"
}

test_profile_packages_through_apt() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  write_config '{"profiles":{"tiny":{"image":"local/debian:12","packages":["jq","tree"],"setup":["jq --version"],"env":{"PROFILE_SET":"yes"}}}}'
  BERTH_TEST_TIMEOUT=900 tool '{"operation":"create","name":"p","purpose":"tiny","network":"host","mount_cwd":false,"forward_git":false,"setup_commands":["tree --version"]}'
  assert_eq "$(step_of purpose_profile:packages status)" success "apt in the container: $(step_of purpose_profile:packages detail)"
  assert_eq "$(step_of 'purpose_profile:setup[0]' status)" success
  assert_eq "$(step_of 'setup_command[0]' status)" success
  in_ctr 'command -v jq tree; echo $PROFILE_SET; grep CapEff /proc/self/status'
  assert_contains "$B_OUT" /usr/bin/jq
  assert_contains "$B_OUT" yes
  assert_contains "$B_OUT" "0000000000000000" "workloads still have no capabilities"
}

test_general_profile_installs_through_apt() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  # the general profile as shipped, on the Debian fixture (its own image,
  # ubuntu:24.04, is out of reach offline), over the default bridge network
  BERTH_TEST_TIMEOUT=900 tool '{"operation":"create","name":"p","purpose":"general","image":"local/debian:12","mount_cwd":false,"forward_git":false}'
  assert_eq "$(step_of purpose_profile:packages status)" success "apt: $(step_of purpose_profile:packages detail)"
  assert_eq "$(field '["status"]')" ready
  in_ctr 'for c in git curl gcc make jq tree vi less wget; do command -v $c || echo "missing $c"; done'
  assert_not_contains "$B_OUT" missing "every package of the general profile is installed"
  in_ctr 'grep CapEff /proc/self/status'
  assert_contains "$B_OUT" 0000000000000000 "workloads still hold no capabilities"
}

test_offline_profile_setup_reports_network_error() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  # the python profile's own setup (pip install uv) needs PyPI, which this
  # machine cannot reach: the step must fail and say why, not pass
  write_config '{"profiles":{"python":{"image":"local/debian:12","packages":["python3-pip"],"setup":["pip install uv","uv venv /workspace/.venv"],"env":{"PIP_BREAK_SYSTEM_PACKAGES":"1","PIP_RETRIES":"1","PIP_DEFAULT_TIMEOUT":"5"}}}}'
  BERTH_TEST_TIMEOUT=900 tool '{"operation":"create","name":"p","purpose":"python","mount_cwd":false,"forward_git":false}'
  assert_eq "$(step_of purpose_profile:packages status)" success "python3-pip from the Debian mirror"
  assert_eq "$(step_of 'purpose_profile:setup[0]' status)" failed "pip install uv without PyPI"
  assert_icontains "$(step_of 'purpose_profile:setup[0]' detail)" "connection" "the report carries pip's network error"
  assert_eq "$(step_of 'purpose_profile:setup[1]' status)" skipped
  assert_eq "$(field '["status"]')" partial
}

# the guide's own example: setup_commands with apt, then pytest on a mounted project
test_guide_setup_commands_apt_then_pytest() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  mkdir -p "$T_DIR/proj"; printf 'def test_sum():\n    assert 1 + 1 == 2\n\ndef test_upper():\n    assert "a".upper() == "A"\n' >"$T_DIR/proj/test_x.py"
  chmod -R a+rwX "$T_DIR/proj"
  BERTH_TEST_TIMEOUT=900 tool '{"operation":"create","name":"p","image":"local/debian:12","mount_cwd":false,"forward_git":false,"mounts":[{"host":"'"$T_DIR/proj"'","container":"/workspace"}],"setup_commands":["apt-get update","apt-get install -y python3-pytest"]}'
  assert_eq "$(step_of 'setup_command[0]' status)" success "apt-get update: $(step_of 'setup_command[0]' detail)"
  assert_eq "$(step_of 'setup_command[1]' status)" success "apt-get install: $(step_of 'setup_command[1]' detail)"
  assert_eq "$(field '["status"]')" ready
  tool '{"operation":"exec","container":"p","command":"cd /workspace && python3 -m pytest -q -p no:cacheprovider"}'
  assert_eq "$(field '["returncode"]')" 0 "pytest: $(cat "$B_OUTF")"
  assert_contains "$(field '["stdout"]')" "2 passed"
  # a capless exec of apt-get install fails with the hint, and works with the opt-in
  tool '{"operation":"exec","container":"p","command":"apt-get install -y jq"}'
  assert_ne "$(field '["returncode"]')" 0
  assert_contains "$(field '["hint"]')" "setup_capabilities=true"
  BERTH_TEST_TIMEOUT=600 tool '{"operation":"exec","container":"p","command":"apt-get install -y jq && jq --version","setup_capabilities":true}'
  assert_eq "$(field '["returncode"]')" 0 "apt-get install with setup_capabilities: $(cat "$B_OUTF")"
  b_run exec --setup-caps p sh -c 'grep CapEff /proc/self/status'
  assert_not_contains "$B_OUT" "0000000000000000" "--setup-caps holds the setup set"
  local eff
  eff=$(awk '/^CapEff:/{print $2}' "$B_OUTF")
  assert_eq "$(( 0x$eff & (1 << 27) ))" 0 "CAP_MKNOD (bit 27) in CapEff $eff"
  assert_ne "$(( 0x$eff & (1 << 0) ))" 0 "CAP_CHOWN (bit 0) in CapEff $eff"
  in_ctr 'grep CapEff /proc/self/status'
  assert_contains "$B_OUT" 0000000000000000 "a plain exec holds nothing"
}

# the python profile as shipped, on a Debian image: ready, with pip usable
test_python_profile_on_debian() {
  setup_ctr
  b_ok load -q --name local/debian:12 "$IMAGES/debian"
  BERTH_TEST_TIMEOUT=900 tool '{"operation":"create","name":"p","purpose":"python","image":"local/debian:12","mount_cwd":false,"forward_git":false}'
  assert_eq "$(field '["status"]')" ready "python profile: $(head -c 3000 "$B_OUTF")"
  in_ctr 'pip --version && python -c "import sys; print(sys.prefix)"'
  assert_contains "$B_OUT" "/workspace/.venv"
}

# try-repo: the repository is in the workspace even when a later step fails
test_try_repo_keeps_repo_on_failure() {
  setup_ctr
  write_config '{"profiles":{"python":{"image":"localhost/busybox","packages":[],"setup":["exit 7"]}}}'
  mkrepo tr-fail 'requirements.txt=\n' 'main.py=print(1)\n'
  tool '{"operation":"create","name":"p","purpose":"try-repo","repo":"'"$(REPO_URL tr-fail)"'","forward_git":false}'
  assert_eq "$(step_of purpose_profile:repo status)" success
  assert_eq "$(step_of 'purpose_profile:setup[0]' status)" failed
  assert_contains "$(step_of 'purpose_profile:setup[0]' detail)" "command: exit 7" "a failed profile step names its command"
  assert_eq "$(field '["status"]')" partial
  b_ok exec p ls /workspace/tr-fail
  assert_contains "$B_OUT" main.py "the clone is in the workspace although a step failed"
}

t_run "env: auto, all, none, list; explicit wins" test_env_modes_and_precedence
t_run "env: profile env sits under explicit env" test_profile_env_under_explicit
t_run "git: host config forwarded, secrets sections removed, no git needed" test_git_forwarding
t_run "gh: token from a stub gh, every process, never on disk" test_gh_token_from_stub
t_run "ssh: agent forwarded (real ssh-agent), copy fallback" test_ssh_agent_and_copy
t_run "dotfiles: script resolution order" test_dotfiles_script_order
t_run "dotfiles: symlink fallback, branch, target" test_dotfiles_symlink_fallback_target_branch
t_run "dotfiles: inline files byte-exact" test_dotfiles_inline_awkward
t_run "dotfiles: skip and purpose clean" test_dotfiles_skip_and_clean
t_run "dotfiles: private repo on an image without git" test_private_dotfiles_without_git_in_image
t_run "try-repo: every language marker, nothing in the caller's cwd" test_try_repo_languages
t_run "setup commands: report, stop on failure, remove_on_failure" test_setup_commands_report
t_run "purpose profile: packages install through apt (host network)" test_profile_packages_through_apt
t_run "general profile: its packages install through apt (bridge network)" test_general_profile_installs_through_apt
t_run "offline: a profile setup that needs PyPI fails with the network error" test_offline_profile_setup_reports_network_error
t_run "guide: setup_commands apt-get update + install, pytest in a mounted project; capless apt hint and opt-in" test_guide_setup_commands_apt_then_pytest
t_run "python profile as shipped on a Debian image: ready, pip usable" test_python_profile_on_debian
t_run "try-repo: the repository stays in the workspace when a step fails" test_try_repo_keeps_repo_on_failure
t_summary
