"""Chaos suite (issue 9): faults against private services, compared with a brute-force truth."""
