#!/bin/sh
# Every benchmark in one run, then one table: each figure of ours beside its reference
# measured in the same run, and their ratio (ours / reference: below 1 is faster or
# smaller for times and sizes; above 1 is better for rates such as conn/s).
#
#   scripts/bench.sh            # all of them
#   scripts/bench.sh NAME...    # some: build_and_boot disk_formats oci_unpack apply_1000 api_proxy inventory_render
#
# Full logs go to target/bench/NAME.log. Benchmarks print; nothing here asserts a time.
set -eu
cd "$(dirname "$0")/.."

all="build_and_boot disk_formats oci_unpack apply_1000 api_proxy inventory_render"
package() {
    case "$1" in
        build_and_boot|disk_formats) echo harmony-vm-tests ;;
        apply_1000|api_proxy) echo harmony-agent ;;
        oci_unpack|inventory_render) echo harmony-builder ;;
        *) echo "bench.sh: unknown benchmark $1 (one of: $all)" >&2; exit 2 ;;
    esac
}

[ "$#" -gt 0 ] || set -- $all
for name in "$@"; do package "$name" >/dev/null; done
./scripts/build.sh >/dev/null

logs=target/bench
mkdir -p "$logs"
failed=""
for name in "$@"; do
    echo "== $name" >&2
    if ! cargo bench --quiet -p "$(package "$name")" --bench "$name" >"$logs/$name.log" 2>&1; then
        failed="$failed $name"
        echo "   failed: see $logs/$name.log" >&2
    fi
done

echo
echo "figure | ours | reference | theirs | ours/theirs"
echo "---|---|---|---|---"
for name in "$@"; do
    grep -h '^BENCH' "$logs/$name.log" || true
done | awk -F '\t' '{
    ratio = ($5 == "nan" || $5 == "NaN" || $5 + 0 == 0) ? "-" : sprintf("%.2f", $3 / $5)
    theirs = ($5 == "nan" || $5 == "NaN") ? "-" : $5 " " $6
    printf "%s | %s %s | %s | %s | %s\n", $2, $3, $6, $4, theirs, ratio
}'
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (figures are inflated when it is above the core count, $(nproc))"
if [ -n "$failed" ]; then
    echo "failed:$failed" >&2
    exit 1
fi
