#!/usr/bin/env bash
# Interleaved A/B of Keel binaries in quick proxy mode at 32 concurrent requests, every request
# traced (`trace = "messages"`), against the shared harness's fixed-response nginx upstream:
# requests/s, p50/p99, server CPU per request, traces dropped (keel_traces_dropped_total) and
# the server's peak RSS (VmHWM),
# three rounds of 8 s per binary after a 2 s warm-up. Usage: bench/writer_ab.sh BIN_A BIN_B ...
# (build a variant with `cargo build --release --bin keel` and copy target/release/keel aside).
# AB_TRACE=metadata|off compares another capture setting (default messages); AB_CONC another
# concurrency (default 32).
set -u
SHARED="$(cd "$(dirname "$0")/../.." && pwd)/shared"
W=${BENCH_WORK:-/tmp/keel-gateway-bench}
export BENCH_WORK=$W
python3 $SHARED/bench/gen-nginx-conf.py >/dev/null
[ -f $W/nginx/nginx.pid ] && kill -0 "$(cat $W/nginx/nginx.pid)" 2>/dev/null || nginx -c $W/nginx/nginx.conf -p $W/nginx/
printf '[gateway]\ntrace = "%s"\n' "${AB_TRACE:-messages}" > /tmp/ab.toml
for round in 1 2 3; do
  for bin in "$@"; do
    rm -rf /tmp/ab-data
    $bin --config /tmp/ab.toml --data-dir /tmp/ab-data serve --listen 127.0.0.1:8090 --openai-base-url http://127.0.0.1:18080/v1 --model gpt-4o-mini --no-auth > /tmp/ab-keel.log 2>&1 &
    pid=$!
    for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8090/healthz && break; sleep 0.1; done
    oha -z 2s -c ${AB_CONC:-32} --no-tui -m POST -H 'content-type: application/json' -D $SHARED/bench/req.json http://127.0.0.1:8090/v1/chat/completions > /dev/null
    c0=$(awk '{print $14+$15}' /proc/$pid/stat)
    oha -z 8s -c ${AB_CONC:-32} --no-tui --output-format json -m POST -H 'content-type: application/json' -D $SHARED/bench/req.json http://127.0.0.1:8090/v1/chat/completions > /tmp/ab-out.json
    c1=$(awk '{print $14+$15}' /proc/$pid/stat)
    drops=$(curl -s http://127.0.0.1:8090/metrics | grep -E '^keel_traces_dropped_total' | awk '{print $2}')
    hwm=$(awk '/^VmHWM/{print int($2/1024)}' /proc/$pid/status)
    python3 - "$bin" "$round" "$c0" "$c1" "${drops:-0}" "$hwm" <<'PY'
import json,sys
d=json.load(open('/tmp/ab-out.json'))
s=d['summary']; p=d['latencyPercentiles']
n=s['requestsPerSec']*8
cpu=(int(sys.argv[4])-int(sys.argv[3]))/100/ n*1e6
print(f"{sys.argv[1]:20s} r{sys.argv[2]} rps={s['requestsPerSec']:.0f} p50={p['p50']*1000:.2f} p99={p['p99']*1000:.2f} cpu/req={cpu:.0f}us drops={sys.argv[5]} peakRSS={sys.argv[6]}MB")
PY
    kill $pid; wait $pid 2>/dev/null
  done
done
