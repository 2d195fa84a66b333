"""Measured unit costs shipped with the package: `auth-kappa plan` defaults.

Written by benchmarks/bench_unit_costs.py (make bench-costs); do not edit by hand.
"""

UNIT_COSTS: dict = {'frame_size': 500,
 'frames': {'archive_bytes_per_reading': 15.83,
            'kafka_all_bytes_per_reading': 105.98,
            'kafka_bytes_per_reading': 101.34,
            'redis_cpu_s_per_million': 2.69,
            'redis_cpu_s_per_million_by_primaries': {'1': 2.2, '3': 2.69},
            'worker_cpu_s_per_million': 4.81,
            'worker_cpu_s_per_million_without_archiver': 2.16,
            'workers_measured': [1, 2, 4]},
 'machine': 'code at 990e55c with uncommitted changes in auth_kappa/; 2 cores; Kafka and '
            'Redis on the same machine',
 'measured': '2026-12-01',
 'redis_bytes_per_meter_utility': 13552.0,
 'redis_bytes_source': "benchmarks/bench_state_size.py: MEMORY USAGE of one meter's 1m "
                       'key (2 h) + 1h key (7 d), one utility',
 'redis_primaries_measured': [1, 3],
 'single': {'archive_bytes_per_reading': 17.28,
            'kafka_all_bytes_per_reading': 69.21,
            'kafka_bytes_per_reading': 65.22,
            'redis_cpu_s_per_million': 6.38,
            'redis_cpu_s_per_million_by_primaries': {'1': 6.38, '3': 6.0},
            'worker_cpu_s_per_million': 34.35,
            'worker_cpu_s_per_million_without_archiver': 12.28,
            'workers_measured': [1, 2, 4]},
 'source': 'benchmarks/bench_unit_costs.py (make bench-costs)'}
