"""Sources of raw records: files/stdin, the in-process bus, Kafka."""
