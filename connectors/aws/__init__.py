"""The AWS connector: IAM access keys and Secrets Manager secrets.

Discovery reads metadata only. It never calls GetSecretValue and never requests
an access key's secret.
"""
