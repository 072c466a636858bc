"""How we notice drift and decay: the checks, their statistics and the findings they publish."""
