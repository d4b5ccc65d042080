"""Point -> county lookups per second, in process, on the packaged West Virginia counties.

    .venv/bin/python bench/geo.py [--lookups 200000]

Points are drawn uniformly over the state's bounding box (so some fall outside, as real
bad coordinates do); prints lookups per second and per-lookup latency percentiles.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from corespond.geo.service import geography_for


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()
    started = time.perf_counter()
    atlas = geography_for(("54",)).atlas
    load = time.perf_counter() - started
    west, south, east, north = -82.65, 37.2, -77.7, 40.64
    rng = random.Random(54)
    points = [(rng.uniform(south, north), rng.uniform(west, east)) for _ in range(args.lookups)]
    timings = []
    inside = 0
    started = time.perf_counter()
    for lat, lon in points:
        t0 = time.perf_counter()
        inside += atlas.locate(lat, lon) is not None
        timings.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    timings.sort()
    print(f"geo: {len(atlas.counties)} counties loaded and indexed in {load * 1000:.0f} ms")
    print(
        f"  {args.lookups} lookups ({inside} inside) in {total:.2f} s = "
        f"{args.lookups / total:,.0f} lookups/s on one core"
    )
    print(
        f"  per lookup: mean {statistics.fmean(timings) * 1e6:.1f} us  "
        f"p50 {timings[len(timings) // 2] * 1e6:.1f} us  "
        f"p99 {timings[int(len(timings) * 0.99)] * 1e6:.1f} us"
    )


if __name__ == "__main__":
    main()
