"""Background work started by `gitward serve` in every worker process: webhook deliveries.
Each job is claimed once across workers and hosts (docs/webhooks.md)."""
