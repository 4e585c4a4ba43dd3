"""The quickstart: a demo fleet in a real OpenBao, governed by Steward."""
