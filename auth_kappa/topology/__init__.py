"""The one topology: decode ► validate ► window ► dedup/late ► aggregate, batch at a time.

Every runtime (Faust workers, replay, the embedded engine) calls these functions;
none of them has its own copy of the window math.
"""
