"""How models meet traffic (serving issue)."""
