"""People: who may use the gateway and how they prove it (DESIGN section 10).

Owns `<data_dir>/people.sqlite3`: the persons (accounts made by an admin, and the site
contacts of the configuration, who need no password to use their phone links), their
argon2id password hashes, the API tokens issued to them, their browser sessions and the
acknowledgement links sent to their phones. Secrets (passwords, tokens, session ids, link
codes) are never stored, only their hashes. Imports only `gateway.config` and
`gateway.storage`.
"""
