"""Webhook delivery: consumes the public topics and delivers each event that
matches a subscription as a signed CloudEvent, at least once, in order per resource."""
