"""Adds the shards' latency histograms with the Python HdrHistogram implementation (`hdrh`,
not ours) and prints the sum's count and percentiles as JSON, so the merged run file's figures
can be checked against an independent merge.

Usage: hdr_merge_check.py SHARD_RUN_JSON...
"""
import json
import sys

from hdrh.histogram import HdrHistogram

total = None
for path in sys.argv[1:]:
    with open(path) as f:
        run = json.load(f)
    h = HdrHistogram.decode(run["latency"]["histogram"]["data"], b64_wrap=True)
    if total is None:
        total = h
    else:
        total.add(h)
print(json.dumps({
    "count": total.get_total_count(),
    "p50": total.get_value_at_percentile(50.0),
    "p90": total.get_value_at_percentile(90.0),
    "p99": total.get_value_at_percentile(99.0),
    "p99_9": total.get_value_at_percentile(99.9),
}))
