"""Alert channels (the digest email through Azure Communication Services, the .eml outbox).

The finding lifecycle decides *what* changed; a notifier only delivers it. Built with the
alerts issue; nothing here sends anything yet.
"""
