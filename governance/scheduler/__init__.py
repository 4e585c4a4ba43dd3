"""Scheduled jobs: certification planning, reminders, escalations, deadlines,
inventory syncs, the outbox and the audit head, run by the lease holder."""
