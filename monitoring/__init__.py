"""How we notice drift and decay (monitoring issue)."""
