"""Projects: the studies of one team, and each token's role in them."""
