"""Alert channels: what an alert email says and how it leaves.

The finding lifecycle and the alert policy (partnerguard/alerts/) decide *what* is owed; a
notifier only renders and delivers it. Rendering: `digest_email.py` (a run's new and resolved
findings), `reminder_email.py` (open critical findings), `health_email.py` (the monitor's own
problems), `grouped_email.py` (several alerts as one email), all through `email_view.py` and
autoescaped templates. Delivery: `email_transport.py` is the contract, `acs.py` sends through
Azure Communication Services (lookup before send, no SDK retry of a send), `outbox.py` writes
`.eml` files once per operation id.
"""
