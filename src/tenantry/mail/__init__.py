"""Mail: rendering (sandboxed), the outbox, SMTP delivery."""
