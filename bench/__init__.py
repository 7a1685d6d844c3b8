"""Side-by-side benchmark of Berth and CNCF Distribution: `make bench` (= `python -m bench`).

Each side runs the same HTTP workload (aiohttp, from this process and its load-generator
children, never inside a server) plus docker push/pull, three times, against a fresh server
each time; `bench.report` prints medians and Berth/Distribution ratios against the targets.
"""
