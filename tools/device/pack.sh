#!/usr/bin/env bash
# Packs dlm, dlm_gpu_tests and dlm_linear_bench, built here, for a GPU machine that lacks this machine's
# libraries: each is relinked with OpenBLAS linked in statically, stripped, and put with the shared libraries
# they need beyond glibc, libstdc++ and CUDA into one .tar.xz (a few MB: the device tool's working-tree limit
# is 64 MiB).
#   tools/device/pack.sh BUILD_DIR OUT.tar.xz        (BUILD_DIR: a release build with the CUDA backend)
# On the GPU machine, tools/device/run.sh unpacks it.
set -euo pipefail
build=$(cd "$1" && pwd)
out=$(realpath -m "$2")
openblas=/usr/lib/x86_64-linux-gnu/libopenblas
[[ -f $openblas.a ]] || { echo "pack.sh: $openblas.a missing (apt-get install libopenblas-dev)" >&2; exit 2; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/libs"
ninja -C "$build" dlm dlm_gpu_tests dlm_linear_bench >/dev/null
for target in dlm dlm_gpu_tests dlm_linear_bench; do
  # The link command ninja used, with the static OpenBLAS (and its Fortran runtime) and another output.
  link=$(cd "$build" && ninja -t commands "$target" | tail -1)
  link=${link//$openblas.so/$openblas.a -lgfortran}
  link=$(sed -E "s# -o [^ ]*$target # -o $stage/$target #" <<<"$link")
  (cd "$build" && eval "$link")
  strip "$stage/$target"
  ldd "$stage/$target" | awk '$3 ~ /^\// {print $3}' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so|/libcu' |
    xargs -r cp -Ln -t "$stage/libs"
done
# The tests find their golden data under the source directory they were built from: run.sh links it there.
sed -n 's/^dlm_SOURCE_DIR:STATIC=//p' "$build/CMakeCache.txt" >"$stage/source_dir"
tar -C "$stage" -cf - dlm dlm_gpu_tests dlm_linear_bench libs source_dir | xz -9e -T0 >"$out"
echo "$out: $(du -h "$out" | cut -f1) ($(ls "$stage/libs" | tr '\n' ' '))"
