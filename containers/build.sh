#!/usr/bin/env bash
# Builds SpineBench's container images without any registry:
#   spinebench/base       debootstrap minbase bookworm + python3, numpy, Pillow, a non-root user `algorithm` (uid 1000),
#                         imported with `docker import`
#   spinebench/evaluator  base + the evaluators package and its dependencies copied from the platform's virtualenv
#   spinebench/example-algorithm, spinebench/example-evaluation, spinebench/hostile-<behaviour>   `docker build` FROM the base
#   spinebench/baselines-cpu  base + the CPU torch wheel ($SPINEBENCH_TORCH_WHEEL) + baselines/ and evaluators/ with
#                         their distributions from the virtualenv (on demand only: `containers/build.sh baselines`)
# Each image is tagged with a content hash of its build inputs (and `latest`); an image whose tag exists is skipped.
# Usage: containers/build.sh [IMAGE...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
MIRROR=${SPINEBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${SPINEBENCH_BUILD_DIR:-/var/tmp/spinebench-build}
PYTHON=${PYTHON:-$ROOT_DIR/.venv/bin/python}
TORCH_WHEEL=${SPINEBENCH_TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}
HOSTILE_BEHAVIOURS="egress write-outside fork-bomb memory-hog sleep huge-output symlink-output root-user huge-stdout"

log() { printf '[containers/build] %s\n' "$*" >&2; }

# Content hash of files and directories (paths relative to the repo root), plus any extra strings.
content_tag() {
  local paths=() extra=()
  for arg in "$@"; do if [ -e "$arg" ]; then paths+=("$arg"); else extra+=("$arg"); fi; done
  {
    find "${paths[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
    printf '%s\n' "${extra[@]}"
  } | sha256sum | cut -c1-16
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The ids of the images built here are recorded in the trusted image registry (trusted_images.py: the workers refuse
# a spinebench/ reference whose tag was re-pointed since); an image found up to date is checked against its record
# before it is reused or re-tagged `latest`.
TRUSTED=platform/spinebench/algorithms/trusted_images.py
SCRIPT_PYTHON=$PYTHON; [ -x "$SCRIPT_PYTHON" ] || SCRIPT_PYTHON=python3
image_id() { docker image inspect --format '{{.Id}}' "$1"; }
trust() { local ref; for ref in "$@"; do "$SCRIPT_PYTHON" "$TRUSTED" record "$ref" "$(image_id "$ref")"; done; }
verify_trusted() {
  "$SCRIPT_PYTHON" "$TRUSTED" check "$1" "$(image_id "$1")" \
    || { log "$1 is not the image recorded when it was built: remove it (docker rmi $1) and run this again"; exit 1; }
}
# An up-to-date image: verified, re-tagged latest, both recorded.
reuse() { verify_trusted "$1"; docker tag "$1" "$2"; trust "$1" "$2"; log "$1 is up to date"; }

# `docker build -q` with its chatter (the legacy builder's deprecation notice) shown only when the build fails.
quiet_build() {
  local log="$WORK/docker-build.log"
  docker build -q "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
}

BASE_TAG=$(content_tag containers/base "$MIRROR")
BASE=spinebench/base:$BASE_TAG

build_base() {
  if have_image "$BASE"; then reuse "$BASE" spinebench/base:latest; return; fi
  local root="$WORK/base-$BASE_TAG"
  rm -rf "$root"; mkdir -p "$root"
  log "debootstrap minbase bookworm (takes a couple of minutes)"
  containers/base/make-rootfs.sh "$root" "$MIRROR" "$WORK/debootstrap-$BASE_TAG.log"
  log "importing $BASE"
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1' \
    --change 'WORKDIR /' --change 'CMD ["python3"]' - "$BASE" >/dev/null
  docker tag "$BASE" spinebench/base:latest
  trust "$BASE" spinebench/base:latest
  rm -rf "$root"
}

# docker build NAME from CONTEXT with the base image as build argument; tag = hash(inputs, base tag).
build_layered() {
  local name=$1 context=$2; shift 2
  local tag
  tag=$(content_tag "$context" "$BASE_TAG" "$@")
  if have_image "spinebench/$name:$tag"; then reuse "spinebench/$name:$tag" "spinebench/$name:latest"; return; fi
  log "building spinebench/$name:$tag"
  local args=(--build-arg "BASE_IMAGE=$BASE_ID")
  for extra in "$@"; do args+=(--build-arg "$extra"); done
  quiet_build "${args[@]}" -t "spinebench/$name:$tag" -t "spinebench/$name:latest" "$context"
  trust "spinebench/$name:$tag" "spinebench/$name:latest"
}

build_evaluator() {
  # The context holds the evaluators package and the Python distributions it needs, copied from the platform's
  # virtualenv (containers/evaluator/distributions.txt): the same versions as the host CLI, no download.
  local tag
  local versions
  versions=$("$PYTHON" -c 'import sys; from importlib.metadata import version
names = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
print(" ".join(f"{n}=={version(n)}" for n in names))' containers/evaluator/distributions.txt)
  tag=$(content_tag containers/evaluator evaluators "$BASE_TAG" "$versions")
  if have_image "spinebench/evaluator:$tag"; then reuse "spinebench/evaluator:$tag" spinebench/evaluator:latest; return; fi
  local context="$WORK/evaluator-$tag"
  rm -rf "$context"; mkdir -p "$context"
  cp containers/evaluator/Dockerfile containers/evaluator/entrypoint.sh "$context/"
  cp -r evaluators "$context/evaluators"
  find "$context/evaluators" -name __pycache__ -prune -exec rm -rf {} +
  "$PYTHON" containers/evaluator/copy_site.py "$context/site" containers/evaluator/distributions.txt >&2
  log "building spinebench/evaluator:$tag"
  quiet_build --build-arg "BASE_IMAGE=$BASE_ID" -t "spinebench/evaluator:$tag" -t spinebench/evaluator:latest "$context"
  trust "spinebench/evaluator:$tag" spinebench/evaluator:latest
  rm -rf "$context"
}

# Python distributions of a distributions.txt as "name==version" from the virtualenv (part of an image's content tag).
venv_versions() {
  "$PYTHON" -c 'import sys; from importlib.metadata import version
names = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
print(" ".join(f"{n}=={version(n)}" for n in names))' "$1"
}

build_baselines() {
  # The baseline family image: the CPU torch wheel unpacked (the venv's torch is another build), the distributions
  # of containers/baselines/distributions.txt copied from the venv, and the baselines + evaluators packages.
  [ -f "$TORCH_WHEEL" ] || { log "no CPU torch wheel at $TORCH_WHEEL (set SPINEBENCH_TORCH_WHEEL)"; exit 1; }
  local tag versions context
  versions=$(venv_versions containers/baselines/distributions.txt)
  tag=$(content_tag containers/baselines baselines evaluators "$BASE_TAG" "$versions" "$(basename "$TORCH_WHEEL")" \
    "$(stat -c %s "$TORCH_WHEEL")")
  if have_image "spinebench/baselines-cpu:$tag"; then reuse "spinebench/baselines-cpu:$tag" spinebench/baselines-cpu:latest; return; fi
  context="$WORK/baselines-$tag"
  rm -rf "$context"; mkdir -p "$context"
  cp containers/baselines/Dockerfile "$context/"
  cp -r baselines evaluators "$context/"
  find "$context/baselines" "$context/evaluators" -name __pycache__ -prune -exec rm -rf {} +
  "$PYTHON" containers/baselines/unpack_wheel.py "$TORCH_WHEEL" "$context/site" >&2
  "$PYTHON" containers/evaluator/copy_site.py "$context/site" containers/baselines/distributions.txt >&2
  log "building spinebench/baselines-cpu:$tag"
  quiet_build --build-arg "BASE_IMAGE=$BASE_ID" -t "spinebench/baselines-cpu:$tag" -t spinebench/baselines-cpu:latest "$context"
  trust "spinebench/baselines-cpu:$tag" spinebench/baselines-cpu:latest
  rm -rf "$context"
  # Every change to baselines/ makes a new tag: drop the older ones (an image still used by a per-method image stays).
  docker images spinebench/baselines-cpu --format '{{.Tag}}' | { grep -vx -e "$tag" -e latest || true; } \
    | while read -r old; do docker rmi "spinebench/baselines-cpu:$old" >/dev/null 2>&1 || true; done
}

build_hostile() {
  local behaviour user
  for behaviour in $HOSTILE_BEHAVIOURS; do
    user=algorithm; [ "$behaviour" = root-user ] && user=root
    build_layered "hostile-$behaviour" containers/hostile "BEHAVIOUR=$behaviour" "RUN_AS=$user"
  done
}

mkdir -p "$WORK"
targets=${*:-base evaluator example-algorithm example-evaluation hostile}
build_base
verify_trusted "$BASE"   # every other image is built FROM it, referred to by its id
BASE_ID=$(image_id "$BASE")
for target in $targets; do
  case $target in
    base) ;;
    evaluator) build_evaluator ;;
    example-algorithm) build_layered example-algorithm containers/example-algorithm ;;
    example-evaluation) build_layered example-evaluation containers/example-evaluation ;;
    hostile) build_hostile ;;
    baselines) build_baselines ;;
    *) log "unknown image '$target' (expected: base evaluator example-algorithm example-evaluation hostile baselines)"; exit 2 ;;
  esac
done
log "done"
