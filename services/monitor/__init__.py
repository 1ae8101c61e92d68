"""faust-streaming app: telemetry -> health per instance -> health events."""
