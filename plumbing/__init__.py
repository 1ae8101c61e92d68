"""Shared plumbing every Coffer service imports: config, Avro codec, CloudEvents
envelope, Kafka wiring, outbox/inbox, tracing, logging, sealing. No domain logic."""
