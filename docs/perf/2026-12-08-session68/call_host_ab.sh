#!/usr/bin/env bash
# Session 68: the host work of a decode step, session 67's build (.device/s67f) against session 68's
# (.device/s68f) in turn on one machine: host-bench b64_p2k and b1024_p2k, then the decode loop's
# b64_p4k chunktree-graph and chunktree (eager) rows. Carry [".device/s67f", ".device/s68f"].
x=/tmp/h68 && rm -rf $x && mkdir -p $x
for w in s67f s68f; do
  gunzip -c .device/$w/chunktree.gz > $x/cli_$w && chmod +x $x/cli_$w
  python3 -m pip install -q --no-deps --no-index --target $x/$w .device/$w/wheel/*.whl || exit 1
done
[ -n "$SKIP_HOST_BENCH" ] || for r in 1 2; do for w in s67f s68f; do
  timeout 60 $x/cli_$w host-bench --case b64_p2k --repeats 300 --csv $OUT/host_${w}_b64_$r.csv > $OUT/host_${w}_b64_$r.txt 2>&1
  timeout 60 $x/cli_$w host-bench --case b1024_p2k --repeats 200 --csv $OUT/host_${w}_b1024_$r.csv > $OUT/host_${w}_b1024_$r.txt 2>&1
  grep -E "with_split|upload|make_plan " $OUT/host_${w}_b64_$r.txt | sed "s/^/$w $r /"
done; done
for r in 1 2; do for w in s67f s68f; do
  (cd bench && PYTHONPATH=$x/$w timeout 100 python3 decode_loop.py $OUT/dl_${w}_$r.csv --cases b64_p4k --impls chunktree-graph,chunktree --steps 16 --warmup 3) > $OUT/dl_${w}_$r.txt 2>&1
  echo "$w $r rc $?"; cut -d, -f2,10,11,18 $OUT/dl_${w}_$r.csv 2>/dev/null | tail -2
done; done
tar -C "$OUT" -czf /tmp/hostab.tgz . && rm -rf "${OUT:?}"/* && mv /tmp/hostab.tgz "$OUT/"
