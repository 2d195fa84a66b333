"""Measured unit costs shipped with the package: `auth-kappa plan` defaults.

Written by benchmarks/bench_unit_costs.py (make bench-costs); do not edit by hand.
"""

UNIT_COSTS: dict = {'frame_size': 500,
 'frames': {'archive_bytes_per_reading': 15.82,
            'kafka_all_bytes_per_reading': 105.98,
            'kafka_bytes_per_reading': 101.34,
            'redis_cpu_s_per_million': 2.09,
            'worker_cpu_s_per_million': 4.78,
            'worker_cpu_s_per_million_without_archiver': 2.16,
            'workers_measured': [1, 2, 4]},
 'machine': 'code at fa7ada3; 2 cores; Kafka and Redis on the same machine',
 'measured': '2026-11-30',
 'redis_bytes_per_meter_utility': 13552.0,
 'redis_bytes_source': "benchmarks/bench_state_size.py: MEMORY USAGE of one meter's 1m "
                       'key (2 h) + 1h key (7 d), one utility',
 'redis_primaries_measured': 1,
 'single': {'archive_bytes_per_reading': 16.99,
            'kafka_all_bytes_per_reading': 69.16,
            'kafka_bytes_per_reading': 65.18,
            'redis_cpu_s_per_million': 5.56,
            'worker_cpu_s_per_million': 32.94,
            'worker_cpu_s_per_million_without_archiver': 11.5,
            'workers_measured': [1, 2, 4]},
 'source': 'benchmarks/bench_unit_costs.py (make bench-costs)'}
