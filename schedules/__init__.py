"""Scheduled jobs and the workday calendar."""
