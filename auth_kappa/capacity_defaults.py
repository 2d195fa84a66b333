"""Measured unit costs shipped with the package: `auth-kappa plan` defaults.

Written by benchmarks/bench_unit_costs.py (make bench-costs); do not edit by hand.
"""

UNIT_COSTS: dict = {'frame_size': 500,
 'frames': {'archive_bytes_per_reading': 15.97,
            'kafka_all_bytes_per_reading': 105.95,
            'kafka_bytes_per_reading': 101.34,
            'redis_cpu_s_per_million': 3.04,
            'redis_cpu_s_per_million_by_primaries': {'1': 2.82, '3': 3.04},
            'worker_cpu_s_per_million': 6.14,
            'worker_cpu_s_per_million_without_archiver': 2.53,
            'workers_measured': [1, 2, 4]},
 'machine': 'code at 9983ddc; 2 cores; Kafka and Redis on the same machine',
 'measured': '2026-12-02',
 'redis_bytes_per_meter_utility': 13552.0,
 'redis_bytes_source': "benchmarks/bench_state_size.py: MEMORY USAGE of one meter's 1m "
                       'key (2 h) + 1h key (7 d), one utility',
 'redis_primaries_measured': [1, 3],
 'single': {'archive_bytes_per_reading': 16.98,
            'kafka_all_bytes_per_reading': 69.15,
            'kafka_bytes_per_reading': 65.2,
            'redis_cpu_s_per_million': 6.66,
            'redis_cpu_s_per_million_by_primaries': {'1': 6.61, '3': 6.66},
            'worker_cpu_s_per_million': 15.65,
            'worker_cpu_s_per_million_without_archiver': 7.38,
            'workers_measured': [1, 2, 4]},
 'source': 'benchmarks/bench_unit_costs.py (make bench-costs)'}
