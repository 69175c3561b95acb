"""Alert channels: what an alert says in an email, a Teams card or a webhook call, and how it leaves.

The finding lifecycle and the alert policy (partnerguard/alerts/) decide *what* is owed; a
notifier only renders and delivers it. Rendering: `digest_email.py` (a run's new and resolved
findings), `reminder_email.py` (open critical findings), `health_email.py` (the monitor's own
problems), `grouped_email.py` (several alerts as one email), all through `email_view.py` and
autoescaped templates. Delivery: `email_transport.py` is the contract, `acs.py` sends through
Azure Communication Services (lookup before send, no SDK retry of a send), `outbox.py` writes
`.eml` files once per operation id.

Every channel keeps one contract (`alert_transport.py`) over one content (`alert_content.py`):
email (`email_channel.py`); Microsoft Teams, an Adaptive Card (`teams_card.py`) posted to a
Workflows webhook (`teams_transport.py`); and a signed, versioned JSON document
(`webhook_payload.py`) posted to a generic webhook (`webhook_transport.py`). Both webhooks share
one POST and its answer's meaning (`webhook_post.py`: no retry of a send, no URL in any message).
What every channel shares: a check's title and remediation by its id (`catalogue_text.py`), and
how long a throttled service asks to wait (`retry_after.py`).
"""
