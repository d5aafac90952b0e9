"""The load scenario of ``benchmarks/bench_load.py``: the scene (``scene``), the platform's data
(``world``, run in a Django child process), the stack's processes and their CPU (``stack``),
the locust users (``users``: imports locust, hence gevent's monkey-patching: load generator
only) and the report (``report``)."""
