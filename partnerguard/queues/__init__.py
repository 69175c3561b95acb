"""PartnerGuard's two queues: their names, their messages, their clients and their poison records.

- `names`: the queue names and the connection setting the bindings and our clients share;
- `documents`: strict parsing of a message's JSON document, shared by every message schema;
- `scan_message`: the scan message (`partnerguard.scan/v1`); the alert message
  (`partnerguard.alert/v1`) is `partnerguard/alerts/messages.py`, beside the outbox it names;
- `clients`: queue clients that read and write base64, the host's encoding;
- `poison`: the record a worker writes to `<queue>-poison` for a message no retry can fix.

Messages are JSON, base64-encoded on the queue: that is the Functions queue extension's default
`messageEncoding`, and azure-storage-queue's `TextBase64EncodePolicy` writes exactly that. The
host decodes the base64 before the worker sees the body; a message that is not base64 at all
never reaches the worker (the extension moves it to `<queue>-poison` at once,
Azure/azure-sdk-for-net#18326), so the workers' parsers start at the decoded bytes.
"""
