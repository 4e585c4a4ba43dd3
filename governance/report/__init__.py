"""The governance report: inventory, coverage gaps and the maturity stage."""
