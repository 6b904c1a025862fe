"""The network: SMTP transport, replies, pacing, DKIM, the capture server, HTTP fetching."""
