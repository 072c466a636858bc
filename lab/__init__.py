"""Narrated teaching material: the concept catalog, concept pages, cheat sheets, quiz, demos and labs."""
