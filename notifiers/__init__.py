"""Alert channels: what an alert email says and how it leaves.

The finding lifecycle decides *what* changed; a notifier only renders and delivers it.
`digest.py` turns a run's new and resolved findings into one email (HTML and text, every tenant
string escaped); `outbox.py` writes it as an `.eml` file, once per operation id. Delivery through
Azure Communication Services and the alert worker come with the alerts issue.
"""
