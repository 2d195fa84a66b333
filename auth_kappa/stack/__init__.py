"""The local development stack: real Kafka, Redis and S3 on 127.0.0.1, started by pid."""
