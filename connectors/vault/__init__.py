"""The Vault/OpenBao connector: AppRole secret-ids, tokens and KV entries.

Steward reads metadata only. It never reads a KV value and never keeps a
token id; identities are named by accessors and mount paths.
"""
