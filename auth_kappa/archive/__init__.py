"""The raw archive: every consumed message, as Parquet, partitioned by event time.

Rules (lossless and exactly once: each consumed message in exactly one object):
- Data objects: archive/utility=U/date=YYYY-MM-DD/hour=HH/<topic>-<partition>-<first>-<last>.parquet
  (hour of end_ts, UTC). first/last are the offsets of the *roll*, the consumed range the
  object came from; a roll spanning several event hours writes one object per hour.
- Malformed messages (what auth_kappa.topology.decode/validate reject) go to
  quarantine/utility=U/date=/hour= (hour of the Kafka timestamp) with raw bytes and reason.
- Progress per partition: archive/_progress/<topic>/<partition>.json. Before a roll's data
  is written it records the roll as pending; after every object is written it records
  next_offset = last + 1. A restarted or new owner redoes a pending roll with exactly the
  same range (same names, same content: ingest_time is the Kafka record timestamp), then
  continues from next_offset. So time-based rolls never overlap after a crash.
- Kafka offsets of the archive group are committed after the progress object; they are
  for lag tools only, the progress object is the truth.
- Limit: on revocation the old owner drops its unsent rolls, but an upload already under
  way finishes; if it had not yet written its pending record when the new owner read the
  progress (a stalled zombie), the two could cut different boundaries. Plain S3 PUTs
  cannot be fenced; the group's session timeout bounds that window.
"""
